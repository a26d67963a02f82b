package resources

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/havpn/havpn/internal/config"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultTimeout is the step deadline of a resource whose config timeout is 0.
const DefaultTimeout = 10 * time.Second

// abandonGrace is how long a step call may overrun its deadline before the
// Group stops waiting for it.
const abandonGrace = 100 * time.Millisecond

// Factory builds the Resource for one config entry. NewFactory returns the
// real one; tests pass their own.
type Factory func(config.Resource) (Resource, error)

// Options configure a Group.
type Options struct {
	// Log is required.
	Log *slog.Logger
	// Registerer gets the havpn_resource_* collectors; nil: no metrics.
	Registerer prometheus.Registerer
}

// Status is the recorded state of one member, plain data for `havpn status`.
type Status struct {
	Name  string              `json:"name"`
	Type  config.ResourceType `json:"type"`
	State State               `json:"state"`
	Since time.Time           `json:"since,omitzero"`
	Error string              `json:"error,omitempty"`
}

type member struct {
	cfg     config.Resource
	res     Resource
	timeout time.Duration
}

// Group is an ordered resource group. See the package doc.
type Group struct {
	members []member // fixed at NewGroup
	log     *slog.Logger
	m       *metrics

	// opMu serialises Start and Stop.
	opMu sync.Mutex
	// inflight counts step calls still running, abandoned ones included.
	inflight sync.WaitGroup

	// mu guards the fields below.
	mu          sync.Mutex
	status      []Status // parallel to members
	timeline    Timeline
	cancelStart context.CancelFunc // cancels the Start in progress, if any
}

// NewGroup builds the members of rs with build, in order. Names must be
// unique.
func NewGroup(rs []config.Resource, build Factory, opts Options) (*Group, error) {
	if opts.Log == nil {
		return nil, errors.New("creating resource group: no logger")
	}
	g := &Group{log: opts.Log.With("component", "resources")}
	seen := map[string]bool{}
	for i, rc := range rs {
		if seen[rc.Name] {
			return nil, fmt.Errorf("creating resource group: resources[%d]: duplicate name %q", i, rc.Name)
		}
		seen[rc.Name] = true
		r, err := build(rc)
		if err != nil {
			return nil, fmt.Errorf("creating resource group: resources[%d] %s: %w", i, rc.Name, err)
		}
		t := rc.Timeout.D()
		if t <= 0 {
			t = DefaultTimeout
		}
		g.members = append(g.members, member{cfg: rc, res: r, timeout: t})
		g.status = append(g.status, Status{Name: rc.Name, Type: rc.Type, State: StateUnknown})
	}
	var err error
	if g.m, err = newMetrics(opts.Registerer); err != nil {
		return nil, err
	}
	for _, mb := range g.members {
		g.m.state.WithLabelValues(mb.cfg.Name).Set(float64(StateUnknown))
	}
	return g, nil
}

// Resource returns the member named name, or nil.
func (g *Group) Resource(name string) Resource {
	for _, mb := range g.members {
		if mb.cfg.Name == name {
			return mb.res
		}
	}
	return nil
}

// Start starts the members in order, skipping those already running. On the
// first failure it rolls the whole group back (stop in reverse of every
// member not known stopped) and returns a *StepError for the failed step,
// joined with any rollback errors. The rollback runs even when ctx is done,
// each step under its own deadline. A concurrent Stop cancels Start.
func (g *Group) Start(ctx context.Context) error {
	g.opMu.Lock()
	defer g.opMu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g.mu.Lock()
	g.cancelStart = cancel
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.cancelStart = nil
		g.mu.Unlock()
	}()

	g.begin(OpStart)
	for i := range g.members {
		if g.state(i) == StateRunning {
			g.skip(i, OpStart)
			continue
		}
		if err := g.step(ctx, i, OpStart); err != nil {
			g.log.Warn("resource start failed; rolling back the group", "resource", g.members[i].cfg.Name)
			rb := g.stopAll(context.WithoutCancel(ctx), OpRollback)
			err = errors.Join(err, rb)
			g.end(err)
			return err
		}
	}
	g.end(nil)
	return nil
}

// Stop cancels a Start in progress, then stops the members in reverse order,
// skipping those already stopped. It goes on past failures and returns them
// joined. ctx bounds the whole Stop; each step also has its own deadline.
func (g *Group) Stop(ctx context.Context) error {
	g.mu.Lock()
	if g.cancelStart != nil {
		g.cancelStart()
	}
	g.mu.Unlock()
	g.opMu.Lock()
	defer g.opMu.Unlock()
	g.begin(OpStop)
	err := g.stopAll(ctx, OpStop)
	g.end(err)
	return err
}

