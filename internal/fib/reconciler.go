package fib

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/havpn/havpn/internal/config"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultMetric is the route metric (priority) of installed routes when
// Options.Metric is 0: FRR's choice for BGP routes. IPv4 connected routes
// have metric 0, so they win over ours for the same prefix.
const DefaultMetric = 20

// Change is the new state of one prefix: its best next hops, or none
// (nil or empty NextHops) when it was withdrawn.
type Change struct {
	Prefix   netip.Prefix
	NextHops []NextHop
}

// Options are a Reconciler's dependencies and knobs.
type Options struct {
	// Log receives warnings about refused routes (once per batch, not per
	// route). Nil discards.
	Log *slog.Logger
	// Registerer gets the havpn_fib_* collectors; nil means no metrics.
	Registerer prometheus.Registerer
	// Metric is the priority of installed routes; 0 means DefaultMetric.
	Metric uint32
	// Debounce is how long Run waits after a connected-change event for
	// more before it looks at the kernel; 0 means 50ms.
	Debounce time.Duration
}

// installed is what we believe the kernel holds for one prefix.
type installed struct {
	hops  []NextHop
	stale bool // adopted from an earlier run and not learned again yet
}

// Reconciler keeps the kernel's routes of one protocol in one table equal to
// the desired routes. All methods are safe for concurrent use; kernel
// writes are serialized by an internal mutex. Methods return an error when
// some kernel operation failed; the Reconciler's state is still consistent
// (failed prefixes are retried by Retry and by every connected change), so
// callers usually log it and go on.
type Reconciler struct {
	k      Kernel
	table  uint32
	proto  uint8
	metric uint32
	multi  bool
	log    *slog.Logger
	m      *metrics
	wait   time.Duration

	mu        sync.Mutex // guards the maps below and serializes kernel writes
	desired   map[netip.Prefix][]NextHop
	inst      map[netip.Prefix]installed
	failed    map[netip.Prefix]struct{}
	connected map[netip.Prefix]struct{}
	ops       []Op                      // scratch: the ops of one round
	seen      map[netip.Prefix]struct{} // scratch: prefixes planned this round
}

