package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/havpn/havpn/internal/netnsutil"
	"github.com/vishvananda/netlink"
)

// DefaultAddrWatchInterval is WatchAddr's default time between rounds of
// address dumps.
const DefaultAddrWatchInterval = 10 * time.Millisecond

// AddrWatchOptions configure WatchAddr.
type AddrWatchOptions struct {
	// Nodes are the nodes whose namespaces are dumped, in the order of
	// AddrSample.Held.
	Nodes []string
	// Addr is the address looked for, on any interface of a node.
	Addr netip.Addr
	// Interval is the time between rounds; default
	// DefaultAddrWatchInterval.
	Interval time.Duration
}

// AddrSample is one round of address dumps.
type AddrSample struct {
	// At is when the round started; the dumps of one round take well
	// under a millisecond on an idle machine.
	At time.Time
	// Held tells, per node of AddrWatchOptions.Nodes, whether the node had
	// the address.
	Held []bool
}

// holders counts the nodes that held the address.
func (s AddrSample) holders() int {
	n := 0
	for _, h := range s.Held {
		if h {
			n++
		}
	}
	return n
}

// AddrTimeline is what a WatchAddr saw: every round, in order.
type AddrTimeline struct {
	Nodes   []string
	Addr    netip.Addr
	Samples []AddrSample
}

// AddrWindow is a run of consecutive samples that share a property (two
// holders or more, no holder). First and Last are the times of its first
// and last sample; End is the time of the next sample (the first without
// the property), zero when the window lasts to the end of the timeline.
// Holders are the nodes that held the address in any sample of the
// window.
type AddrWindow struct {
	First, Last, End time.Time
	Holders          []string
}

// Overlaps returns the windows in which two or more nodes held the address
// at once.
func (tl *AddrTimeline) Overlaps() []AddrWindow {
	return tl.windows(func(s AddrSample) bool { return s.holders() > 1 })
}

// Gaps returns the windows in which no node held the address.
func (tl *AddrTimeline) Gaps() []AddrWindow {
	return tl.windows(func(s AddrSample) bool { return s.holders() == 0 })
}

// HeldBy reports whether node held the address in the last sample at or
// before t (false before the first sample or for a node not watched).
func (tl *AddrTimeline) HeldBy(node string, t time.Time) bool {
	i := tl.index(node)
	if i < 0 {
		return false
	}
	held := false
	for _, s := range tl.Samples {
		if s.At.After(t) {
			break
		}
		held = s.Held[i]
	}
	return held
}

func (tl *AddrTimeline) index(node string) int {
	for i, n := range tl.Nodes {
		if n == node {
			return i
		}
	}
	return -1
}

func (tl *AddrTimeline) windows(in func(AddrSample) bool) []AddrWindow {
	var out []AddrWindow
	var cur *AddrWindow
	seen := map[string]bool{}
	for _, s := range tl.Samples {
		if !in(s) {
			if cur != nil {
				cur.End = s.At
				out = append(out, *cur)
				cur = nil
			}
			continue
		}
		if cur == nil {
			cur = &AddrWindow{First: s.At}
			clear(seen)
		}
		cur.Last = s.At
		for i, h := range s.Held {
			if h && !seen[tl.Nodes[i]] {
				seen[tl.Nodes[i]] = true
				cur.Holders = append(cur.Holders, tl.Nodes[i])
			}
		}
	}
	if cur != nil {
		out = append(out, *cur)
	}
	return out
}

// AddrWatch is a running WatchAddr. Its methods are safe for concurrent
// use.
type AddrWatch struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex // guards tl, err and waiters' view of them
	tl     AddrTimeline
	err    error
	notify chan struct{} // closed and replaced after every round
}

