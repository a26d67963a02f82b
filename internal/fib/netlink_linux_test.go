package fib_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/havpn/havpn/internal/fib"
	"github.com/havpn/havpn/internal/lab/labtest"
	"github.com/havpn/havpn/internal/netnsutil"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// kernelNS makes a namespace with veth v0 (172.16.0.1/24, 2001:db8:ff::1/64)
// whose peer v1 is up in the same namespace, so that 172.16.0.x and
// 2001:db8:ff::x are on-link gateways. It returns the namespace name and a
// netlink handle in it for checking the kernel independently of package fib.
func kernelNS(t *testing.T) (string, *netlink.Handle) {
	t.Helper()
	labtest.RequireRoot(t)
	ns := labtest.NewNetNS(t, labtest.Prefix(t)+"fib")
	h, err := netnsutil.Handle(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	la := netlink.NewLinkAttrs()
	la.Name = "v0"
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: "v1"}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"v0", "v1"} {
		l, err := h.LinkByName(n)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
	}
	addAddr(t, h, "v0", "172.16.0.1/24")
	addAddr(t, h, "v0", "2001:db8:ff::1/64")
	return ns, h
}

func addAddr(t *testing.T, h *netlink.Handle, dev, cidr string) {
	t.Helper()
	l, err := h.LinkByName(dev)
	if err != nil {
		t.Fatal(err)
	}
	a, err := netlink.ParseAddr(cidr)
	if err != nil {
		t.Fatal(err)
	}
	a.Flags = unix.IFA_F_NODAD
	if err := h.AddrAdd(l, a); err != nil {
		t.Fatalf("adding %s to %s: %v", cidr, dev, err)
	}
}

func delAddr(t *testing.T, h *netlink.Handle, dev, cidr string) {
	t.Helper()
	l, err := h.LinkByName(dev)
	if err != nil {
		t.Fatal(err)
	}
	a, err := netlink.ParseAddr(cidr)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.AddrDel(l, a); err != nil {
		t.Fatalf("deleting %s from %s: %v", cidr, dev, err)
	}
}

