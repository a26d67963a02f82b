package lab

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/havpn/havpn/internal/lab/labtest"
	"github.com/havpn/havpn/internal/netnsutil"
	"github.com/vishvananda/netlink"
)

// TestAddrTimelineWindows: overlaps and gaps are runs of samples with two
// or more holders, or none; End is the next sample's time.
func TestAddrTimelineWindows(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	type held = []bool
	tests := []struct {
		name     string
		samples  []held
		overlaps [][3]int // first, last, end (-1: none) in sample indexes
		ovHolder [][]string
		gaps     [][3]int
	}{
		{name: "empty"},
		{name: "one holder throughout", samples: []held{{true, false}, {true, false}}},
		{name: "handover with a gap", samples: []held{{true, false}, {false, false}, {false, false}, {false, true}},
			gaps: [][3]int{{1, 2, 3}}},
		{name: "overlap then release", samples: []held{{true, false}, {true, true}, {true, true}, {false, true}},
			overlaps: [][3]int{{1, 2, 3}}, ovHolder: [][]string{{"a", "b"}}},
		{name: "overlap to the end", samples: []held{{false, true}, {true, true}},
			overlaps: [][3]int{{1, 1, -1}}, ovHolder: [][]string{{"a", "b"}}},
		{name: "two overlaps", samples: []held{{true, true}, {true, false}, {true, true}, {false, false}},
			overlaps: [][3]int{{0, 0, 1}, {2, 2, 3}}, ovHolder: [][]string{{"a", "b"}, {"a", "b"}},
			gaps: [][3]int{{3, 3, -1}}},
	}
	want := func(idx [][3]int, holders [][]string) []AddrWindow {
		var out []AddrWindow
		for i, w := range idx {
			aw := AddrWindow{First: at(10 * w[0]), Last: at(10 * w[1])}
			if w[2] >= 0 {
				aw.End = at(10 * w[2])
			}
			if holders != nil {
				aw.Holders = holders[i]
			}
			out = append(out, aw)
		}
		return out
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tl := &AddrTimeline{Nodes: []string{"a", "b"}}
			for i, h := range tc.samples {
				tl.Samples = append(tl.Samples, AddrSample{At: at(10 * i), Held: h})
			}
			if got, w := tl.Overlaps(), want(tc.overlaps, tc.ovHolder); !windowsEqual(got, w) {
				t.Errorf("overlaps %+v, want %+v", got, w)
			}
			if got, w := tl.Gaps(), want(tc.gaps, nil); !windowsEqual(got, w) {
				t.Errorf("gaps %+v, want %+v", got, w)
			}
		})
	}
}

func windowsEqual(a, b []AddrWindow) bool {
	return slices.EqualFunc(a, b, func(x, y AddrWindow) bool {
		return x.First.Equal(y.First) && x.Last.Equal(y.Last) && x.End.Equal(y.End) && slices.Equal(x.Holders, y.Holders)
	})
}

// TestAddrTimelineHeldBy: HeldBy answers from the last sample at or before
// the time asked.
func TestAddrTimelineHeldBy(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tl := &AddrTimeline{Nodes: []string{"a", "b"}, Samples: []AddrSample{
		{At: t0, Held: []bool{true, false}},
		{At: t0.Add(10 * time.Millisecond), Held: []bool{false, true}},
	}}
	tests := []struct {
		node string
		at   time.Duration
		want bool
	}{
		{"a", -time.Millisecond, false},
		{"a", 0, true},
		{"a", 9 * time.Millisecond, true},
		{"a", 10 * time.Millisecond, false},
		{"b", time.Hour, true},
		{"c", 0, false},
	}
	for _, tc := range tests {
		if got := tl.HeldBy(tc.node, t0.Add(tc.at)); got != tc.want {
			t.Errorf("HeldBy(%s, t0%+v) = %v, want %v", tc.node, tc.at, got, tc.want)
		}
	}
}

