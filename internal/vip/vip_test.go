package vip_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/havpn/havpn/internal/vip"
	"github.com/havpn/havpn/internal/vip/viptest"
	"github.com/mdlayher/arp"
	"github.com/mdlayher/ndp"
	"github.com/prometheus/client_golang/prometheus"
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// waitFor polls cond every millisecond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// metricValue returns the value of the sample of family name whose vip
// label is vip.
func metricValue(t *testing.T, g prometheus.Gatherer, name, vipLabel string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "vip" && l.GetValue() == vipLabel {
					if m.GetGauge() != nil {
						return m.GetGauge().GetValue()
					}
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no sample %s{vip=%q}", name, vipLabel)
	return 0
}

func TestNewValidates(t *testing.T) {
	good := vip.Config{Interface: "lan0", Address: netip.MustParsePrefix("192.168.1.1/24")}
	tests := []struct {
		name string
		mod  func(*vip.Config)
		ann  bool
		ok   bool
	}{
		{name: "defaults", mod: func(*vip.Config) {}, ok: true},
		{name: "no interface", mod: func(c *vip.Config) { c.Interface = "" }},
		{name: "no address", mod: func(c *vip.Config) { c.Address = netip.Prefix{} }},
		{name: "bad prefix length", mod: func(c *vip.Config) {
			c.Address = netip.PrefixFrom(netip.MustParseAddr("192.168.1.1"), 33)
		}},
		{name: "refresh equal to lifetime", mod: func(c *vip.Config) { c.Refresh = time.Second }},
		{name: "refresh below a 2 s lifetime", mod: func(c *vip.Config) { c.Refresh = time.Second; c.Lifetime = 2 }, ok: true},
		{name: "burst without interval", mod: func(c *vip.Config) { c.AnnounceCount = 3 }, ann: true},
		{name: "announce without announcer", mod: func(c *vip.Config) { c.AnnounceCount = 1 }},
		{name: "announce one without interval", mod: func(c *vip.Config) { c.AnnounceCount = 1 }, ann: true, ok: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			tc.mod(&cfg)
			var ann vip.Announcer
			if tc.ann {
				ann = &viptest.Fake{}
			}
			_, err := vip.New(cfg, &viptest.Fake{}, ann, discard(), nil)
			if tc.ok && err != nil {
				t.Fatalf("New: %v", err)
			}
			if !tc.ok && !errors.Is(err, vip.ErrInvalidConfig) {
				t.Fatalf("New error = %v, want ErrInvalidConfig", err)
			}
		})
	}
}

