package bgp_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/havpn/havpn/internal/bgp"
	"github.com/havpn/havpn/internal/config"
	"github.com/havpn/havpn/internal/fib"
	"github.com/havpn/havpn/internal/fib/fibtest"
	"github.com/prometheus/client_golang/prometheus"
)

// These tests run several speakers in one process on loopback addresses
// 127.0.0.1-3 (one shared port, one listener address each) with fake
// kernels: no root, and nothing in any routing table changes.

var (
	pfx = netip.MustParsePrefix
	adr = netip.MustParseAddr
)

type node struct {
	s   *bgp.Speaker
	k   *fibtest.Kernel
	reg *prometheus.Registry
}

// freePort returns a TCP port free on 127.0.0.1-3.
func freePort(t *testing.T) int {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		ok := true
		var ls []net.Listener
		for _, a := range []string{"127.0.0.2", "127.0.0.3"} {
			l2, err := net.Listen("tcp", net.JoinHostPort(a, itoa(port)))
			if err != nil {
				ok = false
				break
			}
			ls = append(ls, l2)
		}
		l.Close()
		for _, l2 := range ls {
			l2.Close()
		}
		if ok {
			return port
		}
	}
	t.Fatal("no free port on 127.0.0.1-3")
	return 0
}

func itoa(i int) string { return strconv.Itoa(i) }

func testLog(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.DiscardHandler)
}

// baseCfg is an iBGP (AS 65432) config for speaker me with the given
// neighbors (same AS unless asns says otherwise).
func baseCfg(me string, neighbors ...string) *config.BGP {
	c := &config.BGP{
		ASN:      65432,
		RouterID: adr(me),
		FIB:      config.FIB{Table: 254, Protocol: 186, Multipath: true},
	}
	for _, n := range neighbors {
		c.Neighbors = append(c.Neighbors, config.Neighbor{
			Address: adr(n), RemoteAS: 65432,
			HoldTime: config.Duration(9 * time.Second), Keepalive: config.Duration(3 * time.Second),
		})
	}
	return c
}

func newNode(t *testing.T, port int, cfg *config.BGP) *node {
	t.Helper()
	cfg.ListenPort = int32(port)
	me := cfg.RouterID
	k := fibtest.New()
	reg := prometheus.NewRegistry()
	s, err := bgp.New(cfg, bgp.Options{
		Log: testLog(t).With("node", me.String()), Registerer: reg, Kernel: k,
		PeerPort: uint16(port), ListenAddresses: []netip.Addr{me}, LocalAddress: me,
		ConnectRetry: time.Second, Debounce: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("closing %s: %v", me, err)
		}
	})
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &node{s: s, k: k, reg: reg}
}

