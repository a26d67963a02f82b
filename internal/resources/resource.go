package resources

import (
	"context"
	"fmt"
)

// Resource is one member of a Group.
//
// Start and Stop must be idempotent (start of a running resource and stop
// of a stopped one succeed) and must return soon after ctx is done: the
// Group gives each call its resource's deadline through ctx. Status reports
// the resource's actual state; it must not change anything. Implementations
// must be safe for concurrent use (Status may run during Start).
type Resource interface {
	Name() string
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	Status(ctx context.Context) (State, error)
}

// State is the state of a resource. The numbers are exported as the value
// of havpn_resource_state; keep them stable.
type State int

// States.
const (
	StateUnknown  State = 0 // never started or stopped by this Group, or status unknown
	StateStopped  State = 1
	StateStarting State = 2
	StateRunning  State = 3
	StateStopping State = 4
	StateFailed   State = 5 // a step failed, or a running resource died
)

func (s State) String() string {
	switch s {
	case StateUnknown:
		return "unknown"
	case StateStopped:
		return "stopped"
	case StateStarting:
		return "starting"
	case StateRunning:
		return "running"
	case StateStopping:
		return "stopping"
	case StateFailed:
		return "failed"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// MarshalText renders the state by name (in JSON too).
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses a state name, so clients can decode status JSON.
func (s *State) UnmarshalText(b []byte) error {
	for st := StateUnknown; st <= StateFailed; st++ {
		if st.String() == string(b) {
			*s = st
			return nil
		}
	}
	return fmt.Errorf("unknown resource state %q", b)
}

// Starter is what other parts (tunnel, ike, bgp) implement to be driven as a
// resource. Start and Stop have the same contract as in Resource.
type Starter interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
}

// StatusReporter is optionally implemented by a Starter that can tell its
// actual state; without it the resource reports the state its last
// successful Start or Stop left.
type StatusReporter interface {
	Status(ctx context.Context) (State, error)
}