// kernelRoutes lists routes of protocol proto (all tables), formatted by
// this test from vishvananda/netlink's view, one per line, sorted.
func kernelRoutes(t *testing.T, h *netlink.Handle, proto int) string {
	t.Helper()
	rs, err := h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Protocol: netlink.RouteProtocol(proto), Table: unix.RT_TABLE_UNSPEC},
		netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, r := range rs {
		s := fmt.Sprintf("%s table %d metric %d", r.Dst, r.Table, r.Priority)
		var gws []string
		if r.Gw != nil {
			gws = append(gws, r.Gw.String())
		}
		for _, nh := range r.MultiPath {
			gws = append(gws, nh.Gw.String())
		}
		slices.Sort(gws)
		for _, g := range gws {
			s += " via " + g
		}
		lines = append(lines, s)
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

func newKernel(t *testing.T, ns string) *fib.Netlink {
	t.Helper()
	k, err := fib.NewNetlink(fib.NetlinkOptions{NetNS: ns})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	return k
}

func TestNetlinkReconciler(t *testing.T) {
	ns, h := kernelNS(t)
	k := newKernel(t, ns)
	r, err := fib.New(k, defaultFIB, fib.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Adopt(); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name    string
		changes []fib.Change
		want    string
	}{
		{"add", []fib.Change{ch("10.1.0.0/24", "172.16.0.2"), ch("10.2.0.0/16", "172.16.0.2"), ch("2001:db8:1::/48", "2001:db8:ff::2")},
			`10.1.0.0/24 table 254 metric 20 via 172.16.0.2
10.2.0.0/16 table 254 metric 20 via 172.16.0.2
2001:db8:1::/48 table 254 metric 20 via 2001:db8:ff::2`},
		{"replace", []fib.Change{ch("10.1.0.0/24", "172.16.0.6"), ch("2001:db8:1::/48", "2001:db8:ff::6")},
			`10.1.0.0/24 table 254 metric 20 via 172.16.0.6
10.2.0.0/16 table 254 metric 20 via 172.16.0.2
2001:db8:1::/48 table 254 metric 20 via 2001:db8:ff::6`},
		{"ecmp", []fib.Change{ch("10.1.0.0/24", "172.16.0.6", "172.16.0.2"), ch("2001:db8:1::/48", "2001:db8:ff::2", "2001:db8:ff::6")},
			`10.1.0.0/24 table 254 metric 20 via 172.16.0.2 via 172.16.0.6
10.2.0.0/16 table 254 metric 20 via 172.16.0.2
2001:db8:1::/48 table 254 metric 20 via 2001:db8:ff::2 via 2001:db8:ff::6`},
		{"ecmp to one", []fib.Change{ch("10.1.0.0/24", "172.16.0.2"), ch("2001:db8:1::/48", "2001:db8:ff::6")},
			`10.1.0.0/24 table 254 metric 20 via 172.16.0.2
10.2.0.0/16 table 254 metric 20 via 172.16.0.2
2001:db8:1::/48 table 254 metric 20 via 2001:db8:ff::6`},
		{"ecmp again", []fib.Change{ch("2001:db8:1::/48", "2001:db8:ff::2", "2001:db8:ff::6", "2001:db8:ff::9")},
			`10.1.0.0/24 table 254 metric 20 via 172.16.0.2
10.2.0.0/16 table 254 metric 20 via 172.16.0.2
2001:db8:1::/48 table 254 metric 20 via 2001:db8:ff::2 via 2001:db8:ff::6 via 2001:db8:ff::9`},
		{"withdraw", []fib.Change{{Prefix: pfx("10.2.0.0/16")}, {Prefix: pfx("2001:db8:1::/48")}},
			`10.1.0.0/24 table 254 metric 20 via 172.16.0.2`},
	}
	for _, s := range steps {
		if err := r.Update(s.changes); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got := kernelRoutes(t, h, 186); got != s.want {
			t.Fatalf("%s: kernel routes:\n%s\nwant:\n%s", s.name, got, s.want)
		}
	}
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := kernelRoutes(t, h, 186); got != "" {
		t.Fatalf("after Flush, kernel still has:\n%s", got)
	}
}

func TestNetlinkOtherTable(t *testing.T) {
	ns, h := kernelNS(t)
	k := newKernel(t, ns)
	r, err := fib.New(k, fibCfg(1000, 200), fib.Options{Metric: 7})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Update([]fib.Change{ch("10.1.0.0/24", "172.16.0.2", "172.16.0.3")}); err != nil {
		t.Fatal(err)
	}
	want := `10.1.0.0/24 table 1000 metric 7 via 172.16.0.2 via 172.16.0.3`
	if got := kernelRoutes(t, h, 200); got != want {
		t.Fatalf("kernel routes:\n%s\nwant:\n%s", got, want)
	}
	rs, err := k.Routes(1000, 200)
	if err != nil || len(rs) != 1 || rs[0].Prefix != pfx("10.1.0.0/24") || len(rs[0].NextHops) != 2 {
		t.Fatalf("Routes(1000, 200) = %v, %v", rs, err)
	}
	if rs, _ := k.Routes(254, 200); len(rs) != 0 {
		t.Fatalf("Routes(254, 200) = %v, want none", rs)
	}
}

func TestNetlinkStaleCleanupAtStart(t *testing.T) {
	ns, h := kernelNS(t)
	// An earlier run left routes: some with our metric, one with another
	// metric (a duplicate), one for a now-connected prefix.
	for _, r := range []struct {
		dst    string
		metric int
		gw     string
	}{
		{"10.1.0.0/24", 20, "172.16.0.2"},
		{"10.1.0.0/24", 30, "172.16.0.2"},
		{"10.2.0.0/24", 20, "172.16.0.2"},
		{"10.3.0.0/24", 20, "172.16.0.2"},
		{"192.168.1.0/24", 20, "172.16.0.2"},
	} {
		_, dst, _ := net.ParseCIDR(r.dst)
		if err := h.RouteAdd(&netlink.Route{Dst: dst, Gw: net.ParseIP(r.gw), Protocol: 186, Priority: r.metric, Table: 254}); err != nil {
			t.Fatal(err)
		}
	}
	// A static route that is not ours for the same prefix.
	_, dst, _ := net.ParseCIDR("10.2.0.0/24")
	if err := h.RouteAdd(&netlink.Route{Dst: dst, Gw: net.ParseIP("172.16.0.9"), Protocol: unix.RTPROT_STATIC, Priority: 50, Table: 254}); err != nil {
		t.Fatal(err)
	}
	addAddr(t, h, "v0", "192.168.1.1/24")

	k := newKernel(t, ns)
	r, err := fib.New(k, defaultFIB, fib.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Adopt(); err != nil {
		t.Fatal(err)
	}
	want := `10.1.0.0/24 table 254 metric 20 via 172.16.0.2
10.2.0.0/24 table 254 metric 20 via 172.16.0.2
10.3.0.0/24 table 254 metric 20 via 172.16.0.2`
	if got := kernelRoutes(t, h, 186); got != want {
		t.Fatalf("after Adopt:\n%s\nwant:\n%s", got, want)
	}
	if s := r.Stats(); s.Stale != 3 || s.Installed != 3 {
		t.Fatalf("stats after Adopt = %+v", s)
	}
	// BGP learns 10.1 again unchanged and 10.3 with another next hop.
	if err := r.Update([]fib.Change{ch("10.1.0.0/24", "172.16.0.2"), ch("10.3.0.0/24", "172.16.0.6")}); err != nil {
		t.Fatal(err)
	}
	n, err := r.Sweep()
	if err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v; want 1 (10.2.0.0/24)", n, err)
	}
	want = `10.1.0.0/24 table 254 metric 20 via 172.16.0.2
10.3.0.0/24 table 254 metric 20 via 172.16.0.6`
	if got := kernelRoutes(t, h, 186); got != want {
		t.Fatalf("after Sweep:\n%s\nwant:\n%s", got, want)
	}
	if got := kernelRoutes(t, h, unix.RTPROT_STATIC); got != "10.2.0.0/24 table 254 metric 50 via 172.16.0.9" {
		t.Fatalf("static route touched: %q", got)
	}
	// A second start adopts exactly these, no duplicates.
	r2, _ := fib.New(k, defaultFIB, fib.Options{})
	if err := r2.Adopt(); err != nil {
		t.Fatal(err)
	}
	if err := r2.Update([]fib.Change{ch("10.1.0.0/24", "172.16.0.2"), ch("10.3.0.0/24", "172.16.0.6")}); err != nil {
		t.Fatal(err)
	}
	if got := kernelRoutes(t, h, 186); got != want {
		t.Fatalf("after restart:\n%s\nwant:\n%s", got, want)
	}
}

func TestNetlinkConnectedNotOverridden(t *testing.T) {
	ns, h := kernelNS(t)
	addAddr(t, h, "v0", "192.168.1.1/24")
	k := newKernel(t, ns)
	r, err := fib.New(k, defaultFIB, fib.Options{Debounce: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Adopt(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	// 192.168.1.0/24 is connected (kernel route), 192.168.1.1/32 is our own
	// address, 172.16.0.0/24 connected too; 192.168.2.0/24 is not.
	err = r.Update([]fib.Change{
		ch("192.168.1.0/24", "172.16.0.2"), ch("192.168.1.1/32", "172.16.0.2"),
		ch("172.16.0.0/24", "172.16.0.2"), ch("192.168.2.0/24", "172.16.0.2"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := kernelRoutes(t, h, 186), `192.168.2.0/24 table 254 metric 20 via 172.16.0.2`; got != want {
		t.Fatalf("kernel routes:\n%s\nwant:\n%s", got, want)
	}
	conn := kernelRoutes(t, h, unix.RTPROT_KERNEL)
	if !strings.Contains(conn, "192.168.1.0/24 table 254 metric 0") {
		t.Fatalf("connected route gone:\n%s", conn)
	}
	delAddr(t, h, "v0", "192.168.1.1/24")
	// The address goes away: the learned routes for its network and for
	// its host address are installed.
	waitKernel(t, h, `192.168.1.0/24 table 254 metric 20 via 172.16.0.2
192.168.1.1/32 table 254 metric 20 via 172.16.0.2
192.168.2.0/24 table 254 metric 20 via 172.16.0.2`)
	// An address for 192.168.2.0/24 appears: our route for it goes.
	addAddr(t, h, "v0", "192.168.2.1/24")
	waitKernel(t, h, `192.168.1.0/24 table 254 metric 20 via 172.16.0.2
192.168.1.1/32 table 254 metric 20 via 172.16.0.2`)
}

func waitKernel(t *testing.T, h *netlink.Handle, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := kernelRoutes(t, h, 186)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("kernel routes:\n%s\nwant:\n%s", got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestNetlinkErrors(t *testing.T) {
	ns, _ := kernelNS(t)
	k := newKernel(t, ns)
	ops := []fib.Op{
		{Kind: fib.OpDelete, Route: ours("10.7.0.0/24", 20)},
		{Kind: fib.OpReplace, Route: ours("10.8.0.0/24", 20, "192.0.2.1")}, // not on-link
		{Kind: fib.OpReplace, Route: ours("10.9.0.0/24", 20, "2001:db8:ff::2")},
		{Kind: fib.OpReplace, Route: ours("10.10.0.0/24", 20, "172.16.0.2")},
	}
	errs := k.Apply(ops)
	if len(errs) != len(ops) {
		t.Fatalf("Apply returned %d errors for %d ops", len(errs), len(ops))
	}
	if !errors.Is(errs[0], fib.ErrNoRoute) {
		t.Errorf("delete of a missing route: %v, want ErrNoRoute", errs[0])
	}
	var oe *fib.OpError
	if !errors.As(errs[1], &oe) || !errors.Is(errs[1], syscall.ENETUNREACH) || oe.Msg == "" {
		t.Errorf("unreachable gateway: %v, want ENETUNREACH with the kernel's message", errs[1])
	}
	if errs[2] == nil || !strings.Contains(errs[2].Error(), "address family") {
		t.Errorf("v6 gateway for a v4 prefix: %v", errs[2])
	}
	if errs[3] != nil {
		t.Errorf("good route after bad ones: %v", errs[3])
	}
	k.Close()
	if errs := k.Apply(ops[3:]); len(errs) != 1 || !errors.Is(errs[0], fib.ErrClosed) {
		t.Errorf("Apply after Close = %v", errs)
	}
}

// TestNetlink100k installs 100k routes (a full BGP table's worth) and
// removes them, each in one Update/Flush, and logs how long that took.
func TestNetlink100k(t *testing.T) {
	if testing.Short() {
		t.Skip("100k routes")
	}
	ns, h := kernelNS(t)
	k := newKernel(t, ns)
	r, err := fib.New(k, defaultFIB, fib.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 100_000
	changes := manyChanges(n)
	start := time.Now()
	if err := r.Update(changes); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("%d routes installed in %v", n, took)
	var cnt int
	err = h.RouteListFilteredIter(netlink.FAMILY_V4, &netlink.Route{Protocol: 186, Table: 254}, netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE,
		func(netlink.Route) bool { cnt++; return true })
	if err != nil || cnt != n {
		t.Fatalf("kernel has %d routes of ours (%v), want %d", cnt, err, n)
	}
	// Speed is measured by bench/bgp, not asserted here: a timed test
	// fails on a loaded machine and under -race.
	start = time.Now()
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d routes removed in %v", n, time.Since(start))
	if got := kernelRoutes(t, h, 186); got != "" {
		t.Fatalf("routes left after Flush: %.200s", got)
	}
}

func manyChanges(n int) []fib.Change {
	out := make([]fib.Change, n)
	gw := []fib.NextHop{{Gateway: adr("172.16.0.2")}}
	for i := range out {
		// 10.0.0.0/24 .. : distinct /24s under 10/8 and 11/8.
		a := [4]byte{byte(10 + i>>16), byte(i >> 8), byte(i), 0}
		out[i] = fib.Change{Prefix: netipPrefix(a, 24), NextHops: gw}
	}
	return out
}

func TestNetlinkWatchLinkDown(t *testing.T) {
	ns, h := kernelNS(t)
	k := newKernel(t, ns)
	got := make(chan []netip.Prefix, 4)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- k.WatchLinkDown(ctx, func(ps []netip.Prefix) { got <- ps }) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	time.Sleep(200 * time.Millisecond) // let it list the existing links
	// v1 down: v0 loses its carrier.
	l, err := h.LinkByName("v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetDown(l); err != nil {
		t.Fatal(err)
	}
	want := map[netip.Prefix]bool{pfx("172.16.0.0/24"): true, pfx("2001:db8:ff::/64"): true}
	deadline := time.After(5 * time.Second)
	for {
		select {
		case ps := <-got:
			n := 0
			for _, p := range ps {
				if want[p] {
					n++
				}
			}
			if n == len(want) {
				return // v0 reported with its prefixes
			}
		case <-deadline:
			t.Fatalf("no link-down report with %v", want)
		}
	}
}