func (g *Group) stopAll(ctx context.Context, op string) error {
	var errs []error
	for i := len(g.members) - 1; i >= 0; i-- {
		if g.state(i) == StateStopped {
			g.skip(i, op)
			continue
		}
		if err := g.step(ctx, i, op); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// step runs one Start or Stop of member i under its deadline, records it and
// returns a *StepError on failure.
func (g *Group) step(ctx context.Context, i int, op string) error {
	mb := g.members[i]
	call, during, after := mb.res.Start, StateStarting, StateRunning
	metricOp := OpStart
	if op != OpStart {
		call, during, after = mb.res.Stop, StateStopping, StateStopped
		metricOp = OpStop
	}
	sctx, cancel := context.WithTimeout(ctx, mb.timeout)
	defer cancel()
	started := time.Now()
	idx := g.addStep(Step{Resource: mb.cfg.Name, Type: mb.cfg.Type, Op: op, Started: started, Result: ResultRunning})
	g.setState(i, during, "")

	done := make(chan error, 1)
	g.inflight.Add(1)
	go func() {
		defer g.inflight.Done()
		done <- call(sctx)
	}()
	var err error
	select {
	case err = <-done:
	case <-sctx.Done():
		t := time.NewTimer(abandonGrace)
		select {
		case err = <-done:
		case <-t.C:
			err = ErrAbandoned
		}
		t.Stop()
		if err == nil {
			err = sctx.Err() // finished, but too late to count
		}
	}
	d := time.Since(started)
	g.m.stepSeconds.WithLabelValues(mb.cfg.Name, metricOp).Observe(d.Seconds())

	result := ResultOK
	if err != nil {
		result = ResultFailed
		if errors.Is(sctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
			result = ResultTimeout
			err = fmt.Errorf("%w (%s): %w", ErrDeadline, mb.timeout, err)
		}
		err = &StepError{Resource: mb.cfg.Name, Type: mb.cfg.Type, Op: op, Timeout: mb.timeout, Err: err}
		g.setState(i, StateFailed, err.Error())
	} else {
		g.setState(i, after, "")
	}
	g.finishStep(idx, d, result, err)
	g.log.Info("resource step", "resource", mb.cfg.Name, "op", op, "result", result,
		"took", d.Round(time.Microsecond))
	return err
}

// Check asks every member not in a transition for its actual state (under
// its deadline) and records it. A member recorded running that is no longer
// running becomes failed. It returns the recorded states.
func (g *Group) Check(ctx context.Context) []Status {
	for i, mb := range g.members {
		rec := g.state(i)
		if rec == StateStarting || rec == StateStopping {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, mb.timeout)
		st, err := mb.res.Status(sctx)
		cancel()
		switch {
		case err != nil:
			g.setState(i, rec, fmt.Sprintf("status: %v", err))
		case rec == StateRunning && st != StateRunning:
			g.setState(i, StateFailed, fmt.Sprintf("was running, status says %s", st))
		case st != rec:
			g.setState(i, st, "")
		}
	}
	return g.Snapshot()
}

// Snapshot returns the recorded state of every member, in order.
func (g *Group) Snapshot() []Status {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]Status, len(g.status))
	copy(out, g.status)
	return out
}

// Timeline returns the last transition (possibly still running).
func (g *Group) Timeline() Timeline {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.timeline.clone()
}

// WaitIdle waits until no step call is running, abandoned ones included, or
// ctx is done.
func (g *Group) WaitIdle(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		g.inflight.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for resource steps: %w", ctx.Err())
	}
}

func (g *Group) state(i int) State {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.status[i].State
}

func (g *Group) setState(i int, s State, errText string) {
	g.mu.Lock()
	if g.status[i].State != s {
		g.status[i].Since = time.Now()
	}
	g.status[i].State = s
	g.status[i].Error = errText
	g.mu.Unlock()
	g.m.state.WithLabelValues(g.members[i].cfg.Name).Set(float64(s))
}

func (g *Group) begin(op string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.timeline = Timeline{Op: op, Started: time.Now(), Result: ResultRunning}
}

func (g *Group) end(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.timeline.Duration = time.Since(g.timeline.Started)
	g.timeline.Result = ResultOK
	if err != nil {
		g.timeline.Result = ResultFailed
		g.timeline.Error = err.Error()
	}
}

func (g *Group) addStep(s Step) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.timeline.Steps = append(g.timeline.Steps, s)
	return len(g.timeline.Steps) - 1
}

func (g *Group) finishStep(idx int, d time.Duration, result string, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := &g.timeline.Steps[idx]
	s.Duration, s.Result = d, result
	if err != nil {
		s.Error = err.Error()
	}
}

func (g *Group) skip(i int, op string) {
	mb := g.members[i]
	g.addStep(Step{Resource: mb.cfg.Name, Type: mb.cfg.Type, Op: op, Started: time.Now(), Result: ResultSkipped})
}