// WatchAddr starts dumping the addresses of the nodes' namespaces (netlink
// RTM_GETADDR, in this process) every Interval, recording who holds
// o.Addr, until Stop or ctx ends. It needs root, like everything on a Lab.
func (l *Lab) WatchAddr(ctx context.Context, o AddrWatchOptions) (*AddrWatch, error) {
	if !o.Addr.IsValid() {
		return nil, errors.New("address watch: no address")
	}
	if len(o.Nodes) == 0 {
		return nil, errors.New("address watch: no nodes")
	}
	if o.Interval <= 0 {
		o.Interval = DefaultAddrWatchInterval
	}
	hs := make([]*netlink.Handle, 0, len(o.Nodes))
	closeAll := func() {
		for _, h := range hs {
			h.Close()
		}
	}
	for _, n := range o.Nodes {
		ns, err := l.NS(n)
		if err != nil {
			closeAll()
			return nil, err
		}
		h, err := netnsutil.Handle(ns)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("address watch: %s: %w", n, err)
		}
		hs = append(hs, h)
	}
	ctx, cancel := context.WithCancel(ctx)
	w := &AddrWatch{cancel: cancel, done: make(chan struct{}), notify: make(chan struct{}),
		tl: AddrTimeline{Nodes: append([]string(nil), o.Nodes...), Addr: o.Addr.Unmap()}}
	go func() {
		defer close(w.done)
		defer closeAll()
		w.run(ctx, hs, o.Interval)
	}()
	return w, nil
}

func (w *AddrWatch) run(ctx context.Context, hs []*netlink.Handle, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		s := AddrSample{At: time.Now(), Held: make([]bool, len(hs))}
		var err error
		for i, h := range hs {
			if s.Held[i], err = holds(h, w.tl.Addr); err != nil {
				err = fmt.Errorf("address watch: %s: %w", w.tl.Nodes[i], err)
				break
			}
		}
		w.mu.Lock()
		if err != nil {
			w.err = err
		} else {
			w.tl.Samples = append(w.tl.Samples, s)
		}
		close(w.notify)
		w.notify = make(chan struct{})
		w.mu.Unlock()
		if err != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// holds dumps the addresses of h's namespace and reports whether a is
// among them. A dump that a concurrent change interrupted is repeated.
func holds(h *netlink.Handle, a netip.Addr) (bool, error) {
	fam := netlink.FAMILY_V4
	if a.Is6() {
		fam = netlink.FAMILY_V6
	}
	for try := 0; ; try++ {
		addrs, err := h.AddrList(nil, fam)
		if errors.Is(err, netlink.ErrDumpInterrupted) && try < 10 {
			continue
		}
		if err != nil {
			return false, err
		}
		for _, x := range addrs {
			if y, ok := netip.AddrFromSlice(x.IP); ok && y.Unmap() == a {
				return true, nil
			}
		}
		return false, nil
	}
}

// Stop ends the watch and returns what it saw, with the error that ended
// it early (a node's namespace gone, say), if any.
func (w *AddrWatch) Stop() (*AddrTimeline, error) {
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	tl := w.tl
	tl.Samples = append([]AddrSample(nil), w.tl.Samples...)
	return &tl, w.err
}

// Wait waits until a sample taken at or after since satisfies cond (given
// the nodes that hold the address), and returns that sample's time. It
// fails when ctx ends or the watch stops first.
func (w *AddrWatch) Wait(ctx context.Context, since time.Time, cond func(holders []string) bool) (time.Time, error) {
	for {
		w.mu.Lock()
		// Only the newest sample counts: the condition must hold now.
		if n := len(w.tl.Samples); n > 0 {
			if s := w.tl.Samples[n-1]; !s.At.Before(since) && cond(w.holderNames(s)) {
				w.mu.Unlock()
				return s.At, nil
			}
		}
		err, notify := w.err, w.notify
		w.mu.Unlock()
		if err != nil {
			return time.Time{}, err
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("waiting for the holders of %s: %w", w.tl.Addr, ctx.Err())
		case <-w.done:
			w.mu.Lock()
			err := w.err
			w.mu.Unlock()
			if err == nil {
				err = errors.New("the watch stopped")
			}
			return time.Time{}, fmt.Errorf("waiting for the holders of %s: %w", w.tl.Addr, err)
		case <-notify:
		}
	}
}

// holderNames lists the nodes that held the address in s; w.mu is held.
func (w *AddrWatch) holderNames(s AddrSample) []string {
	var out []string
	for i, h := range s.Held {
		if h {
			out = append(out, w.tl.Nodes[i])
		}
	}
	return out
}

// Holders returns the nodes among nodes that have address a configured
// now, by one dump of each namespace.
func (l *Lab) Holders(a netip.Addr, nodes ...string) ([]string, error) {
	var out []string
	for _, n := range nodes {
		ns, err := l.NS(n)
		if err != nil {
			return nil, err
		}
		h, err := netnsutil.Handle(ns)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		held, err := holds(h, a.Unmap())
		h.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: dumping addresses: %w", n, err)
		}
		if held {
			out = append(out, n)
		}
	}
	return out, nil
}
