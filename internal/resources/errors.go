package resources

import (
	"errors"
	"fmt"
	"time"

	"github.com/havpn/havpn/internal/config"
)

var (
	// ErrDeadline means a step ran out of its resource's timeout. The Group
	// has rolled back (for a start); hand over to the peer.
	ErrDeadline = errors.New("deadline exceeded")

	// ErrUnknownType means a config.Resource has a type this package cannot
	// build. Fix the configuration.
	ErrUnknownType = errors.New("unknown resource type")

	// ErrAbandoned marks a step whose call did not return within its
	// deadline plus a grace period; it may still be running. WaitIdle
	// waits for it.
	ErrAbandoned = errors.New("step call abandoned after its deadline")
)

// StepError is a failed or timed-out step of a Group transition.
type StepError struct {
	Resource string
	Type     config.ResourceType
	Op       string // OpStart, OpStop or OpRollback
	Timeout  time.Duration
	Err      error
}

func (e *StepError) Error() string {
	return fmt.Sprintf("%s resource %s (%s): %v", opVerb(e.Op), e.Resource, e.Type, e.Err)
}

// Unwrap returns the resource's error (wrapping ErrDeadline for a timeout).
func (e *StepError) Unwrap() error { return e.Err }

func opVerb(op string) string {
	switch op {
	case OpStart:
		return "starting"
	case OpStop:
		return "stopping"
	case OpRollback:
		return "rolling back"
	}
	return op
}
