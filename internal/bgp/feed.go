package bgp

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/havpn/havpn/internal/fib"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

// member is one best path of a prefix (one of the equal-cost set with
// multipath): who sent it (peer index, 0 for local paths), its ADD-PATH id
// and its next hop (index into feed.nhs, 0 for none). 12 bytes, so that a
// full table costs little.
type member struct {
	peer uint16
	id   uint32
	nh   uint32
}

// feed turns GoBGP best-path events into FIB changes. onBestPath runs on
// GoBGP's watcher goroutine (one per watch, so calls are sequential) and
// owns members, peers and nhs; it hands the new next hops of each touched
// prefix to pending, which the feed goroutine (Speaker.runFeed) drains in
// batches.
type feed struct {
	multi bool
	// Owned by onBestPath:
	members map[netip.Prefix][]member
	peers   map[netip.Addr]uint16 // peer address -> index (from 1)
	nhIdx   map[netip.Addr]uint32 // next hop -> index (from 1)
	nhs     []netip.Addr          // index -> next hop; nhs[0] unused
	single  [][]fib.NextHop       // index -> the one-hop set, shared
	sets    map[string][]fib.NextHop
	keyBuf  []byte

	last atomic.Int64 // unix ns of the last best-path event

	mu      sync.Mutex                     // guards pending and hooks
	pending map[netip.Prefix][]fib.NextHop // nil: no route; slices are shared, read-only
	hooks   []func()                       // run after the next batch
	kick    chan struct{}                  // capacity 1: work is pending
}

func newFeed(multi bool) *feed {
	return &feed{
		multi:   multi,
		members: make(map[netip.Prefix][]member),
		peers:   make(map[netip.Addr]uint16),
		nhIdx:   make(map[netip.Addr]uint32),
		nhs:     []netip.Addr{{}},
		single:  [][]fib.NextHop{nil},
		sets:    make(map[string][]fib.NextHop),
		pending: make(map[netip.Prefix][]fib.NextHop),
		kick:    make(chan struct{}, 1),
	}
}

func (f *feed) peerIndex(a netip.Addr) uint16 {
	if !a.IsValid() {
		return 0
	}
	if i, ok := f.peers[a]; ok {
		return i
	}
	i := uint16(len(f.peers) + 1)
	f.peers[a] = i
	return i
}

func (f *feed) nhIndex(a netip.Addr) uint32 {
	if !a.IsValid() || a.IsUnspecified() {
		return 0
	}
	if i, ok := f.nhIdx[a]; ok {
		return i
	}
	i := uint32(len(f.nhs))
	f.nhIdx[a] = i
	f.nhs = append(f.nhs, a)
	f.single = append(f.single, []fib.NextHop{{Gateway: a}})
	return i
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
	type change struct {
		p    netip.Prefix
		hops []fib.NextHop
	}
	changes := make([]change, 0, len(paths))
	for _, p := range paths {
		pfx, ok := prefixOf(p)
		if !ok {
			continue
		}
		m := member{peer: f.peerIndex(p.PeerAddress.Unmap()), id: p.RemoteID}
		gone := p.Withdrawal || p.IsNexthopInvalid
		if !gone {
			m.nh = f.nhIndex(nextHopOf(p))
		}
		ms := f.members[pfx]
		switch {
		case gone && !f.multi:
			ms = nil
		case gone:
			ms = slices.DeleteFunc(ms, func(x member) bool { return x.peer == m.peer && x.id == m.id })
		case !f.multi && len(ms) == 1:
			ms[0] = m // reuse the one-element slice
		case !f.multi:
			ms = []member{m}
		default:
			i := slices.IndexFunc(ms, func(x member) bool { return x.peer == m.peer && x.id == m.id })
			if i >= 0 {
				ms[i] = m
			} else {
				ms = append(ms, m)
			}
		}
		if len(ms) == 0 {
			delete(f.members, pfx)
		} else {
			f.members[pfx] = ms
		}
		changes = append(changes, change{pfx, f.hops(ms)})
	}
	if len(changes) == 0 {
		return
	}
	f.last.Store(time.Now().UnixNano())
	f.mu.Lock()
	for _, c := range changes {
		f.pending[c.p] = c.hops
	}
	f.mu.Unlock()
	f.signal()
}

// hops returns what the kernel should route for a prefix with best paths
// ms: nothing when there is none or when one is our own (we originate the
// prefix, so the route to it is local), else their next hops, as a shared
// read-only slice.
func (f *feed) hops(ms []member) []fib.NextHop {
	var nh1, nhN uint32
	n := 0
	for _, m := range ms {
		if m.peer == 0 {
			return nil
		}
		if m.nh == 0 {
			continue
		}
		if n == 0 {
			nh1 = m.nh
		} else if m.nh != nh1 {
			nhN = m.nh
		}
		n++
	}
	switch {
	case n == 0:
		return nil
	case nhN == 0:
		return f.single[nh1]
	}
	// Several distinct next hops: intern the sorted set.
	hs := make([]fib.NextHop, 0, len(ms))
	for _, m := range ms {
		if m.nh != 0 {
			hs = append(hs, fib.NextHop{Gateway: f.nhs[m.nh]})
		}
	}
	hs = fib.SortNextHops(hs)
	key := f.keyBuf[:0]
	for _, h := range hs {
		key = append(key, h.Gateway.AsSlice()...)
		key = append(key, '|')
	}
	f.keyBuf = key
	if s, ok := f.sets[string(key)]; ok {
		return s
	}
	f.sets[string(key)] = hs
	return hs
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
	pending, hooks := f.pending, f.hooks
	f.hooks = nil
	if len(pending) == 0 {
		f.mu.Unlock()
		return nil, hooks
	}
	// A fresh map rather than clear(): the old one may have grown to a
	// full table and would keep that memory.
	f.pending = make(map[netip.Prefix][]fib.NextHop)
	f.mu.Unlock()
	changes := make([]fib.Change, 0, len(pending))
	for p, hs := range pending {
		changes = append(changes, fib.Change{Prefix: p, NextHops: hs})
	}
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