// New returns a Reconciler for cfg's table, protocol and multipath
// setting over k. It does not touch the kernel; call Adopt first.
func New(k Kernel, cfg config.FIB, o Options) (*Reconciler, error) {
	if cfg.Table == 0 || cfg.Protocol == 0 {
		return nil, fmt.Errorf("fib: table %d protocol %d: both must be set", cfg.Table, cfg.Protocol)
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	r := &Reconciler{
		k: k, table: cfg.Table, proto: cfg.Protocol, metric: o.Metric, multi: cfg.Multipath,
		log: o.Log, m: m, wait: o.Debounce,
		desired:   make(map[netip.Prefix][]NextHop),
		inst:      make(map[netip.Prefix]installed),
		failed:    make(map[netip.Prefix]struct{}),
		connected: make(map[netip.Prefix]struct{}),
		seen:      make(map[netip.Prefix]struct{}),
	}
	if r.metric == 0 {
		r.metric = DefaultMetric
	}
	if r.wait == 0 {
		r.wait = 50 * time.Millisecond
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	return r, nil
}

func (r *Reconciler) route(p netip.Prefix, hops []NextHop) Route {
	return Route{Prefix: p, NextHops: hops, Table: r.table, Protocol: r.proto, Metric: r.metric}
}

// Adopt reads the connected prefixes and the routes of our protocol left in
// the table by an earlier run. Routes with another metric than ours, and
// routes for connected prefixes, are deleted at once; the others stay in
// the kernel, marked stale, until they are learned again (Update with the
// same next hops is then a no-op) or Sweep removes them.
func (r *Reconciler) Adopt() error {
	conn, err := r.k.Connected(r.table)
	if err != nil {
		return fmt.Errorf("fib: %w", err)
	}
	rs, err := r.k.Routes(r.table, r.proto)
	if err != nil {
		return fmt.Errorf("fib: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.connected = conn
	r.ops = r.ops[:0]
	for _, kr := range rs {
		p := kr.Prefix
		if kr.Metric != r.metric {
			// Left by a run with another metric: a duplicate of what we
			// will install.
			r.ops = append(r.ops, Op{Kind: OpDelete, Route: Route{Prefix: p, Table: r.table, Protocol: r.proto, Metric: kr.Metric}})
			continue
		}
		if _, ok := r.inst[p]; ok {
			continue
		}
		hops := make([]NextHop, len(kr.NextHops))
		for i, h := range kr.NextHops {
			// We install with Link 0 and the kernel reports the link it
			// resolved; compare gateways only.
			hops[i] = NextHop{Gateway: h.Gateway}
		}
		r.inst[p] = installed{hops: SortNextHops(hops), stale: true}
		r.m.stale.Inc()
		if _, ok := r.desired[p]; ok {
			r.plan(p)
		} else if _, ok := r.connected[p]; ok {
			r.plan(p)
		}
	}
	return r.applySorted()
}

// Update records changes and brings the kernel in line with them, in as
// few netlink batches as possible. Prefixes are masked; with multipath off
// only the first next hop of each change is used.
func (r *Reconciler) Update(changes []Change) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops = r.ops[:0]
	for _, c := range changes {
		p := c.Prefix.Masked()
		if !p.IsValid() {
			continue
		}
		if len(c.NextHops) == 0 {
			delete(r.desired, p)
		} else {
			hops := SortNextHops(append([]NextHop(nil), c.NextHops...))
			if !r.multi && len(hops) > 1 {
				hops = append([]NextHop(nil), c.NextHops[0])
			}
			r.desired[p] = hops
		}
	}
	// Plan after recording everything, so that a prefix changed twice in
	// one call gets one op.
	for _, c := range changes {
		if p := c.Prefix.Masked(); p.IsValid() {
			r.plan(p)
		}
	}
	return r.apply()
}

// plan appends to r.ops the op (if any) that makes the kernel's route for p
// match the desired state, once per prefix per round (r.seen, cleared by
// apply).
func (r *Reconciler) plan(p netip.Prefix) {
	if _, ok := r.seen[p]; ok {
		return
	}
	r.seen[p] = struct{}{}
	want := r.desired[p]
	if _, ok := r.connected[p]; ok {
		want = nil
	}
	have, ok := r.inst[p]
	var op Op
	switch {
	case len(want) == 0 && !ok:
		delete(r.failed, p)
		return
	case len(want) == 0:
		op = Op{Kind: OpDelete, Route: r.route(p, nil)}
	case ok && sameNextHops(have.hops, want):
		if have.stale {
			have.stale = false
			r.inst[p] = have
			r.m.stale.Dec()
		}
		delete(r.failed, p)
		return
	default:
		op = Op{Kind: OpReplace, Route: r.route(p, want)}
	}
	r.ops = append(r.ops, op)
}

// applySorted sorts r.ops by prefix (they came from map iteration; a stable
// order makes the kernel's work and the tests deterministic) and applies
// them.
func (r *Reconciler) applySorted() error {
	slices.SortStableFunc(r.ops, func(a, b Op) int { return comparePrefix(a.Route.Prefix, b.Route.Prefix) })
	return r.apply()
}

// apply sends r.ops to the kernel and records the outcome.
func (r *Reconciler) apply() error {
	clear(r.seen)
	if len(r.ops) == 0 {
		return nil
	}
	errs := r.k.Apply(r.ops)
	var first error
	nfail := 0
	for i, op := range r.ops {
		var err error
		if errs != nil {
			err = errs[i]
		}
		p := op.Route.Prefix
		if err != nil && op.Kind == OpDelete && errors.Is(err, ErrNoRoute) {
			err = nil // already gone: what we wanted
		}
		if err != nil {
			nfail++
			if first == nil {
				first = err
			}
			r.failed[p] = struct{}{}
			r.m.errors.WithLabelValues(op.Kind.String()).Inc()
			continue
		}
		r.m.ops.WithLabelValues(op.Kind.String()).Inc()
		if op.Route.Metric != r.metric {
			continue // a leftover with another metric (Adopt), not ours to track
		}
		delete(r.failed, p)
		old, had := r.inst[p]
		if had && old.stale {
			r.m.stale.Dec()
		}
		switch op.Kind {
		case OpReplace:
			r.inst[p] = installed{hops: op.Route.NextHops}
		case OpDelete:
			delete(r.inst, p)
		}
	}
	n := len(r.ops)
	r.ops = r.ops[:0]
	r.m.routes.Set(float64(len(r.inst)))
	r.m.failed.Set(float64(len(r.failed)))
	if nfail > 0 {
		return fmt.Errorf("fib: %d of %d route changes failed, first: %w", nfail, n, first)
	}
	return nil
}

// Sweep deletes the stale routes (adopted by Adopt and not learned again)
// and returns how many it removed. Call it once routing has converged,
// e.g. after End-of-RIB from every peer or a stale timer.
func (r *Reconciler) Sweep() (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops = r.ops[:0]
	for p, in := range r.inst {
		if in.stale {
			if _, ok := r.desired[p]; !ok {
				r.ops = append(r.ops, Op{Kind: OpDelete, Route: r.route(p, nil)})
			}
		}
	}
	n := len(r.ops)
	return n, r.applySorted()
}

// Flush deletes every route this Reconciler installed or adopted and
// forgets the desired routes: BGP stopped.
func (r *Reconciler) Flush() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.desired)
	clear(r.failed)
	r.ops = r.ops[:0]
	for p := range r.inst {
		r.ops = append(r.ops, Op{Kind: OpDelete, Route: r.route(p, nil)})
	}
	return r.applySorted()
}

// Retry plans again every prefix whose last kernel operation failed.
func (r *Reconciler) Retry() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops = r.ops[:0]
	for p := range r.failed {
		r.plan(p)
	}
	return r.applySorted()
}

