package fib

import (
	"cmp"
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

// entry is the state of one prefix. want and have are ids of interned
// next-hop sets (0: none): want is what BGP wants routed, have what we
// believe the kernel holds (0: no route of ours).
type entry struct {
	want, have uint32
	flags      uint8
}

const (
	flagStale  = 1 << iota // adopted from an earlier run, not learned again yet
	flagFailed             // the last kernel operation for the prefix failed
)

// hopSet is an interned, immutable, sorted set of next hops shared by all
// prefixes routed the same way (a full table from one peer is one set).
type hopSet struct {
	hops []NextHop
	refs int
}

// Reconciler keeps the kernel's routes of one protocol in one table equal to
// the desired routes. All methods are safe for concurrent use; kernel
// writes are serialized by an internal mutex. Methods return an error when
// some kernel operation failed; the Reconciler's state is still consistent
// (failed prefixes are retried by Retry and by every connected change), so
// callers usually log it and go on.
//
// Memory: one map entry of about 50 bytes per prefix; next-hop sets are
// shared.
type Reconciler struct {
	k      Kernel
	table  uint32
	proto  uint8
	metric uint32
	multi  bool
	log    *slog.Logger
	m      *metrics
	wait   time.Duration

	mu        sync.Mutex // guards everything below and serializes kernel writes
	routes    map[netip.Prefix]entry
	sets      []hopSet          // by id; sets[0] is the empty set
	setIDs    map[string]uint32 // key: setKey(hops)
	freeIDs   []uint32
	lastID    uint32 // fast path of intern: the set of the previous call
	connected map[netip.Prefix]struct{}
	nInst     int // entries with have != 0
	nStale    int
	nFailed   int
	nWant     int
	ops       []Op                      // scratch: the ops of one round
	seen      map[netip.Prefix]struct{} // scratch: prefixes planned this round
	keyBuf    []byte                    // scratch for setKey
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
		routes:    make(map[netip.Prefix]entry),
		sets:      []hopSet{{}},
		setIDs:    make(map[string]uint32),
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

// setKey encodes sorted hops as a map key.
func (r *Reconciler) setKey(hops []NextHop) []byte {
	b := r.keyBuf[:0]
	for _, h := range hops {
		b = append(b, h.Gateway.AsSlice()...)
		b = append(b, byte(h.Link), byte(h.Link>>8), byte(h.Link>>16), byte(h.Link>>24), '|')
	}
	r.keyBuf = b
	return b
}

// intern returns the id of the set equal to hops (sorted, not empty) with
// one more reference, creating it (with a copy of hops) if needed.
func (r *Reconciler) intern(hops []NextHop) uint32 {
	if id := r.lastID; id != 0 && r.sets[id].refs > 0 && sameNextHops(r.sets[id].hops, hops) {
		r.sets[id].refs++
		return id
	}
	key := r.setKey(hops)
	id, ok := r.setIDs[string(key)]
	if !ok {
		hs := hopSet{hops: append([]NextHop(nil), hops...)}
		if n := len(r.freeIDs); n > 0 {
			id = r.freeIDs[n-1]
			r.freeIDs = r.freeIDs[:n-1]
			r.sets[id] = hs
		} else {
			id = uint32(len(r.sets))
			r.sets = append(r.sets, hs)
		}
		r.setIDs[string(key)] = id
	}
	r.sets[id].refs++
	r.lastID = id
	return id
}

// release drops one reference to set id.
func (r *Reconciler) release(id uint32) {
	if id == 0 {
		return
	}
	s := &r.sets[id]
	s.refs--
	if s.refs > 0 {
		return
	}
	delete(r.setIDs, string(r.setKey(s.hops)))
	*s = hopSet{}
	r.freeIDs = append(r.freeIDs, id)
}

// put stores e for p (deleting empty entries) and keeps the counters.
func (r *Reconciler) put(p netip.Prefix, old, e entry) {
	count := func(e entry, d int) {
		if e.have != 0 {
			r.nInst += d
		}
		if e.want != 0 {
			r.nWant += d
		}
		if e.flags&flagStale != 0 {
			r.nStale += d
		}
		if e.flags&flagFailed != 0 {
			r.nFailed += d
		}
	}
	count(old, -1)
	count(e, 1)
	if e.want == 0 && e.have == 0 && e.flags&flagFailed == 0 {
		delete(r.routes, p)
		return
	}
	r.routes[p] = e
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
		old := r.routes[p]
		if old.have != 0 || len(kr.NextHops) == 0 {
			continue
		}
		e := old
		e.have = r.intern(SortNextHops(gateways(kr.NextHops)))
		e.flags |= flagStale
		r.put(p, old, e)
		_, conn := r.connected[p]
		if e.want != 0 || conn {
			r.plan(p)
		}
	}
	return r.applySorted()
}

// gateways copies hops with their gateways only: we install with Link 0
// and the kernel reports the link it resolved.
func gateways(hops []NextHop) []NextHop {
	out := make([]NextHop, len(hops))
	for i, h := range hops {
		out[i] = NextHop{Gateway: h.Gateway}
	}
	return out
}

// Inherit puts routes handed over by another node (the old active's
// installed routes, from state sync) into the kernel, so that forwarding
// goes on while this node's sessions come up. Call it before Adopt, which
// then takes them as stale like routes of an earlier run. Routes for
// connected prefixes, for prefixes this Reconciler already routes, and
// without next hops are skipped; with multipath off only the first next
// hop is used. It returns how many routes went in.
func (r *Reconciler) Inherit(rs []Route) (int, error) {
	conn, err := r.k.Connected(r.table)
	if err != nil {
		return 0, fmt.Errorf("fib: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var ops []Op
	for _, in := range rs {
		p := in.Prefix.Masked()
		if _, c := conn[p]; c || len(in.NextHops) == 0 || r.routes[p].have != 0 {
			continue
		}
		hops := gateways(in.NextHops)
		if !r.multi {
			hops = hops[:1]
		}
		ops = append(ops, Op{Kind: OpReplace, Route: r.route(p, SortNextHops(hops))})
	}
	if len(ops) == 0 {
		return 0, nil
	}
	n, first := len(ops), error(nil)
	for _, e := range r.k.Apply(ops) {
		if e != nil {
			n--
			first = cmp.Or(first, e)
		}
	}
	if first != nil {
		return n, fmt.Errorf("fib: %d of %d inherited routes refused, first: %w", len(ops)-n, len(ops), first)
	}
	return n, nil
}

// Update records changes and brings the kernel in line with them, in as
// few netlink batches as possible. Prefixes are masked; with multipath off
// only the first next hop of each change is used. Callers may pass the same
// NextHops slice for many changes (it is copied once per distinct set).
func (r *Reconciler) Update(changes []Change) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops = r.ops[:0]
	var sorted []NextHop
	for _, c := range changes {
		p := c.Prefix.Masked()
		if !p.IsValid() {
			continue
		}
		old := r.routes[p]
		e := old
		hops := c.NextHops
		if len(hops) > 1 {
			if !r.multi {
				hops = hops[:1]
			} else if !sortedUnique(hops) {
				sorted = SortNextHops(append(sorted[:0], hops...))
				hops = sorted
			}
		}
		e.want = 0
		if len(hops) > 0 {
			e.want = r.intern(hops)
		}
		r.release(old.want)
		r.put(p, old, e)
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

// sortedUnique reports whether hops is sorted without duplicates.
func sortedUnique(hops []NextHop) bool {
	for i := 1; i < len(hops); i++ {
		if compareNextHop(hops[i-1], hops[i]) >= 0 {
			return false
		}
	}
	return true
}

// plan appends to r.ops the op (if any) that makes the kernel's route for p
// match the desired state, once per prefix per round (r.seen, cleared by
// apply).
func (r *Reconciler) plan(p netip.Prefix) {
	if _, ok := r.seen[p]; ok {
		return
	}
	r.seen[p] = struct{}{}
	old, ok := r.routes[p]
	if !ok {
		return
	}
	want := old.want
	if _, conn := r.connected[p]; conn {
		want = 0
	}
	switch {
	case want == 0 && old.have == 0:
		if old.flags&flagFailed != 0 {
			e := old
			e.flags &^= flagFailed
			r.put(p, old, e)
		}
	case want == 0:
		r.ops = append(r.ops, Op{Kind: OpDelete, Route: r.route(p, nil)})
	case want == old.have:
		if old.flags&(flagStale|flagFailed) != 0 {
			e := old
			e.flags &^= flagStale | flagFailed
			r.put(p, old, e)
		}
	default:
		r.ops = append(r.ops, Op{Kind: OpReplace, Route: r.route(p, r.sets[want].hops)})
	}
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
	defer r.shrinkScratch()
	if len(r.ops) == 0 {
		return nil
	}
	errs := r.k.Apply(r.ops)
	var first error
	nfail := 0
	var okReplace, okDelete, failReplace, failDelete float64
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
			if op.Kind == OpReplace {
				failReplace++
			} else {
				failDelete++
			}
		} else if op.Kind == OpReplace {
			okReplace++
		} else {
			okDelete++
		}
		if op.Route.Metric != r.metric {
			continue // a leftover with another metric (Adopt), not tracked
		}
		old := r.routes[p]
		e := old
		switch {
		case err != nil:
			e.flags |= flagFailed
		case op.Kind == OpReplace:
			e.flags &^= flagFailed | flagStale
			if e.have != e.want {
				r.release(e.have)
				r.sets[e.want].refs++
				e.have = e.want
			}
		default: // deleted
			e.flags &^= flagFailed | flagStale
			r.release(e.have)
			e.have = 0
		}
		r.put(p, old, e)
	}
	n := len(r.ops)
	r.ops = r.ops[:0]
	r.m.ops.WithLabelValues("replace").Add(okReplace)
	r.m.ops.WithLabelValues("delete").Add(okDelete)
	r.m.errors.WithLabelValues("replace").Add(failReplace)
	r.m.errors.WithLabelValues("delete").Add(failDelete)
	r.m.routes.Set(float64(r.nInst))
	r.m.stale.Set(float64(r.nStale))
	r.m.failed.Set(float64(r.nFailed))
	if nfail > 0 {
		return fmt.Errorf("fib: %d of %d route changes failed, first: %w", nfail, n, first)
	}
	return nil
}

// shrinkScratch empties the per-round scratch space, and lets the memory go
// after a big round (a full table) instead of keeping it for ever.
func (r *Reconciler) shrinkScratch() {
	const keep = 4096
	if len(r.seen) > keep {
		r.seen = make(map[netip.Prefix]struct{})
	} else {
		clear(r.seen)
	}
	if cap(r.ops) > keep {
		r.ops = nil
	} else {
		r.ops = r.ops[:0]
	}
}

// Sweep deletes the stale routes (adopted by Adopt and not learned again)
// and returns how many it removed. Call it once routing has converged,
// e.g. after End-of-RIB from every peer or a stale timer.
func (r *Reconciler) Sweep() (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops = r.ops[:0]
	if r.nStale == 0 {
		return 0, nil
	}
	for p, e := range r.routes {
		if e.flags&flagStale != 0 && e.want == 0 && e.have != 0 {
			r.ops = append(r.ops, Op{Kind: OpDelete, Route: r.route(p, nil)})
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
	r.ops = r.ops[:0]
	for p, old := range r.routes {
		e := old
		r.release(e.want)
		e.want = 0
		e.flags &^= flagFailed
		r.put(p, old, e)
		if e.have != 0 {
			r.ops = append(r.ops, Op{Kind: OpDelete, Route: r.route(p, nil)})
		}
	}
	err := r.applySorted()
	if len(r.routes) == 0 {
		// Give the memory of a full table back.
		r.routes = make(map[netip.Prefix]entry)
	}
	return err
}

// Retry plans again every prefix whose last kernel operation failed.
func (r *Reconciler) Retry() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops = r.ops[:0]
	r.planFailed()
	return r.applySorted()
}

func (r *Reconciler) planFailed() {
	if r.nFailed == 0 {
		return
	}
	for p, e := range r.routes {
		if e.flags&flagFailed != 0 {
			r.plan(p)
		}
	}
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
	r.planFailed()
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
	out := make([]Route, 0, r.nInst)
	for p, e := range r.routes {
		if e.have != 0 {
			out = append(out, r.route(p, append([]NextHop(nil), r.sets[e.have].hops...)))
		}
	}
	SortRoutes(out)
	return out
}

// Installed reports whether a route of ours for p is in the kernel and with
// which next hops.
func (r *Reconciler) Installed(p netip.Prefix) ([]NextHop, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.routes[p.Masked()]
	if e.have == 0 {
		return nil, false
	}
	return append([]NextHop(nil), r.sets[e.have].hops...), true
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
	return Stats{Installed: r.nInst, Stale: r.nStale, Failed: r.nFailed, Desired: r.nWant}
}
