//go:build linux

package cluster_test

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/havpn/havpn/internal/cluster"
	"github.com/havpn/havpn/internal/config"
	"github.com/havpn/havpn/internal/lab/labtest"
	"github.com/havpn/havpn/internal/netnsutil"
)

// nsNode is one Cluster running in its own network namespace.
type nsNode struct {
	name   string
	ns     string
	h      *netlink.Handle
	c      *cluster.Cluster
	cancel context.CancelFunc
	done   chan error
	mu     sync.Mutex
	events []cluster.RoleEvent
}

func (n *nsNode) eventsSince(i int) []cluster.RoleEvent {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]cluster.RoleEvent(nil), n.events[min(i, len(n.events)):]...)
}

func (n *nsNode) numEvents() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.events)
}

func (n *nsNode) setLink(t *testing.T, name string, up bool) {
	t.Helper()
	l, err := n.h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	if up {
		err = n.h.LinkSetUp(l)
	} else {
		err = n.h.LinkSetDown(l)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// nsConfig is testConfig with the namespace addresses: lan0
// 192.168.1.2/.3 and hb0 192.0.2.1/.2.
func nsConfig(self string) *config.Config {
	cfg := testConfig(self)
	peer := map[string][2]string{"a": {"192.168.1.3", "192.0.2.2"}, "b": {"192.168.1.2", "192.0.2.1"}}[self]
	cfg.Cluster.Links[0].Peer = netip.MustParseAddr(peer[0])
	cfg.Cluster.Links[1].Peer = netip.MustParseAddr(peer[1])
	cfg.Cluster.Timers.Initdead = config.Duration(100 * time.Millisecond)
	cfg.Cluster.Monitor = nil
	// The heartbeat thread runs SCHED_FIFO, as a loaded production
	// gateway should: this machine is shared by several test runs.
	cfg.Cluster.Realtime = true
	return cfg
}

// nsSetup varies setupNS.
type nsSetup struct {
	edit func(cfg *config.Config)         // applied to both configs
	wire func(t *testing.T, a, b *nsNode) // more topology, before the Clusters start
	opts cluster.Options                  // Key is set by startNS
}

// setupNS builds namespaces a and b joined by two veth links, lan0 and
// hb0, and starts a Cluster in each.
func setupNS(t *testing.T, x nsSetup) (a, b *nsNode) {
	a, b = buildNS(t)
	for _, name := range []string{"lan0", "hb0"} {
		addVeth(t, a, b, name)
	}
	if x.wire != nil {
		x.wire(t, a, b)
	}
	startNS(t, a, x)
	startNS(t, b, x)
	return a, b
}

// buildNS makes the two namespaces with netlink handles.
func buildNS(t *testing.T) (a, b *nsNode) {
	labtest.RequireRoot(t)
	pfx := labtest.Prefix(t)
	a = &nsNode{name: "a", ns: labtest.NewNetNS(t, pfx+"a")}
	b = &nsNode{name: "b", ns: labtest.NewNetNS(t, pfx+"b")}
	for _, n := range []*nsNode{a, b} {
		h, err := netnsutil.Handle(n.ns)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(h.Close)
		n.h = h
	}
	return a, b
}

// addVeth joins a and b with a veth pair named name on both sides, with
// the addresses of the test topology, up.
func addVeth(t *testing.T, a, b *nsNode, name string) {
	t.Helper()
	bns, err := netns.GetFromName(b.ns)
	if err != nil {
		t.Fatal(err)
	}
	defer bns.Close()
	addrs := map[string][2]string{"lan0": {"192.168.1.2/24", "192.168.1.3/24"}, "hb0": {"192.0.2.1/30", "192.0.2.2/30"}}
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name, PeerNamespace: netlink.NsFd(int(bns))}
	if err := a.h.LinkAdd(veth); err != nil {
		t.Fatalf("adding veth %s: %v", name, err)
	}
	for i, n := range []*nsNode{a, b} {
		l, err := n.h.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		addr, _ := netlink.ParseAddr(addrs[name][i])
		if err := n.h.AddrAdd(l, addr); err != nil {
			t.Fatal(err)
		}
		if err := n.h.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
	}
}

// delVeth deletes the veth pair name (both ends).
func delVeth(t *testing.T, a *nsNode, name string) {
	t.Helper()
	l, err := a.h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.h.LinkDel(l); err != nil {
		t.Fatal(err)
	}
}

func startNS(t *testing.T, n *nsNode, x nsSetup) {
	t.Helper()
	cfg := nsConfig(n.name)
	if x.edit != nil {
		x.edit(cfg)
	}
	opts := x.opts
	opts.Key = key
	if testing.Verbose() {
		opts.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", n.name)
	}
	var err error
	n.c, err = cluster.New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	n.done = make(chan error, 1)
	go func() {
		n.done <- netnsutil.Do(n.ns, func() error { return n.c.Run(ctx) })
	}()
	evs := n.c.Events()
	go func() {
		for ev := range evs {
			n.mu.Lock()
			n.events = append(n.events, ev)
			n.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-n.done; err != nil {
			t.Errorf("%s: Run: %v", n.name, err)
		}
	})
}

// waitRole waits until n has role r; it returns when n's RoleEvent for it
// was taken.
func waitRole(t *testing.T, n *nsNode, from int, r cluster.Role, limit time.Duration) cluster.RoleEvent {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		for _, ev := range n.eventsSince(from) {
			if ev.Role == r && !ev.Reannounce {
				return ev
			}
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("%s not %s within %v; status %+v", n.name, r, limit, n.c.Status())
	return cluster.RoleEvent{}
}

// settleNS waits for a active and b standby.
func settleNS(t *testing.T, a, b *nsNode) {
	t.Helper()
	waitRole(t, a, 0, cluster.RoleActive, 2*time.Second)
	waitRole(t, b, 0, cluster.RoleStandby, 2*time.Second)
}

// headroom raises GOMAXPROCS for a test: two Clusters share this process,
// and on a loaded machine an ordinary thread that holds one of only two Ps
// while the kernel has descheduled it keeps a heartbeat loop waking from
// ppoll from getting a P back. Spare Ps let the loop take an idle one at
// once (a daemon runs one loop; the daemon sets its own GOMAXPROCS).
func headroom(t *testing.T) {
	prev := runtime.GOMAXPROCS(max(8, runtime.GOMAXPROCS(0)))
	t.Cleanup(func() { runtime.GOMAXPROCS(prev) })
}

// waitEligible waits until n sees its peer as a healthy handover target
// (Standby's precondition): on a loaded machine the first heartbeats that
// list n as heard may take a few keepalives.
func waitEligible(t *testing.T, n *nsNode) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if p := n.c.Status().Peers[0]; p.Eligible {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%s's peer not eligible: %+v", n.name, n.c.Status().Peers[0])
}

func TestNetnsPair(t *testing.T) {
	headroom(t)
	// Within deadtime + 2 keepalives of the cause, as the issue asks.
	failoverLimit := deadtime + 2*keepalive
	tests := []struct {
		name string
		run  func(t *testing.T, a, b *nsNode)
	}{
		{"exactly one active", func(t *testing.T, a, b *nsNode) {
			// Never both active for long. None active only briefly: both Clusters
			// share this process, so a scheduling stall of deadtime or
			// more hits both at once and the stall rule (quiet release,
			// then yield for deadtime) may leave a short gap, which a
			// real pair on two machines does not have.
			// The same stall can make the standby take over before the
			// stalled active has released: both active until the
			// both-active rule settles it, within a few keepalives.
			end := time.Now().Add(time.Second)
			var none, dual time.Time
			for time.Now().Before(end) {
				ra, rb := a.c.Role(), b.c.Role()
				if ra != cluster.RoleActive || rb != cluster.RoleActive {
					dual = time.Time{}
				}
				switch {
				case ra == cluster.RoleActive && rb == cluster.RoleActive:
					if dual.IsZero() {
						dual = time.Now()
					} else if d := time.Since(dual); d > deadtime {
						t.Fatalf("both active for %v (stalls a=%d b=%d)", d, a.c.Status().Stalls, b.c.Status().Stalls)
					}
				case ra != cluster.RoleActive && rb != cluster.RoleActive:
					if none.IsZero() {
						none = time.Now()
					} else if gap := time.Since(none); gap > 2*deadtime+2*keepalive {
						t.Fatalf("none active for %v (stalls a=%d b=%d)", gap, a.c.Status().Stalls, b.c.Status().Stalls)
					}
				default:
					none = time.Time{}
				}
				time.Sleep(time.Millisecond)
			}
			if sa, sb := a.c.Status().Stalls, b.c.Status().Stalls; sa+sb > 0 {
				t.Logf("stalls during the test: a=%d b=%d", sa, sb)
			}
			st := b.c.Status()
			if st.Peers[0].State != "alive" || !st.Peers[0].Links[0].Up || !st.Peers[0].Links[1].Up {
				t.Fatalf("b's view of a: %+v", st.Peers[0])
			}
			if st.Links[0].Kind != "unicast" || st.Links[0].Sent == 0 || st.Links[0].Received == 0 {
				t.Fatalf("b's links: %+v", st.Links)
			}
		}},
		{"kill the active: the standby takes over within deadtime + 2 keepalives", func(t *testing.T, a, b *nsNode) {
			mb := b.numEvents()
			a.c.CrashOnStop()
			killed := time.Now()
			a.cancel()
			<-a.done
			a.done <- nil // for the cleanup
			ev := waitRole(t, b, mb, cluster.RoleActive, time.Second)
			if took := ev.At.Sub(killed); took > failoverLimit {
				t.Fatalf("b active %v after the kill (limit %v): %s", took, failoverLimit, ev.Reason)
			} else {
				t.Logf("b active %v after the kill: %s", took, ev.Reason)
			}
		}},
		{"one link down: warning, no failover", func(t *testing.T, a, b *nsNode) {
			ma, mb := a.numEvents(), b.numEvents()
			a.setLink(t, "hb0", false)
			time.Sleep(500 * time.Millisecond)
			if evs := append(a.eventsSince(ma), b.eventsSince(mb)...); len(evs) != 0 {
				t.Fatalf("role events with one link down: %+v", evs)
			}
			st := b.c.Status()
			if l := st.Peers[0].Links[1]; !l.Warning || l.Warnings != 1 || l.Up {
				t.Fatalf("b's view of link hb: %+v", l)
			}
			if l := st.Peers[0].Links[0]; !l.Up || l.Warning {
				t.Fatalf("b's view of link lan: %+v", l)
			}
		}},
		{"both links down: takeover; back: the lower releases at once", func(t *testing.T, a, b *nsNode) {
			mb := b.numEvents()
			cut := time.Now()
			a.setLink(t, "hb0", false)
			a.setLink(t, "lan0", false)
			ev := waitRole(t, b, mb, cluster.RoleActive, time.Second)
			if took := ev.At.Sub(cut); took > failoverLimit {
				t.Fatalf("b active %v after the cut (limit %v)", took, failoverLimit)
			}
			time.Sleep(100 * time.Millisecond)
			if a.c.Role() != cluster.RoleActive {
				t.Fatalf("a is %s", a.c.Role())
			}
			mb = b.numEvents()
			back := time.Now()
			a.setLink(t, "hb0", true)
			a.setLink(t, "lan0", true)
			ev = waitRole(t, b, mb, cluster.RoleStandby, time.Second)
			// The veth needs a moment for carrier; then one keepalive. These
			// veths have the same ifindex at both ends, so the kernel's
			// linkwatch may take up to 1 s to reactivate the queue (see
			// package linkmon): that is the network, not the election,
			// which releases at the first heartbeat it hears.
			t.Logf("b released %v after the links came back: %s", ev.At.Sub(back), ev.Reason)
			if took := ev.At.Sub(back); took > 1200*time.Millisecond {
				t.Fatalf("b released %v after the links came back", took)
			}
			time.Sleep(50 * time.Millisecond)
			if a.c.Role() != cluster.RoleActive || b.c.Role() != cluster.RoleStandby {
				t.Fatalf("roles a=%s b=%s", a.c.Role(), b.c.Role())
			}
		}},
		{"standby and takeover", func(t *testing.T, a, b *nsNode) {
			waitEligible(t, a)
			mb, ma := b.numEvents(), a.numEvents()
			if err := a.c.Standby(); err != nil {
				t.Fatal(err)
			}
			waitRole(t, a, ma, cluster.RoleStandby, 100*time.Millisecond)
			waitRole(t, b, mb, cluster.RoleActive, 100*time.Millisecond)
			ma = a.numEvents()
			if err := a.c.Takeover(); err != nil {
				t.Fatal(err)
			}
			waitRole(t, a, ma, cluster.RoleActive, 100*time.Millisecond)
			time.Sleep(50 * time.Millisecond)
			if b.c.Role() != cluster.RoleStandby {
				t.Fatalf("b is %s", b.c.Role())
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := setupNS(t, nsSetup{})
			settleNS(t, a, b)
			tc.run(t, a, b)
		})
	}
}

// TestNetnsPingNodes: both nodes reach the upstream router 198.51.100.14
// (a bridge in a third namespace, as in the lab). The active loses its
// uplink: it hands over to the standby, which still reaches the router.
func TestNetnsPingNodes(t *testing.T) {
	headroom(t)
	router := netip.MustParseAddr("198.51.100.14")
	a, b := setupNS(t, nsSetup{
		edit: func(cfg *config.Config) { cfg.Cluster.PingNodes = []netip.Addr{router} },
		opts: cluster.Options{PingInterval: 20 * time.Millisecond},
		wire: func(t *testing.T, a, b *nsNode) {
			r := labtest.NewNetNS(t, a.ns[:len(a.ns)-1]+"r")
			hr, err := netnsutil.Handle(r)
			if err != nil {
				t.Fatal(err)
			}
			defer hr.Close()
			br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0"}}
			if err := hr.LinkAdd(br); err != nil {
				t.Fatal(err)
			}
			brl, _ := hr.LinkByName("br0")
			addr, _ := netlink.ParseAddr("198.51.100.14/28")
			if err := hr.AddrAdd(brl, addr); err != nil {
				t.Fatal(err)
			}
			if err := hr.LinkSetUp(brl); err != nil {
				t.Fatal(err)
			}
			rns, err := netns.GetFromName(r)
			if err != nil {
				t.Fatal(err)
			}
			defer rns.Close()
			for i, n := range []*nsNode{a, b} {
				port := "p" + n.name
				veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "wan0"}, PeerName: port, PeerNamespace: netlink.NsFd(int(rns))}
				if err := n.h.LinkAdd(veth); err != nil {
					t.Fatal(err)
				}
				l, _ := n.h.LinkByName("wan0")
				addr, _ := netlink.ParseAddr([]string{"198.51.100.2/28", "198.51.100.3/28"}[i])
				if err := n.h.AddrAdd(l, addr); err != nil {
					t.Fatal(err)
				}
				if err := n.h.LinkSetUp(l); err != nil {
					t.Fatal(err)
				}
				pl, err := hr.LinkByName(port)
				if err != nil {
					t.Fatal(err)
				}
				if err := hr.LinkSetMaster(pl, br); err != nil {
					t.Fatal(err)
				}
				if err := hr.LinkSetUp(pl); err != nil {
					t.Fatal(err)
				}
			}
		},
	})
	settleNS(t, a, b)
	// The first ARP resolution through the fresh bridge can take a retry
	// (1 s); wait until both reach the router.
	deadline := time.Now().Add(5 * time.Second)
	for b.c.Status().PingReachable != 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	for _, n := range []*nsNode{a, b} {
		st := n.c.Status()
		if st.PingReachable != 1 || len(st.PingTargets) != 1 || !st.PingTargets[0].Reachable {
			t.Fatalf("%s's ping status: %d %+v", n.name, st.PingReachable, st.PingTargets)
		}
	}
	ma, mb := a.numEvents(), b.numEvents()
	cut := time.Now()
	a.setLink(t, "wan0", false)
	ev := waitRole(t, b, mb, cluster.RoleActive, 2*time.Second)
	took := ev.At.Sub(cut)
	t.Logf("b active %v after a's uplink went down: %s", took, ev.Reason)
	// Three unanswered probes 20 ms apart, then one heartbeat.
	if took > 200*time.Millisecond {
		t.Fatalf("handover took %v", took)
	}
	rel := waitRole(t, a, ma, cluster.RoleStandby, time.Second)
	if !strings.Contains(rel.Reason, "no ping node reachable and b reaches 1") {
		t.Fatalf("a released: %s", rel.Reason)
	}
	time.Sleep(100 * time.Millisecond)
	if a.c.Role() != cluster.RoleStandby || b.c.Role() != cluster.RoleActive {
		t.Fatalf("roles a=%s b=%s", a.c.Role(), b.c.Role())
	}
}

// TestNetnsLinkReopen: a link whose interface is missing at start is
// opened when the interface appears; a link whose interface is deleted and
// created again comes back.
func TestNetnsLinkReopen(t *testing.T) {
	headroom(t)
	a, b := buildNS(t)
	addVeth(t, a, b, "lan0")
	x := nsSetup{}
	startNS(t, a, x)
	startNS(t, b, x)
	settleNS(t, a, b)
	if st := a.c.Status(); st.Links[0].Open != true || st.Links[1].Open != false || st.Links[1].LastError == "" {
		t.Fatalf("a's links at start: %+v", st.Links)
	}
	heardOnHB := func() bool {
		sa, sb := a.c.Status(), b.c.Status()
		return sa.Links[1].Open && sb.Links[1].Open && sa.Peers[0].Links[1].Up && sb.Peers[0].Links[1].Up
	}
	waitHB := func(what string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !heardOnHB() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: link hb not back: a %+v / %+v", what, a.c.Status().Links, a.c.Status().Peers[0].Links)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	addVeth(t, a, b, "hb0")
	waitHB("interface created after start")
	delVeth(t, a, "hb0")
	time.Sleep(100 * time.Millisecond)
	addVeth(t, a, b, "hb0")
	waitHB("interface deleted and created again")
	if a.c.Role() != cluster.RoleActive || b.c.Role() != cluster.RoleStandby {
		t.Fatalf("roles a=%s b=%s", a.c.Role(), b.c.Role())
	}
}