// TestWatchAddrInNamespaces: two namespaces standing in for s1gw1 and
// s1gw2; the watch sees an address added in one, moved to the other and
// removed, in that order, and Wait returns when the holders match.
func TestWatchAddrInNamespaces(t *testing.T) {
	labtest.RequireRoot(t)
	prefix := labtest.Prefix(t)
	l := &Lab{st: &State{Prefix: prefix, Nodes: map[string]*NodeState{}}}
	hs := map[string]*netlink.Handle{}
	for _, n := range []string{"s1gw1", "s1gw2"} {
		ns := labtest.NewNetNS(t, prefix+n)
		l.st.Nodes[n] = &NodeState{NS: ns}
		h, err := netnsutil.Handle(ns)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(h.Close)
		// No dummy links on these kernels: a veth pair kept in the namespace.
		if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "lan0"}, PeerName: "lan0p"}); err != nil {
			t.Fatal(err)
		}
		hs[n] = h
	}
	vip := netip.MustParseAddr("192.168.1.1")
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: vip.AsSlice(), Mask: net.CIDRMask(24, 32)}}
	set := func(node string, add bool) {
		t.Helper()
		h := hs[node]
		link, err := h.LinkByName("lan0")
		if err != nil {
			t.Fatal(err)
		}
		if add {
			err = h.AddrAdd(link, addr)
		} else {
			err = h.AddrDel(link, addr)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	nodes := []string{"s1gw1", "s1gw2"}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w, err := l.WatchAddr(ctx, AddrWatchOptions{Nodes: nodes, Addr: vip})
	if err != nil {
		t.Fatal(err)
	}
	only := func(n string) func([]string) bool {
		return func(h []string) bool { return slices.Equal(h, []string{n}) }
	}
	wait := func(what string, cond func([]string) bool) time.Time {
		t.Helper()
		at, err := w.Wait(ctx, time.Now(), cond)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return at
	}
	wait("nobody", func(h []string) bool { return len(h) == 0 })
	set("s1gw1", true)
	tGW1 := wait("s1gw1 only", only("s1gw1"))
	if got, err := l.Holders(vip, nodes...); err != nil || !slices.Equal(got, []string{"s1gw1"}) {
		t.Errorf("Holders = %v, %v; want [s1gw1]", got, err)
	}
	set("s1gw2", true)
	tBoth := wait("both", func(h []string) bool { return len(h) == 2 })
	time.Sleep(30 * time.Millisecond)
	set("s1gw1", false)
	tGW2 := wait("s1gw2 only", only("s1gw2"))
	set("s1gw2", false)
	wait("nobody again", func(h []string) bool { return len(h) == 0 })
	tl, err := w.Stop()
	if err != nil {
		t.Fatal(err)
	}
	if !tl.HeldBy("s1gw1", tGW1) || tl.HeldBy("s1gw2", tGW1) || !tl.HeldBy("s1gw2", tGW2) || tl.HeldBy("s1gw1", tGW2) {
		t.Errorf("HeldBy disagrees with Wait")
	}
	ov := tl.Overlaps()
	if len(ov) != 1 || !ov[0].First.Equal(tBoth) || ov[0].End.Before(ov[0].Last) || !slices.Equal(ov[0].Holders, nodes) {
		t.Fatalf("overlaps %+v, want one from %v held by both", ov, tBoth)
	}
	if d := ov[0].End.Sub(ov[0].First); d < 30*time.Millisecond {
		t.Errorf("overlap lasted %v, want >= 30ms (both held it that long)", d)
	}
	if g := tl.Gaps(); len(g) != 2 || !g[1].End.IsZero() {
		t.Errorf("gaps %+v, want one before the add and one open at the end", g)
	}
	// Intervals near the default: 10 ms apart, give or take a loaded machine.
	if n := len(tl.Samples); n < 5 {
		t.Errorf("%d samples", n)
	}
	if _, err := w.Wait(ctx, time.Now(), func([]string) bool { return true }); err == nil {
		t.Errorf("Wait after Stop: no error")
	}
}

// TestWatchAddrErrors: bad options and unknown nodes are refused.
func TestWatchAddrErrors(t *testing.T) {
	l := &Lab{st: &State{Prefix: "x-", Nodes: map[string]*NodeState{}}}
	vip := netip.MustParseAddr("192.168.1.1")
	for _, o := range []AddrWatchOptions{
		{Nodes: []string{"s1gw1"}},
		{Addr: vip},
		{Nodes: []string{"nosuch"}, Addr: vip},
	} {
		if w, err := l.WatchAddr(context.Background(), o); err == nil {
			w.Stop()
			t.Errorf("WatchAddr(%+v): no error", o)
		}
	}
}
