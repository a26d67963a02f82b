package main

import (
	"context"
	"encoding/json"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/havpn/havpn/internal/lab"
	"github.com/havpn/havpn/internal/netnsutil"
	"github.com/vishvananda/netlink"
)

// protoBGP is the route protocol havpn installs BGP routes with (fib.protocol).
const protoBGP = 186

var (
	site1LAN = netip.MustParsePrefix("192.168.1.0/24")
	site2LAN = netip.MustParsePrefix("192.168.2.0/24")
)

// TestBGPInLab is the seed's routing done by the embedded speaker: the two
// sites' active gateways peer over 172.16.0.1/2 across the tunnel and
// learn each other's LAN; no node has a static route for the other site;
// s1host reaches s2host. When site 1's active gateway loses power, the
// standby installs the routes it was handed at once, site 2 keeps site 1's
// route throughout (graceful restart), the new session comes up and
// traffic flows again well within the outage limit.
func TestBGPInLab(t *testing.T) {
	l, _ := upLab(t, lab.DaemonOptions{})
	ctx := context.Background()
	a1, a2 := activeOf(t, l, "s1"), activeOf(t, l, "s2")
	waitBGPRoute(t, l, a1, site2LAN, "172.16.0.2")
	waitBGPRoute(t, l, a2, site1LAN, "172.16.0.1")
	for _, n := range []string{a1, a2} {
		checkNeighborsCLI(t, l, n)
	}
	noStaticRoutes(t, l)
	across := lab.ProbeOptions{From: "s1host", To: netip.MustParseAddr("192.168.2.10"), ICMP: true,
		Interval: 5 * time.Millisecond, Duration: 500 * time.Millisecond}
	waitReach(t, l, across)

	// The standby knows what it will install.
	standby := "s1gw1"
	if a1 == standby {
		standby = "s1gw2"
	}
	waitSynced(t, l, standby, site2LAN)

	// Power-off: site 2's route to site 1 must never go away.
	var gone atomic.Int32
	stop := watchRoute(t, l, a2, site1LAN, &gone)
	pt, err := l.StartProbe(ctx, lab.ProbeOptions{From: "s1host", To: netip.MustParseAddr("192.168.2.10"),
		Interval: time.Millisecond, Duration: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if err := l.Poweroff(a1); err != nil {
		t.Fatal(err)
	}
	rt := pt.Wait()
	t.Logf("power-off of %s: through the tunnel %.1f ms (windows %+v)", a1, rt.OutageMS, rt.Windows)
	if rt.Received == 0 || rt.OutageMS > outageLimitMS {
		t.Errorf("through the tunnel: outage %.1f ms (received %d), want under %d ms", rt.OutageMS, rt.Received, outageLimitMS)
	}
	if n := activeOf(t, l, "s1"); n != standby {
		t.Fatalf("active after power-off: %s, want %s", n, standby)
	}
	waitBGPRoute(t, l, standby, site2LAN, "172.16.0.2")
	waitEstablished(t, l, standby)
	stop()
	if n := gone.Load(); n > 0 {
		t.Errorf("%s lost its route to %s %d times during the failover; graceful restart should keep it", a2, site1LAN, n)
	}
	waitReach(t, l, across)
}

// bgpRoute returns the gateway of node's route to p if it was installed by
// havpn's BGP speaker.
func bgpRoute(l *lab.Lab, node string, p netip.Prefix) (netip.Addr, bool, error) {
	rs, err := nodeRoutes(l, node)
	if err != nil {
		return netip.Addr{}, false, err
	}
	for _, r := range rs {
		if r.Dst != nil && r.Dst.String() == p.String() && r.Protocol == protoBGP {
			gw, _ := netip.AddrFromSlice(r.Gw)
			return gw.Unmap(), true, nil
		}
	}
	return netip.Addr{}, false, nil
}

func nodeRoutes(l *lab.Lab, node string) ([]netlink.Route, error) {
	ns, err := l.NS(node)
	if err != nil {
		return nil, err
	}
	h, err := netnsutil.Handle(ns)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	return h.RouteList(nil, netlink.FAMILY_V4)
}

func waitBGPRoute(t *testing.T, l *lab.Lab, node string, p netip.Prefix, via string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		gw, ok, err := bgpRoute(l, node, p)
		if err != nil {
			t.Fatal(err)
		}
		if ok && gw.String() == via {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no BGP route to %s via %s after 20s (have %v %v)", node, p, via, ok, gw)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// watchRoute counts, every 10 ms until stop is called, the polls in which
// node had no BGP route to p.
func watchRoute(t *testing.T, l *lab.Lab, node string, p netip.Prefix, gone *atomic.Int32) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if _, ok, err := bgpRoute(l, node, p); err == nil && !ok {
				gone.Add(1)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	return func() { cancel(); <-done }
}

// noStaticRoutes: on every node, only BGP routes lead to the other site's
// LAN (or parts of it); default routes do not count.
func noStaticRoutes(t *testing.T, l *lab.Lab) {
	t.Helper()
	for _, n := range append(lab.Gateways(), "s1host", "s2host", "inet") {
		rs, err := nodeRoutes(l, n)
		if err != nil {
			t.Fatal(err)
		}
		own := site1LAN
		if n[:2] == "s2" {
			own = site2LAN
		}
		for _, r := range rs {
			if r.Dst == nil {
				continue
			}
			p, err := netip.ParsePrefix(r.Dst.String())
			other := site1LAN
			if own == site1LAN {
				other = site2LAN
			}
			if err == nil && p.Bits() >= other.Bits() && other.Contains(p.Addr()) && r.Protocol != protoBGP {
				t.Errorf("%s: route %s proto %d leads to the other site; want BGP only", n, r, r.Protocol)
			}
		}
	}
}

// checkNeighborsCLI: `havpn neighbors` and `havpn routes` on an active
// gateway show the established session and the installed route.
func checkNeighborsCLI(t *testing.T, l *lab.Lab, node string) {
	t.Helper()
	waitEstablished(t, l, node)
	sock, _ := l.Socket(node)
	out, errOut, code := runCLI(t, "--socket", sock, "routes", "-o", "json")
	var rr struct {
		Running bool `json:"running"`
		Routes  []struct {
			Prefix    string `json:"prefix"`
			Installed bool   `json:"installed"`
			Local     bool   `json:"local"`
		} `json:"routes"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &rr) != nil || !rr.Running {
		t.Fatalf("%s: havpn routes: exit %d %s %s", node, code, out, errOut)
	}
	var learned, local int
	for _, r := range rr.Routes {
		if r.Installed {
			learned++
		}
		if r.Local {
			local++
		}
	}
	if learned != 1 || local != 1 {
		t.Errorf("%s: havpn routes: %d installed, %d local; want the other LAN learned and ours announced: %s", node, learned, local, out)
	}
	if out, _, code := runCLI(t, "--socket", sock, "routes"); code != 0 || !containsAll(out, "192.168.1.0/24", "192.168.2.0/24") {
		t.Errorf("%s: havpn routes table: exit %d\n%s", node, code, out)
	}
	if out, _, code := runCLI(t, "--socket", sock, "neighbors"); code != 0 || !containsAll(out, "172.16.0.", "Established") {
		t.Errorf("%s: havpn neighbors table: exit %d\n%s", node, code, out)
	}
}

func waitEstablished(t *testing.T, l *lab.Lab, node string) {
	t.Helper()
	sock, _ := l.Socket(node)
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, errOut, code := runCLI(t, "--socket", sock, "neighbors", "-o", "json")
		var nr struct {
			Neighbors []struct {
				State string `json:"state"`
			} `json:"neighbors"`
		}
		if code == 0 && json.Unmarshal([]byte(out), &nr) == nil && len(nr.Neighbors) == 1 && nr.Neighbors[0].State == "established" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: BGP session not established after 20s: exit %d %s %s", node, code, out, errOut)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitSynced waits until node (a standby) holds p among the routes the
// active handed over.
func waitSynced(t *testing.T, l *lab.Lab, node string, p netip.Prefix) {
	t.Helper()
	sock, _ := l.Socket(node)
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _, _ := runCLI(t, "--socket", sock, "routes", "-o", "json")
		var rr struct {
			Running bool `json:"running"`
			Synced  []struct {
				Prefix string `json:"prefix"`
			} `json:"synced"`
		}
		if json.Unmarshal([]byte(out), &rr) == nil && !rr.Running && len(rr.Synced) == 1 && rr.Synced[0].Prefix == p.String() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: standby does not hold the active's route to %s: %s", node, p, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func containsAll(s string, subs ...string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}
