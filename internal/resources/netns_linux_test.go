package resources_test

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/havpn/havpn/internal/config"
	"github.com/havpn/havpn/internal/lab/labtest"
	"github.com/havpn/havpn/internal/netnsutil"
	"github.com/havpn/havpn/internal/resources"
	"github.com/havpn/havpn/internal/vip"
	"github.com/vishvananda/netlink"
)

// TestGroupRealVIPRollback runs a group with real VIPs in a namespace: the
// failing script after them must leave no address behind.
func TestGroupRealVIPRollback(t *testing.T) {
	labtest.RequireRoot(t)
	ns := labtest.NewNetNS(t, labtest.Prefix(t)+"gw")
	h, err := netnsutil.Handle(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "lan0"}, PeerName: "lan0p"}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"lan0", "lan0p"} {
		l, err := h.LinkByName(n)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
	}
	nl, err := vip.NewNetlink(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer nl.Close()
	t.Setenv("HAVPN_TEST_EXIT", "1")
	sec := config.Duration(time.Second)
	v4, v6 := netip.MustParsePrefix("192.168.1.1/24"), netip.MustParsePrefix("2001:db8:1::1/64")
	rs := []config.Resource{
		{Name: "lan-vip", Type: config.ResourceVIP, Address: v4, Interface: "lan0", Timeout: sec},
		{Name: "lan-vip6", Type: config.ResourceVIP, Address: v6, Interface: "lan0", Timeout: sec},
		{Name: "broken", Type: config.ResourceScript, Path: testdata(t, "exitcode.sh"), Timeout: sec},
	}
	build := resources.NewFactory(resources.Deps{Log: discard(), Addrs: nl, Announcer: nl,
		GARP: config.GARP{Count: 2, Interval: config.Duration(10 * time.Millisecond)}})
	g, err := resources.NewGroup(rs, build, resources.Options{Log: discard()})
	if err != nil {
		t.Fatal(err)
	}
	err = g.Start(t.Context())
	if se, ok := errors.AsType[*resources.ScriptError](err); !ok || se.Code != 1 {
		t.Fatalf("Start error = %v, want the script's exit code 1", err)
	}
	for _, p := range []netip.Prefix{v4, v6} {
		if ok, err := nl.HasAddr("lan0", p); err != nil || ok {
			t.Errorf("VIP %s present after rollback (err %v)", p, err)
		}
	}

	// Without the broken script the VIPs come up, in the kernel.
	g, err = resources.NewGroup(rs[:2], build, resources.Options{Log: discard()})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	diff(t, "states", "lan-vip=running lan-vip6=running", states(g.Check(t.Context())))
	if err := g.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	diff(t, "states after stop", "lan-vip=stopped lan-vip6=stopped", states(g.Check(t.Context())))
}
