package resources

import (
	"context"
	"log/slog"
	"sync"

	"github.com/havpn/havpn/internal/config"
)

// starterResource drives a Starter registered by another part.
type starterResource struct {
	name string
	s    Starter

	// mu guards state.
	mu    sync.Mutex
	state State
}

// NewStarter wraps s as the resource called name. Its Status is s's if s
// implements StatusReporter, else the state the last successful Start or
// Stop left.
func NewStarter(name string, s Starter) Resource {
	return &starterResource{name: name, s: s, state: StateUnknown}
}

func (r *starterResource) Name() string { return r.name }

func (r *starterResource) Start(ctx context.Context) error {
	if err := r.s.Start(ctx); err != nil {
		return err
	}
	r.set(StateRunning)
	return nil
}

func (r *starterResource) Stop(ctx context.Context) error {
	if err := r.s.Stop(ctx); err != nil {
		return err
	}
	r.set(StateStopped)
	return nil
}

func (r *starterResource) Status(ctx context.Context) (State, error) {
	if sr, ok := r.s.(StatusReporter); ok {
		return sr.Status(ctx)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state, nil
}

func (r *starterResource) set(s State) {
	r.mu.Lock()
	r.state = s
	r.mu.Unlock()
}

// NotWired is the Starter of a tunnel, ike or bgp resource whose part is not
// registered yet: Start and Stop succeed at once and log that nothing was
// done, so that the order and the deadlines of the group stay real.
type NotWired struct {
	log *slog.Logger
	typ config.ResourceType
}

// NewNotWired returns the stand-in for resource r.
func NewNotWired(r config.Resource, log *slog.Logger) *NotWired {
	return &NotWired{log: log.With("component", "resources", "resource", r.Name), typ: r.Type}
}

// Start logs and succeeds.
func (n *NotWired) Start(ctx context.Context) error {
	n.log.Warn("resource not wired: start does nothing", "reason", "no "+string(n.typ)+" implementation registered")
	return nil
}

// Stop logs and succeeds.
func (n *NotWired) Stop(ctx context.Context) error {
	n.log.Warn("resource not wired: stop does nothing", "reason", "no "+string(n.typ)+" implementation registered")
	return nil
}
