package resources

import (
	"slices"
	"time"

	"github.com/havpn/havpn/internal/config"
)

// Ops of a transition or a step.
const (
	OpStart    = "start"
	OpStop     = "stop"
	OpRollback = "rollback" // a stop that undoes a failed start
)

// Results of a transition or a step.
const (
	ResultRunning = "running" // not finished yet
	ResultOK      = "ok"
	ResultFailed  = "failed"
	ResultTimeout = "timeout"
	ResultSkipped = "skipped" // already in the wanted state
)

// Timeline is one Group transition (a Start, with its rollback if any, or a
// Stop), plain data for `havpn status` and its JSON.
type Timeline struct {
	Op       string        `json:"op"`
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration_ns"`
	Result   string        `json:"result"`
	Error    string        `json:"error,omitempty"`
	Steps    []Step        `json:"steps"`
}

// Step is one call of one resource's Start or Stop within a Timeline.
type Step struct {
	Resource string              `json:"resource"`
	Type     config.ResourceType `json:"type"`
	Op       string              `json:"op"`
	Started  time.Time           `json:"started"`
	Duration time.Duration       `json:"duration_ns"`
	Result   string              `json:"result"`
	Error    string              `json:"error,omitempty"`
}

func (t Timeline) clone() Timeline {
	t.Steps = slices.Clone(t.Steps)
	return t
}
