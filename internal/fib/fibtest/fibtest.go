// Package fibtest is an in-memory fib.Kernel that records every operation
// as a line of text, for golden tests of code that installs routes
// (tailscale's router tests compare recorded commands the same way).
package fibtest

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/havpn/havpn/internal/fib"
)

type key struct {
	prefix netip.Prefix
	table  uint32
	proto  uint8
	metric uint32
}

// Kernel is a fake fib.Kernel: a routing table in a map plus a set of
// connected prefixes. It is safe for concurrent use. The zero value is not
// usable; call New.
type Kernel struct {
	mu        sync.Mutex // guards everything below
	routes    map[key]fib.Route
	connected map[netip.Prefix]struct{}
	log       []string
	fail      map[netip.Prefix]error
	watchers  []func()
	rwatchers []func(proto uint8)
	lwatchers []func([]netip.Prefix)
	addrs     []netip.Prefix
	batches   int
}

// New returns an empty fake kernel.
func New() *Kernel {
	return &Kernel{
		routes:    make(map[key]fib.Route),
		connected: make(map[netip.Prefix]struct{}),
		fail:      make(map[netip.Prefix]error),
	}
}

func keyOf(r fib.Route) key {
	return key{r.Prefix.Masked(), r.Table, r.Protocol, r.Metric}
}

// Preload puts routes in the table without recording anything, as if an
// earlier run had left them.
func (k *Kernel) Preload(rs ...fib.Route) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, r := range rs {
		r.NextHops = fib.SortNextHops(slices.Clone(r.NextHops))
		k.routes[keyOf(r)] = r
	}
}

// AddRoute puts routes in the table without recording an op, like an admin
// or another program would, and notifies route watchers.
func (k *Kernel) AddRoute(rs ...fib.Route) {
	k.Preload(rs...)
	k.notifyRoutes(rs)
}

// DelRoute removes routes (matched by prefix, table, protocol and metric)
// without recording an op and notifies route watchers.
func (k *Kernel) DelRoute(rs ...fib.Route) {
	k.mu.Lock()
	for _, r := range rs {
		delete(k.routes, keyOf(r))
	}
	k.mu.Unlock()
	k.notifyRoutes(rs)
}

func (k *Kernel) notifyRoutes(rs []fib.Route) {
	k.mu.Lock()
	ws := slices.Clone(k.rwatchers)
	k.mu.Unlock()
	for _, r := range rs {
		for _, w := range ws {
			w(r.Protocol)
		}
	}
}

// SetAddrs replaces the addresses on the box (for Addrs) and notifies
// route watchers. It does not change the connected set (SetConnected).
func (k *Kernel) SetAddrs(ps ...netip.Prefix) {
	k.mu.Lock()
	k.addrs = slices.Clone(ps)
	ws := slices.Clone(k.rwatchers)
	k.mu.Unlock()
	for _, w := range ws {
		w(0)
	}
}

// Addrs returns what SetAddrs set.
func (k *Kernel) Addrs() ([]netip.Prefix, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.addrs), nil
}

// WatchRoutes calls changed on AddRoute, DelRoute and SetAddrs, except for
// routes of protocol ignore, until ctx is done.
func (k *Kernel) WatchRoutes(ctx context.Context, ignore uint8, changed func()) error {
	k.mu.Lock()
	k.rwatchers = append(k.rwatchers, func(proto uint8) {
		if proto != ignore {
			changed()
		}
	})
	k.mu.Unlock()
	<-ctx.Done()
	return nil
}

// LinkDown tells link watchers that an interface with these prefixes went
// down.
func (k *Kernel) LinkDown(ps ...netip.Prefix) {
	k.mu.Lock()
	ws := slices.Clone(k.lwatchers)
	k.mu.Unlock()
	for _, w := range ws {
		w(ps)
	}
}

// WatchLinkDown registers down for LinkDown until ctx is done.
func (k *Kernel) WatchLinkDown(ctx context.Context, down func([]netip.Prefix)) error {
	k.mu.Lock()
	k.lwatchers = append(k.lwatchers, down)
	k.mu.Unlock()
	<-ctx.Done()
	return nil
}

// SetConnected replaces the set of connected prefixes and notifies
// watchers, as the kernel would on an address change.
func (k *Kernel) SetConnected(ps ...netip.Prefix) {
	k.mu.Lock()
	clear(k.connected)
	for _, p := range ps {
		k.connected[p] = struct{}{}
	}
	ws := slices.Clone(k.watchers)
	k.mu.Unlock()
	for _, w := range ws {
		w()
	}
}

// Fail makes every later op on prefix p fail with err (nil clears).
func (k *Kernel) Fail(p netip.Prefix, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err == nil {
		delete(k.fail, p)
		return
	}
	k.fail[p] = err
}

// Routes implements fib.Kernel.
func (k *Kernel) Routes(table uint32, proto uint8) ([]fib.Route, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []fib.Route
	for kk, r := range k.routes {
		if kk.table == table && kk.proto == proto {
			r.NextHops = slices.Clone(r.NextHops)
			out = append(out, r)
		}
	}
	fib.SortRoutes(out)
	return out, nil
}

// Apply implements fib.Kernel and records each op as one line.
func (k *Kernel) Apply(ops []fib.Op) []error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.batches++
	var errs []error
	for i, op := range ops {
		var err error
		if e, ok := k.fail[op.Route.Prefix.Masked()]; ok {
			err = e
		} else {
			kk := keyOf(op.Route)
			switch op.Kind {
			case fib.OpReplace:
				r := op.Route
				r.NextHops = fib.SortNextHops(slices.Clone(r.NextHops))
				k.routes[kk] = r
			case fib.OpDelete:
				if _, ok := k.routes[kk]; !ok {
					err = fib.ErrNoRoute
				}
				delete(k.routes, kk)
			default:
				err = fmt.Errorf("unknown op %v", op.Kind)
			}
		}
		line := op.String()
		if err != nil {
			line += " => " + err.Error()
			if errs == nil {
				errs = make([]error, len(ops))
			}
			errs[i] = &fib.OpError{Op: op, Err: err}
		}
		k.log = append(k.log, line)
	}
	return errs
}

// Connected implements fib.Kernel.
func (k *Kernel) Connected(uint32) (map[netip.Prefix]struct{}, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make(map[netip.Prefix]struct{}, len(k.connected))
	for p := range k.connected {
		out[p] = struct{}{}
	}
	return out, nil
}

// Watch implements fib.Kernel: SetConnected calls changed.
func (k *Kernel) Watch(ctx context.Context, changed func()) error {
	k.mu.Lock()
	k.watchers = append(k.watchers, changed)
	k.mu.Unlock()
	<-ctx.Done()
	return nil
}

// Ops returns the ops recorded since the last call, one per line, and
// forgets them.
func (k *Kernel) Ops() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := strings.Join(k.log, "\n")
	k.log = k.log[:0]
	return s
}

// Table returns the fake's routing table as text, one route per line,
// sorted.
func (k *Kernel) Table() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	rs := make([]fib.Route, 0, len(k.routes))
	for _, r := range k.routes {
		rs = append(rs, r)
	}
	fib.SortRoutes(rs)
	lines := make([]string, len(rs))
	for i, r := range rs {
		lines[i] = r.String()
	}
	return strings.Join(lines, "\n")
}

// Batches returns how many Apply calls were made.
func (k *Kernel) Batches() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.batches
}

var _ fib.Kernel = (*Kernel)(nil)
