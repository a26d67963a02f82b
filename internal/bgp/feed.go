package bgp

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/havpn/havpn/internal/fib"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

// pathKey identifies one path of a prefix: who sent it and its ADD-PATH
// id. Local paths have an invalid peer address.
type pathKey struct {
	peer netip.Addr
	id   uint32
}

// feed turns GoBGP best-path events into FIB changes. onBestPath runs on
// GoBGP's watcher goroutine (one per watch, so calls are sequential) and
// owns members; it hands the new next hops of each touched prefix to
// pending, which the feed goroutine (Speaker.runFeed) drains in batches.
type feed struct {
	multi bool
	// members holds, per prefix, the paths that are best (or equal-cost
	// best with multipath), with their next hops. Only onBestPath touches
	// it.
	members map[netip.Prefix]map[pathKey]netip.Addr

	mu      sync.Mutex                     // guards pending and hooks
	pending map[netip.Prefix][]fib.NextHop // nil/empty slice: no route
	hooks   []func()                       // run after the next batch
	kick    chan struct{}                  // capacity 1: work is pending
}

func newFeed(multi bool) *feed {
	return &feed{
		multi:   multi,
		members: make(map[netip.Prefix]map[pathKey]netip.Addr),
		pending: make(map[netip.Prefix][]fib.NextHop),
		kick:    make(chan struct{}, 1),
	}
}

// prefixOf returns the IP prefix of a unicast path.
func prefixOf(p *apiutil.Path) (netip.Prefix, bool) {
	if p.Family != bgp.RF_IPv4_UC && p.Family != bgp.RF_IPv6_UC {
		return netip.Prefix{}, false
	}
	n, ok := p.Nlri.(*bgp.IPAddrPrefix)
	if !ok || !n.Prefix.IsValid() {
		return netip.Prefix{}, false
	}
	return n.Prefix.Masked(), true
}

// nextHopOf returns the next hop of a path: NEXT_HOP for IPv4, the global
// next hop of MP_REACH_NLRI otherwise.
func nextHopOf(p *apiutil.Path) netip.Addr {
	for _, a := range p.Attrs {
		switch a := a.(type) {
		case *bgp.PathAttributeNextHop:
			return a.Value.Unmap()
		case *bgp.PathAttributeMpReachNLRI:
			return a.Nexthop.Unmap()
		}
	}
	return netip.Addr{}
}

// onBestPath is GoBGP's OnBestPath callback. Without multipath each event
// carries the new best path of a prefix (a withdrawal when none is left);
// with multipath it carries the changes to the equal-cost set, one path
// at a time (added or changed, or withdrawn), or the whole set in the
// initial snapshot.
func (f *feed) onBestPath(paths []*apiutil.Path, _ time.Time) {
	touched := make(map[netip.Prefix]struct{}, len(paths))
	for _, p := range paths {
		pfx, ok := prefixOf(p)
		if !ok {
			continue
		}
		key := pathKey{peer: p.PeerAddress.Unmap(), id: p.RemoteID}
		m := f.members[pfx]
		gone := p.Withdrawal || p.IsNexthopInvalid
		switch {
		case !f.multi && gone:
			delete(f.members, pfx)
		case !f.multi:
			f.members[pfx] = map[pathKey]netip.Addr{key: nextHopOf(p)}
		case gone:
			delete(m, key)
			if len(m) == 0 {
				delete(f.members, pfx)
			}
		default:
			if m == nil {
				m = make(map[pathKey]netip.Addr, 1)
				f.members[pfx] = m
			}
			m[key] = nextHopOf(p)
		}
		touched[pfx] = struct{}{}
	}
	if len(touched) == 0 {
		return
	}
	f.mu.Lock()
	for pfx := range touched {
		f.pending[pfx] = f.hops(pfx)
	}
	f.mu.Unlock()
	f.signal()
}

// hops returns what the kernel should route for pfx: nothing when the
// prefix is withdrawn or when a best path is our own (we originate it, so
// the route to it is local), else the next hops of the best paths.
func (f *feed) hops(pfx netip.Prefix) []fib.NextHop {
	m := f.members[pfx]
	if len(m) == 0 {
		return nil
	}
	hs := make([]fib.NextHop, 0, len(m))
	for k, nh := range m {
		if !k.peer.IsValid() {
			return nil
		}
		if nh.IsValid() && !nh.IsUnspecified() {
			hs = append(hs, fib.NextHop{Gateway: nh})
		}
	}
	return fib.SortNextHops(hs)
}

func (f *feed) signal() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// after runs fn on the feed goroutine once the changes pending now are
// applied.
func (f *feed) after(fn func()) {
	f.mu.Lock()
	f.hooks = append(f.hooks, fn)
	f.mu.Unlock()
	f.signal()
}

// take returns the pending changes and hooks and resets them.
func (f *feed) take() ([]fib.Change, []func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.pending) == 0 && len(f.hooks) == 0 {
		return nil, nil
	}
	changes := make([]fib.Change, 0, len(f.pending))
	for p, hs := range f.pending {
		changes = append(changes, fib.Change{Prefix: p, NextHops: hs})
	}
	clear(f.pending)
	hooks := f.hooks
	f.hooks = nil
	return changes, hooks
}

// runFeed applies pending best-path changes to the FIB until ctx is done.
// Changes that arrive while a batch is applied form the next batch, so a
// burst of 100k prefixes becomes a few large netlink batches.
func (s *Speaker) runFeed(ctx context.Context, ss *session) {
	var lastLog time.Time
	suppressed := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-ss.feed.kick:
		}
		changes, hooks := ss.feed.take()
		if len(changes) > 0 {
			if err := s.fib.Update(changes); err != nil {
				// Refused routes are retried by the reconciler; say so
				// at most every 10s.
				if time.Since(lastLog) > 10*time.Second {
					s.log.Warn("installing routes", "err", err, "similar_suppressed", suppressed)
					lastLog, suppressed = time.Now(), 0
				} else {
					suppressed++
				}
			}
		}
		for _, h := range hooks {
			h()
		}
	}
}