// waitTable waits until k's table is want.
func waitTable(t *testing.T, name string, k *fibtest.Kernel, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := k.Table()
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s kernel:\n%s\nwant:\n%s", name, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitEstablished(t *testing.T, n *node, peer string) bgp.Neighbor {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, nb := range n.s.Neighbors() {
			if nb.Address == adr(peer) && nb.State == "established" {
				return nb
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("session with %s not established: %+v", peer, n.s.Neighbors())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestExchangeStopRestart(t *testing.T) {
	before := runtime.NumGoroutine()
	port := freePort(t)
	ca := baseCfg("127.0.0.1", "127.0.0.2")
	ca.Networks = []netip.Prefix{pfx("192.168.1.0/24")}
	cb := baseCfg("127.0.0.2", "127.0.0.1")
	cb.Networks = []netip.Prefix{pfx("192.168.2.0/24")}
	a := newNode(t, port, ca)
	b := newNode(t, port, cb)

	waitTable(t, "A", a.k, "192.168.2.0/24 table 254 proto 186 metric 20 via 127.0.0.2")
	waitTable(t, "B", b.k, "192.168.1.0/24 table 254 proto 186 metric 20 via 127.0.0.1")

	nb := waitEstablished(t, a, "127.0.0.2")
	if nb.Type != "ibgp" || nb.RemoteAS != 65432 || nb.RouterID != adr("127.0.0.2") || nb.HoldTime.D() != 9*time.Second ||
		nb.PrefixesReceived != 1 || nb.PrefixesAdvertised != 1 || nb.Established != 1 || nb.Since.IsZero() {
		t.Errorf("A's neighbor = %+v", nb)
	}
	rs, err := a.s.Routes()
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 ||
		rs[0].Prefix != pfx("192.168.1.0/24") || !rs[0].Local || !rs[0].Best || rs[0].Installed ||
		rs[1].Prefix != pfx("192.168.2.0/24") || rs[1].Peer != adr("127.0.0.2") || rs[1].NextHop != adr("127.0.0.2") ||
		!rs[1].Best || !rs[1].Installed || rs[1].LocalPref != 100 || rs[1].Origin != "igp" {
		t.Errorf("A's routes = %+v", rs)
	}
	js, _ := json.Marshal(rs)
	if strings.Contains(string(js), "invalid") || !strings.Contains(string(js), `"prefix":"192.168.2.0/24","next_hop":"127.0.0.2","peer":"127.0.0.2"`) {
		t.Errorf("routes JSON: %s", js)
	}

	// Stop: A withdraws (B's kernel loses the route) and cleans its own.
	if err := a.s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := a.k.Table(); got != "" {
		t.Errorf("A's kernel after Stop:\n%s", got)
	}
	waitTable(t, "B", b.k, "")
	if _, err := a.s.Routes(); !errors.Is(err, bgp.ErrNotRunning) {
		t.Errorf("Routes while stopped: %v", err)
	}
	if nbs := a.s.Neighbors(); len(nbs) != 1 || nbs[0].State != bgp.Stopped || nbs[0].Established != 1 {
		t.Errorf("neighbors while stopped: %+v", nbs)
	}
	if err := a.s.Stop(context.Background()); err != nil {
		t.Errorf("second Stop: %v", err)
	}

	// Start again: a new GoBGP server, same routes.
	if err := a.s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := a.s.Start(context.Background()); err != nil {
		t.Errorf("second Start: %v", err)
	}
	waitTable(t, "A", a.k, "192.168.2.0/24 table 254 proto 186 metric 20 via 127.0.0.2")
	waitTable(t, "B", b.k, "192.168.1.0/24 table 254 proto 186 metric 20 via 127.0.0.1")
	if nb := waitEstablished(t, a, "127.0.0.2"); nb.Established != 2 {
		t.Errorf("established count after restart = %d, want 2", nb.Established)
	}

	a.s.Close()
	b.s.Close()
	if err := a.s.Start(context.Background()); !errors.Is(err, bgp.ErrClosed) {
		t.Errorf("Start after Close: %v", err)
	}
	// No goroutine outlives the speakers (GoBGP's included).
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before+2 {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("%d goroutines left (were %d):\n%s", runtime.NumGoroutine(), before, buf[:n])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestECMPAndSessionLoss(t *testing.T) {
	port := freePort(t)
	a := newNode(t, port, baseCfg("127.0.0.1", "127.0.0.2", "127.0.0.3"))
	cb := baseCfg("127.0.0.2", "127.0.0.1")
	cb.Networks = []netip.Prefix{pfx("10.9.0.0/24")}
	cc := baseCfg("127.0.0.3", "127.0.0.1")
	cc.Networks = []netip.Prefix{pfx("10.9.0.0/24"), pfx("10.10.0.0/24")}
	b := newNode(t, port, cb)
	c := newNode(t, port, cc)
	waitTable(t, "A", a.k, `10.9.0.0/24 table 254 proto 186 metric 20 nexthop via 127.0.0.2 nexthop via 127.0.0.3
10.10.0.0/24 table 254 proto 186 metric 20 via 127.0.0.3`)
	// C goes away (session closed): its paths are withdrawn.
	if err := c.s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitTable(t, "A", a.k, `10.9.0.0/24 table 254 proto 186 metric 20 via 127.0.0.2`)
	_ = b
}

func TestNoMultipath(t *testing.T) {
	port := freePort(t)
	ca := baseCfg("127.0.0.1", "127.0.0.2", "127.0.0.3")
	ca.FIB.Multipath = false
	a := newNode(t, port, ca)
	cb := baseCfg("127.0.0.2", "127.0.0.1")
	cb.Networks = []netip.Prefix{pfx("10.9.0.0/24")}
	cb.FIB.Multipath = false
	cc := baseCfg("127.0.0.3", "127.0.0.1")
	cc.Networks = []netip.Prefix{pfx("10.9.0.0/24")}
	cc.FIB.Multipath = false
	b := newNode(t, port, cb)
	newNode(t, port, cc)
	waitEstablished(t, a, "127.0.0.2")
	waitEstablished(t, a, "127.0.0.3")
	// One best path (the lower router id wins the tie).
	waitTable(t, "A", a.k, `10.9.0.0/24 table 254 proto 186 metric 20 via 127.0.0.2`)
	if err := b.s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitTable(t, "A", a.k, `10.9.0.0/24 table 254 proto 186 metric 20 via 127.0.0.3`)
}

func TestPolicyImportExportNextHopSelf(t *testing.T) {
	port := freePort(t)
	// A (AS 65001) has eBGP neighbor B (AS 65002) and iBGP neighbor C.
	ca := &config.BGP{
		ASN: 65001, RouterID: adr("127.0.0.1"),
		FIB:      config.FIB{Table: 254, Protocol: 186, Multipath: true},
		Networks: []netip.Prefix{pfx("192.168.1.0/24"), pfx("192.168.99.0/24")},
		PrefixLists: []config.PrefixList{
			{Name: "from-b", Rules: []config.PrefixRule{
				{Action: config.Deny, Prefix: pfx("10.1.0.0/16"), GE: 16, LE: 24},
				{Action: config.Permit, Prefix: pfx("10.0.0.0/8"), GE: 8, LE: 32},
			}},
			{Name: "to-b", Rules: []config.PrefixRule{
				{Action: config.Permit, Prefix: pfx("192.168.1.0/24"), GE: 24, LE: 24},
			}},
		},
		Neighbors: []config.Neighbor{
			{Address: adr("127.0.0.2"), RemoteAS: 65002, Import: "from-b", Export: "to-b",
				HoldTime: config.Duration(9 * time.Second), Keepalive: config.Duration(3 * time.Second)},
			{Address: adr("127.0.0.3"), RemoteAS: 65001, NextHopSelf: true,
				HoldTime: config.Duration(9 * time.Second), Keepalive: config.Duration(3 * time.Second)},
		},
	}
	cb := &config.BGP{
		ASN: 65002, RouterID: adr("127.0.0.2"),
		FIB:      config.FIB{Table: 254, Protocol: 186, Multipath: true},
		Networks: []netip.Prefix{pfx("10.1.1.0/24"), pfx("10.2.0.0/16"), pfx("172.20.0.0/16")},
		Neighbors: []config.Neighbor{{Address: adr("127.0.0.1"), RemoteAS: 65001,
			HoldTime: config.Duration(9 * time.Second), Keepalive: config.Duration(3 * time.Second)}},
	}
	cc := &config.BGP{
		ASN: 65001, RouterID: adr("127.0.0.3"),
		FIB:      config.FIB{Table: 254, Protocol: 186, Multipath: true},
		Networks: []netip.Prefix{pfx("10.3.0.0/16")},
		Neighbors: []config.Neighbor{{Address: adr("127.0.0.1"), RemoteAS: 65001,
			HoldTime: config.Duration(9 * time.Second), Keepalive: config.Duration(3 * time.Second)}},
	}
	a := newNode(t, port, ca)
	b := newNode(t, port, cb)
	c := newNode(t, port, cc)
	// A imports from B only 10.2.0.0/16 (10.1.1.0/24 denied, 172.20/16 no
	// match), and 10.3/16 from C.
	waitTable(t, "A", a.k, `10.2.0.0/16 table 254 proto 186 metric 20 via 127.0.0.2
10.3.0.0/16 table 254 proto 186 metric 20 via 127.0.0.3`)
	// C gets the networks of A and B's route with A as next hop
	// (next-hop-self; B's address otherwise).
	waitTable(t, "C", c.k, `10.2.0.0/16 table 254 proto 186 metric 20 via 127.0.0.1
192.168.1.0/24 table 254 proto 186 metric 20 via 127.0.0.1
192.168.99.0/24 table 254 proto 186 metric 20 via 127.0.0.1`)
	// B gets only what to-b permits (not 192.168.99/24, not C's 10.3/16).
	waitTable(t, "B", b.k, `192.168.1.0/24 table 254 proto 186 metric 20 via 127.0.0.1`)
	if nb := waitEstablished(t, a, "127.0.0.2"); nb.Type != "ebgp" || nb.PrefixesReceived != 3 {
		t.Errorf("A's view of B = %+v", nb)
	}
	rs, err := c.s.Routes()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Prefix == pfx("10.2.0.0/16") && (len(r.ASPath) != 1 || r.ASPath[0] != 65002) {
			t.Errorf("C's path to 10.2.0.0/16 has AS path %v, want [65002]", r.ASPath)
		}
	}
}

func TestRedistribute(t *testing.T) {
	port := freePort(t)
	ca := baseCfg("127.0.0.1", "127.0.0.2")
	ca.Networks = []netip.Prefix{pfx("192.168.1.0/24")}
	ca.PrefixLists = []config.PrefixList{{Name: "conn", Rules: []config.PrefixRule{
		{Action: config.Permit, Prefix: pfx("192.168.0.0/16"), GE: 16, LE: 32},
		{Action: config.Permit, Prefix: pfx("203.0.113.9/32"), GE: 32, LE: 32},
	}}}
	ca.Redistribute = []config.Redistribute{
		{Source: config.RedistConnected, PrefixList: "conn"},
		{Source: config.RedistStatic},
	}
	k := fibtest.New()
	conn := func(p string) fib.Route { return fib.Route{Prefix: pfx(p), Table: 254, Protocol: 2} }
	static := func(p string) fib.Route {
		return fib.Route{Prefix: pfx(p), Table: 254, Protocol: 4, NextHops: []fib.NextHop{{Gateway: adr("192.168.1.254")}}}
	}
	k.Preload(
		conn("192.168.1.0/24"),    // also a network: announced once
		conn("192.168.5.0/24"),    // permitted
		conn("172.16.0.2/32"),     // tunnel peer (p2p): connected host route, not in the list anyway
		conn("192.168.7.9/32"),    // connected host route: only if named exactly
		conn("203.0.113.9/32"),    // named exactly: allowed
		conn("fe80::/64"),         // link-local: never
		static("10.50.0.0/16"),    // static, no list: announced
		static("198.51.100.1/32"), // a VIP's address as a static host route: not by accident
		static("0.0.0.0/0"),       // default: not by accident
		fib.Route{Prefix: pfx("10.60.0.0/16"), Table: 254, Protocol: 3, NextHops: []fib.NextHop{{Gateway: adr("192.168.1.254")}}},   // kernel source not configured
		fib.Route{Prefix: pfx("10.70.0.0/16"), Table: 254, Protocol: 186, NextHops: []fib.NextHop{{Gateway: adr("192.168.1.254")}}}, // ours
	)
	k.SetAddrs(pfx("192.168.1.2/24"), pfx("198.51.100.1/28"), pfx("172.16.0.1/32"))
	reg := prometheus.NewRegistry()
	ca.ListenPort = int32(port)
	sa, err := bgp.New(ca, bgp.Options{Log: testLog(t).With("node", "A"), Registerer: reg, Kernel: k,
		PeerPort: uint16(port), ListenAddresses: []netip.Addr{adr("127.0.0.1")}, LocalAddress: adr("127.0.0.1"),
		ConnectRetry: time.Second, Debounce: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sa.Close() })
	if err := sa.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	b := newNode(t, port, baseCfg("127.0.0.2", "127.0.0.1"))
	waitTable(t, "B", b.k, `10.50.0.0/16 table 254 proto 186 metric 20 via 127.0.0.1
192.168.1.0/24 table 254 proto 186 metric 20 via 127.0.0.1
192.168.5.0/24 table 254 proto 186 metric 20 via 127.0.0.1
203.0.113.9/32 table 254 proto 186 metric 20 via 127.0.0.1`)
	// Kernel changes are followed.
	k.AddRoute(static("10.51.0.0/16"))
	k.DelRoute(conn("192.168.5.0/24"))
	waitTable(t, "B", b.k, `10.50.0.0/16 table 254 proto 186 metric 20 via 127.0.0.1
10.51.0.0/16 table 254 proto 186 metric 20 via 127.0.0.1
192.168.1.0/24 table 254 proto 186 metric 20 via 127.0.0.1
203.0.113.9/32 table 254 proto 186 metric 20 via 127.0.0.1`)
	// A's own redistributed routes are not installed in A's kernel.
	if s := sa.FIBStats(); s.Installed != 0 {
		t.Errorf("A installed %d routes, want 0: %v", s.Installed, sa.FIBRoutes())
	}
}

func TestStaleRoutesSweptAfterEndOfRIB(t *testing.T) {
	port := freePort(t)
	ka := fibtest.New()
	ours := func(p, gw string) fib.Route {
		return fib.Route{Prefix: pfx(p), Table: 254, Protocol: 186, Metric: 20, NextHops: []fib.NextHop{{Gateway: adr(gw)}}}
	}
	// Left by an earlier run: one B announces again, one nobody does.
	ka.Preload(ours("192.168.2.0/24", "127.0.0.2"), ours("10.77.0.0/16", "127.0.0.2"))
	// GoBGP sends End-of-RIB only when graceful restart is negotiated.
	ca := baseCfg("127.0.0.1", "127.0.0.2")
	ca.Neighbors[0].GracefulRestart = true
	ca.ListenPort = int32(port)
	sa, err := bgp.New(ca, bgp.Options{Log: testLog(t).With("node", "A"), Kernel: ka, StaleTime: time.Hour,
		PeerPort: uint16(port), ListenAddresses: []netip.Addr{adr("127.0.0.1")}, LocalAddress: adr("127.0.0.1"),
		ConnectRetry: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sa.Close() })
	if err := sa.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := sa.FIBStats(); s.Stale != 2 {
		t.Fatalf("stale after start = %d, want 2", s.Stale)
	}
	cb := baseCfg("127.0.0.2", "127.0.0.1")
	cb.Neighbors[0].GracefulRestart = true
	cb.Networks = []netip.Prefix{pfx("192.168.2.0/24")}
	newNode(t, port, cb)
	waitTable(t, "A", ka, `192.168.2.0/24 table 254 proto 186 metric 20 via 127.0.0.2`)
	// The route learned again was left alone (no replace), the other one
	// deleted after B's End-of-RIB, long before StaleTime.
	if got, want := ka.Ops(), "delete 10.77.0.0/16 table 254 proto 186 metric 20"; got != want {
		t.Errorf("ops:\n%s\nwant:\n%s", got, want)
	}
}

func TestMD5Password(t *testing.T) {
	port := freePort(t)
	dir := t.TempDir()
	write := func(name, pw string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(pw+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ca := baseCfg("127.0.0.1", "127.0.0.2", "127.0.0.3")
	ca.Neighbors[0].PasswordFile = write("a-b", "s3cret")
	ca.Neighbors[1].PasswordFile = write("a-c", "s3cret")
	ca.Networks = []netip.Prefix{pfx("192.168.1.0/24")}
	cb := baseCfg("127.0.0.2", "127.0.0.1")
	cb.Neighbors[0].PasswordFile = write("b-a", "s3cret")
	cc := baseCfg("127.0.0.3", "127.0.0.1")
	cc.Neighbors[0].PasswordFile = write("c-a", "wrong")
	a := newNode(t, port, ca)
	b := newNode(t, port, cb)
	c := newNode(t, port, cc)
	waitTable(t, "B", b.k, "192.168.1.0/24 table 254 proto 186 metric 20 via 127.0.0.1")
	// By then C had several connection attempts; with the wrong key the
	// kernel drops its segments.
	time.Sleep(3 * time.Second)
	for _, nb := range a.s.Neighbors() {
		if nb.Address == adr("127.0.0.3") && nb.State == "established" {
			t.Error("session with a wrong TCP-MD5 password established")
		}
	}
	if got := c.k.Table(); got != "" {
		t.Errorf("C learned routes with a wrong password:\n%s", got)
	}

	// A missing password file fails Start, naming the neighbor.
	cd := baseCfg("127.0.0.1", "127.0.0.2")
	cd.Neighbors[0].PasswordFile = filepath.Join(dir, "missing")
	s, err := bgp.New(cd, bgp.Options{Kernel: fibtest.New()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "127.0.0.2") {
		t.Errorf("Start with a missing password file: %v", err)
	}
}

func TestMetrics(t *testing.T) {
	port := freePort(t)
	ca := baseCfg("127.0.0.1", "127.0.0.2", "127.0.0.3")
	a := newNode(t, port, ca)
	cb := baseCfg("127.0.0.2", "127.0.0.1")
	cb.Networks = []netip.Prefix{pfx("10.1.0.0/16"), pfx("10.2.0.0/16")}
	newNode(t, port, cb)
	waitTable(t, "A", a.k, `10.1.0.0/16 table 254 proto 186 metric 20 via 127.0.0.2
10.2.0.0/16 table 254 proto 186 metric 20 via 127.0.0.2`)
	got := gather(t, a.reg)
	for name, want := range map[string]float64{
		"havpn_bgp_running":                                      1,
		`havpn_bgp_neighbor_up{peer="127.0.0.2"}`:                1,
		`havpn_bgp_neighbor_up{peer="127.0.0.3"}`:                0,
		`havpn_bgp_neighbor_state{peer="127.0.0.2"}`:             6,
		`havpn_bgp_prefixes_received{peer="127.0.0.2"}`:          2,
		`havpn_bgp_neighbor_established_total{peer="127.0.0.2"}`: 1,
		"havpn_fib_routes":                                       2,
	} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v", name, got[name], want)
		}
	}
	if got[`havpn_bgp_updates_received_total{peer="127.0.0.2"}`] < 1 {
		t.Errorf("no updates counted: %v", got)
	}
	if err := a.s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	got = gather(t, a.reg)
	if got["havpn_bgp_running"] != 0 || got[`havpn_bgp_neighbor_state{peer="127.0.0.2"}`] != 0 || got["havpn_fib_routes"] != 0 {
		t.Errorf("after Stop: %v", got)
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	cfg := baseCfg("127.0.0.1")
	cfg.ListenPort = -1
	cfg.Networks = []netip.Prefix{pfx("192.168.1.0/24")}
	s, err := bgp.New(cfg, bgp.Options{Kernel: fibtest.New()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for !s.Running() {
		if time.Now().After(deadline) {
			t.Fatal("Run did not start the speaker")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s.Running() {
		t.Fatal("still running after Run returned")
	}
}

// plainKernel hides fibtest.Kernel's RouteSource methods.
type plainKernel struct{ fib.Kernel }

func TestNewErrors(t *testing.T) {
	redist := baseCfg("127.0.0.1")
	redist.Redistribute = []config.Redistribute{{Source: config.RedistStatic}}
	badList := baseCfg("127.0.0.1", "127.0.0.2")
	badList.Neighbors[0].Import = "nope"
	badRedistList := baseCfg("127.0.0.1")
	badRedistList.Redistribute = []config.Redistribute{{Source: config.RedistStatic, PrefixList: "nope"}}
	v6id := baseCfg("127.0.0.1")
	v6id.RouterID = adr("2001:db8::1")
	tests := []struct {
		name string
		cfg  *config.BGP
		k    fib.Kernel
		want error
		msg  string
	}{
		{"nil config", nil, fibtest.New(), nil, "no bgp section"},
		{"v6 router id", v6id, fibtest.New(), nil, "router id"},
		{"redistribute without source", redist, plainKernel{fibtest.New()}, bgp.ErrNoRouteSource, ""},
		{"unknown import list", badList, fibtest.New(), bgp.ErrNoPrefixList, "127.0.0.2"},
		{"unknown redistribute list", badRedistList, fibtest.New(), bgp.ErrNoPrefixList, "static"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := bgp.New(tc.cfg, bgp.Options{Kernel: tc.k})
			if err == nil {
				s.Close()
				t.Fatal("New succeeded")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("err = %v, want it to mention %q", err, tc.msg)
			}
		})
	}
}

// gather returns every sample of reg as name{labels} -> value.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]float64)
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			if len(m.GetLabel()) > 0 {
				var ls []string
				for _, l := range m.GetLabel() {
					ls = append(ls, l.GetName()+`="`+l.GetValue()+`"`)
				}
				name += "{" + strings.Join(ls, ",") + "}"
			}
			switch {
			case m.GetGauge() != nil:
				out[name] = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				out[name] = m.GetCounter().GetValue()
			}
		}
	}
	return out
}

func TestLinkDownResetsSession(t *testing.T) {
	port := freePort(t)
	a := newNode(t, port, baseCfg("127.0.0.1", "127.0.0.2"))
	cb := baseCfg("127.0.0.2", "127.0.0.1")
	cb.Networks = []netip.Prefix{pfx("192.168.2.0/24")}
	newNode(t, port, cb)
	waitTable(t, "A", a.k, "192.168.2.0/24 table 254 proto 186 metric 20 via 127.0.0.2")
	a.k.Ops()
	start := time.Now()
	a.k.LinkDown(pfx("10.0.0.0/8")) // not B's link: nothing happens
	a.k.LinkDown(pfx("127.0.0.0/8"))
	for !strings.Contains(a.k.Ops(), "delete 192.168.2.0/24") {
		if time.Since(start) > 5*time.Second {
			t.Fatal("route via a neighbor whose link went down was not removed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("route removed %v after the link went down (hold time 9s); want at once", d)
	}
	if got := gather(t, a.reg)[`havpn_bgp_neighbor_drops_total{peer="127.0.0.2"}`]; got != 1 {
		t.Errorf("drops = %v, want 1", got)
	}
	// The session comes back (the loopback never went down).
	waitTable(t, "A", a.k, "192.168.2.0/24 table 254 proto 186 metric 20 via 127.0.0.2")
}

func TestStartFailsCleanly(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	k := fibtest.New()
	// A route left by an earlier run.
	k.Preload(fib.Route{Prefix: pfx("10.77.0.0/16"), Table: 254, Protocol: 186, Metric: 20, NextHops: []fib.NextHop{{Gateway: adr("127.0.0.2")}}})
	cfg := baseCfg("127.0.0.1", "127.0.0.2")
	cfg.ListenPort = int32(port)
	s, err := bgp.New(cfg, bgp.Options{Kernel: k, ListenAddresses: []netip.Addr{adr("127.0.0.1")}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "starting gobgp") {
		t.Fatalf("Start with the listen port taken: %v", err)
	}
	if s.Running() {
		t.Fatal("running after a failed Start")
	}
	// A stopped speaker owns no kernel routes.
	if got := k.Table(); got != "" {
		t.Errorf("kernel after a failed start:\n%s", got)
	}
	l.Close()
	if err := s.Start(context.Background()); err != nil {
		t.Fatalf("Start once the port is free: %v", err)
	}
}

func TestStaleRoutesSweptWhenQuiet(t *testing.T) {
	port := freePort(t)
	ka := fibtest.New()
	ours := func(p, gw string) fib.Route {
		return fib.Route{Prefix: pfx(p), Table: 254, Protocol: 186, Metric: 20, NextHops: []fib.NextHop{{Gateway: adr(gw)}}}
	}
	ka.Preload(ours("192.168.2.0/24", "127.0.0.2"), ours("10.77.0.0/16", "127.0.0.2"))
	// No graceful restart: GoBGP sends no End-of-RIB.
	ca := baseCfg("127.0.0.1", "127.0.0.2")
	ca.ListenPort = int32(port)
	sa, err := bgp.New(ca, bgp.Options{Log: testLog(t).With("node", "A"), Kernel: ka, StaleTime: time.Hour,
		PeerPort: uint16(port), ListenAddresses: []netip.Addr{adr("127.0.0.1")}, LocalAddress: adr("127.0.0.1"),
		ConnectRetry: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sa.Close() })
	if err := sa.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	cb := baseCfg("127.0.0.2", "127.0.0.1")
	cb.Networks = []netip.Prefix{pfx("192.168.2.0/24")}
	newNode(t, port, cb)
	nb := waitEstablished(t, &node{s: sa}, "127.0.0.2")
	waitTable(t, "A", ka, `192.168.2.0/24 table 254 proto 186 metric 20 via 127.0.0.2`)
	if d := time.Since(nb.Since); d > 10*time.Second {
		t.Errorf("stale route swept %v after the session came up, want about 3s", d)
	}
	if got, want := ka.Ops(), "delete 10.77.0.0/16 table 254 proto 186 metric 20"; got != want {
		t.Errorf("ops:\n%s\nwant:\n%s", got, want)
	}
}

// TestInheritedRoutes: a speaker that takes over from an active node puts
// the routes it inherited into the kernel at Start, before any session is
// up, and keeps them untouched when the neighbor announces them again.
func TestInheritedRoutes(t *testing.T) {
	port := freePort(t)
	ka := fibtest.New()
	ca := baseCfg("127.0.0.1", "127.0.0.2")
	ca.Neighbors[0].GracefulRestart = true
	ca.ListenPort = int32(port)
	inherited := []fib.Route{{Prefix: pfx("192.168.2.0/24"), NextHops: []fib.NextHop{{Gateway: adr("127.0.0.2")}}}}
	sa, err := bgp.New(ca, bgp.Options{Log: testLog(t).With("node", "A"), Kernel: ka, StaleTime: time.Hour,
		PeerPort: uint16(port), ListenAddresses: []netip.Addr{adr("127.0.0.1")}, LocalAddress: adr("127.0.0.1"),
		ConnectRetry: time.Second, Inherited: func() []fib.Route { return inherited }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sa.Close() })
	if err := sa.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	const want = "192.168.2.0/24 table 254 proto 186 metric 20 via 127.0.0.2"
	if got := ka.Table(); got != want {
		t.Fatalf("kernel right after Start:\n%s\nwant:\n%s", got, want)
	}
	cb := baseCfg("127.0.0.2", "127.0.0.1")
	cb.Neighbors[0].GracefulRestart = true
	cb.Networks = []netip.Prefix{pfx("192.168.2.0/24")}
	newNode(t, port, cb)
	waitEstablished(t, &node{s: sa, k: ka}, "127.0.0.2")
	deadline := time.Now().Add(10 * time.Second)
	for {
		rs, err := sa.Routes()
		if err == nil && len(rs) == 1 && rs[0].Installed && sa.FIBStats().Stale == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("route not learned again: %+v %v, fib %+v", rs, err, sa.FIBStats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Learned again with the same next hop: the kernel saw one write, the
	// inherited route, and nothing since.
	if got, want := ka.Ops(), "replace "+want; got != want {
		t.Errorf("ops:\n%s\nwant:\n%s", got, want)
	}
}

// TestHandOverKeepsRoutes: a speaker in a cluster that stops for a
// handover leaves its routes with its graceful-restart neighbor (no
// withdrawal, a Cease that counts as a restart); the node taking over
// (here the same speaker started again) gets the session back and the
// neighbor's copy is fresh again, never removed from its kernel.
func TestHandOverKeepsRoutes(t *testing.T) {
	port := freePort(t)
	ca := baseCfg("127.0.0.1", "127.0.0.2")
	ca.Neighbors[0].GracefulRestart = true
	ca.Networks = []netip.Prefix{pfx("192.168.1.0/24")}
	ca.ListenPort = int32(port)
	ka := fibtest.New()
	sa, err := bgp.New(ca, bgp.Options{Log: testLog(t).With("node", "A"), Kernel: ka, HandOver: true,
		PeerPort: uint16(port), ListenAddresses: []netip.Addr{adr("127.0.0.1")}, LocalAddress: adr("127.0.0.1"),
		ConnectRetry: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sa.Close() })
	if err := sa.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	cb := baseCfg("127.0.0.2", "127.0.0.1")
	cb.Neighbors[0].GracefulRestart = true
	b := newNode(t, port, cb)
	const want = "192.168.1.0/24 table 254 proto 186 metric 20 via 127.0.0.1"
	waitTable(t, "B", b.k, want)

	if err := sa.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for stale := false; !stale; {
		rs, _ := b.s.Routes()
		stale = len(rs) == 1 && rs[0].Stale
		if got := b.k.Table(); got != want {
			t.Fatalf("B's kernel after A's handover:\n%s\nwant:\n%s", got, want)
		}
		if time.Now().After(deadline) {
			t.Fatalf("B's route never marked stale: %+v", rs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := sa.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(20 * time.Second)
	for {
		rs, _ := b.s.Routes()
		if len(rs) == 1 && !rs[0].Stale && rs[0].Installed {
			break
		}
		if got := b.k.Table(); got != want {
			t.Fatalf("B's kernel while A comes back:\n%s\nwant:\n%s", got, want)
		}
		if time.Now().After(deadline) {
			t.Fatalf("B's route not fresh again after A's restart: %+v", rs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