func TestAcquireRelease(t *testing.T) {
	tests := []struct {
		name  string
		addr  string
		count int
		want  string
	}{
		{name: "ipv4 burst of 3", addr: "192.168.1.1/24", count: 3, want: `add 192.168.1.1/24 dev lan0 valid_lft 1 preferred_lft 1
open 192.168.1.1 dev lan0
announce 192.168.1.1 dev lan0
announce 192.168.1.1 dev lan0
announce 192.168.1.1 dev lan0
close 192.168.1.1 dev lan0
del 192.168.1.1/24 dev lan0`},
		{name: "ipv6 single NA", addr: "2001:db8::1/64", count: 1, want: `add 2001:db8::1/64 dev lan0 valid_lft 1 preferred_lft 1
open 2001:db8::1 dev lan0
announce 2001:db8::1 dev lan0
close 2001:db8::1 dev lan0
del 2001:db8::1/64 dev lan0`},
		{name: "no announcements", addr: "198.51.100.1/28", count: 0, want: `add 198.51.100.1/28 dev lan0 valid_lft 1 preferred_lft 1
del 198.51.100.1/28 dev lan0`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &viptest.Fake{}
			p := netip.MustParsePrefix(tc.addr)
			v, err := vip.New(vip.Config{Interface: "lan0", Address: p, AnnounceCount: tc.count,
				AnnounceInterval: 2 * time.Millisecond}, f, f, discard(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := v.Acquire(t.Context()); err != nil {
				t.Fatalf("Acquire: %v", err)
			}
			if tc.count > 0 && f.Sent() < 1 {
				t.Fatal("Acquire returned before the first announcement")
			}
			if !v.Held() {
				t.Fatal("not held after Acquire")
			}
			waitFor(t, time.Second, "burst", func() bool { return f.Sent() == tc.count })
			// The burst goroutine closes its sender after the last packet.
			if tc.count > 0 {
				waitFor(t, time.Second, "sender closed", func() bool { return strings.Contains(f.Ops(), "close") })
			}
			if err := v.Release(t.Context()); err != nil {
				t.Fatalf("Release: %v", err)
			}
			if v.Held() {
				t.Fatal("held after Release")
			}
			if diff := cmp.Diff(tc.want, f.Ops()); diff != "" {
				t.Errorf("ops (-want +got):\n%s", diff)
			}
			if got := v.Status().Announced; got != tc.count {
				t.Errorf("Status.Announced = %d, want %d", got, tc.count)
			}
		})
	}
}

func TestAcquireIsIdempotent(t *testing.T) {
	f := &viptest.Fake{}
	p := netip.MustParsePrefix("192.168.1.1/24")
	// Present already (e.g. left by an earlier process): fine.
	if err := f.ReplaceAddr("lan0", p, 1, 1); err != nil {
		t.Fatal(err)
	}
	v, err := vip.New(vip.Config{Interface: "lan0", Address: p, AnnounceCount: 1}, f, f, discard(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := v.Acquire(t.Context()); err != nil {
			t.Fatalf("Acquire #%d: %v", i, err)
		}
	}
	if got := f.Sent(); got != 1 {
		t.Errorf("announcements after 3 Acquires = %d, want 1", got)
	}
	for i := range 2 {
		if err := v.Release(t.Context()); err != nil {
			t.Fatalf("Release #%d: %v", i, err)
		}
	}
	want := `add 192.168.1.1/24 dev lan0 valid_lft 1 preferred_lft 1
open 192.168.1.1 dev lan0
announce 192.168.1.1 dev lan0
close 192.168.1.1 dev lan0
del 192.168.1.1/24 dev lan0`
	if diff := cmp.Diff(want, f.Ops()); diff != "" {
		t.Errorf("ops (-want +got):\n%s", diff)
	}
}

func TestReleaseRemovesLeftover(t *testing.T) {
	f := &viptest.Fake{}
	p := netip.MustParsePrefix("192.168.1.1/24")
	if err := f.ReplaceAddr("lan0", p, 1, 1); err != nil {
		t.Fatal(err)
	}
	v, err := vip.New(vip.Config{Interface: "lan0", Address: p}, f, nil, discard(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
	if ok, _ := v.Present(); ok {
		t.Fatal("leftover address still present after Release")
	}
}

func TestRefreshKeepsAndRestoresAddress(t *testing.T) {
	f := &viptest.Fake{}
	p := netip.MustParsePrefix("192.168.1.1/24")
	reg := prometheus.NewRegistry()
	m, err := vip.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	v, err := vip.New(vip.Config{Interface: "lan0", Address: p, Refresh: 5 * time.Millisecond}, f, nil, discard(), m)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Acquire(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer v.Release(context.Background())
	waitFor(t, time.Second, "3 refreshes", func() bool { return f.Refreshes() >= 3 })

	// The kernel expired it (say the refresher stalled): the next refresh
	// puts it back.
	f.Expire("lan0", p)
	waitFor(t, time.Second, "address restored", func() bool { ok, _ := v.Present(); return ok })

	f.Fail("replace", true)
	waitFor(t, time.Second, "refresh error in status", func() bool { return v.Status().RefreshError != "" })
	if got := metricValue(t, reg, "havpn_vip_refresh_errors_total", p.String()); got < 1 {
		t.Errorf("refresh errors metric = %v, want >= 1", got)
	}
	f.Fail("replace", false)
	waitFor(t, time.Second, "refresh error cleared", func() bool { return v.Status().RefreshError == "" })
	if got := metricValue(t, reg, "havpn_vip_held", p.String()); got != 1 {
		t.Errorf("held metric = %v, want 1", got)
	}
}

func TestAnnounceFailure(t *testing.T) {
	tests := []struct {
		name string
		fail string
	}{
		{name: "open", fail: "open"},
		{name: "first send", fail: "send"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &viptest.Fake{}
			f.Fail(tc.fail, true)
			p := netip.MustParsePrefix("192.168.1.1/24")
			v, err := vip.New(vip.Config{Interface: "lan0", Address: p, AnnounceCount: 3,
				AnnounceInterval: time.Millisecond}, f, f, discard(), nil)
			if err != nil {
				t.Fatal(err)
			}
			err = v.Acquire(t.Context())
			if !errors.Is(err, viptest.ErrInjected) {
				t.Fatalf("Acquire error = %v, want the injected failure", err)
			}
			if !v.Held() {
				t.Fatal("address added but VIP not held: Release would not stop the refresher")
			}
			if err := v.Release(t.Context()); err != nil {
				t.Fatal(err)
			}
			if ok, _ := v.Present(); ok {
				t.Fatal("address present after Release")
			}
		})
	}
}

func TestReleaseStopsLongBurst(t *testing.T) {
	f := &viptest.Fake{}
	v, err := vip.New(vip.Config{Interface: "lan0", Address: netip.MustParsePrefix("192.168.1.1/24"),
		AnnounceCount: 100, AnnounceInterval: time.Hour}, f, f, discard(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Acquire(t.Context()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := v.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Release took %s with a pending burst", d)
	}
	if got := f.Sent(); got != 1 {
		t.Fatalf("sent %d, want 1", got)
	}
}

func TestGARPPayload(t *testing.T) {
	mac := net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	ip := netip.MustParseAddr("198.51.100.1")
	b, err := vip.GARPPayload(mac, ip)
	if err != nil {
		t.Fatal(err)
	}
	var p arp.Packet
	if err := p.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	want := arp.Packet{HardwareType: 1, ProtocolType: 0x0800, HardwareAddrLength: 6, IPLength: 4,
		Operation: arp.OperationRequest, SenderHardwareAddr: mac, SenderIP: ip,
		TargetHardwareAddr: net.HardwareAddr{0, 0, 0, 0, 0, 0}, TargetIP: ip}
	if diff := cmp.Diff(want, p, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("garp (-want +got):\n%s", diff)
	}
	if _, err := vip.GARPPayload(mac, netip.MustParseAddr("2001:db8::1")); err == nil {
		t.Error("GARPPayload accepted an IPv6 address")
	}
}

func TestUnsolicitedNA(t *testing.T) {
	mac := net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	ip := netip.MustParseAddr("2001:db8::1")
	na, err := vip.UnsolicitedNA(mac, ip)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ndp.MarshalMessage(na)
	if err != nil {
		t.Fatal(err)
	}
	m, err := ndp.ParseMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := m.(*ndp.NeighborAdvertisement)
	if !ok {
		t.Fatalf("parsed %T, want NA", m)
	}
	if got.Solicited || !got.Override || got.Router || got.TargetAddress != ip {
		t.Errorf("NA flags/target = S%v O%v R%v %s", got.Solicited, got.Override, got.Router, got.TargetAddress)
	}
	if len(got.Options) != 1 {
		t.Fatalf("options = %v", got.Options)
	}
	lla, ok := got.Options[0].(*ndp.LinkLayerAddress)
	if !ok || lla.Direction != ndp.Target || lla.Addr.String() != mac.String() {
		t.Errorf("option = %#v, want target LLA %s", got.Options[0], mac)
	}
	if _, err := vip.UnsolicitedNA(mac, netip.MustParseAddr("192.0.2.1")); err == nil {
		t.Error("UnsolicitedNA accepted an IPv4 address")
	}
}

// TestReleaseLeavesNoGoroutines checks that the refresh and burst
// goroutines belong to the hold and end with Release.
func TestReleaseLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	f := &viptest.Fake{}
	for i := range 5 {
		v, err := vip.New(vip.Config{Interface: "lan0", Address: netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 168, 1, byte(i + 1)}), 24),
			AnnounceCount: 50, AnnounceInterval: time.Millisecond, Refresh: time.Millisecond}, f, f, discard(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := v.Acquire(t.Context()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
		if err := v.Release(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, time.Second, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}

func TestReannounce(t *testing.T) {
	f := &viptest.Fake{}
	p := netip.MustParsePrefix("192.168.1.1/24")
	v, err := vip.New(vip.Config{Interface: "lan0", Address: p, AnnounceCount: 1}, f, f, discard(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Reannounce(t.Context()); err != nil || f.Sent() != 0 {
		t.Fatalf("Reannounce of a released VIP: err %v, sent %d, want nothing sent", err, f.Sent())
	}
	if err := v.Acquire(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := v.Reannounce(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := f.Sent(); got != 2 {
		t.Errorf("announcements after Acquire + Reannounce = %d, want 2", got)
	}
	if err := v.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
}