// RefreshConnected reads the connected prefixes again. A route of ours for
// a prefix that became connected is deleted; a desired prefix that is no
// longer connected is installed; failed prefixes are retried.
func (r *Reconciler) RefreshConnected() error {
	conn, err := r.k.Connected(r.table)
	if err != nil {
		return fmt.Errorf("fib: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.connected
	r.connected = conn
	r.ops = r.ops[:0]
	for p := range conn {
		if _, was := old[p]; !was {
			r.plan(p)
		}
	}
	for p := range old {
		if _, is := conn[p]; !is {
			r.plan(p)
		}
	}
	for p := range r.failed {
		r.plan(p)
	}
	return r.applySorted()
}

// Run watches the kernel for connected changes and calls RefreshConnected
// (after Options.Debounce) for each burst of them, until ctx is done. It
// returns nil then, or an error when the kernel cannot be watched at all.
// Refresh errors are logged.
func (r *Reconciler) Run(ctx context.Context) error {
	ev := make(chan struct{}, 1)
	werr := make(chan error, 1)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		werr <- r.k.Watch(wctx, func() {
			select {
			case ev <- struct{}{}:
			default:
			}
		})
	}()
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		select {
		case <-ctx.Done():
			cancel()
			<-werr
			return nil
		case err := <-werr:
			if err != nil {
				return fmt.Errorf("fib: %w", err)
			}
			<-ctx.Done()
			return nil
		case <-ev:
			t.Reset(r.wait)
		case <-t.C:
			if err := r.RefreshConnected(); err != nil {
				r.log.Warn("refreshing connected routes", "err", err)
			}
		}
	}
}

// Routes returns what is installed in the kernel as far as the Reconciler
// knows, sorted by prefix.
func (r *Reconciler) Routes() []Route {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Route, 0, len(r.inst))
	for p, in := range r.inst {
		out = append(out, r.route(p, append([]NextHop(nil), in.hops...)))
	}
	SortRoutes(out)
	return out
}

// Installed reports whether a route of ours for p is in the kernel and with
// which next hops.
func (r *Reconciler) Installed(p netip.Prefix) ([]NextHop, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	in, ok := r.inst[p.Masked()]
	return append([]NextHop(nil), in.hops...), ok
}

// Stats are counts for status output.
type Stats struct {
	Installed int `json:"installed"`
	Stale     int `json:"stale"`
	Failed    int `json:"failed"`
	Desired   int `json:"desired"`
}

// Stats returns current counts.
func (r *Reconciler) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Stats{Installed: len(r.inst), Failed: len(r.failed), Desired: len(r.desired)}
	for _, in := range r.inst {
		if in.stale {
			s.Stale++
		}
	}
	return s
}
