package vip_test

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/havpn/havpn/internal/lab/labtest"
	"github.com/havpn/havpn/internal/netnsutil"
	"github.com/havpn/havpn/internal/vip"
	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// pair builds two namespaces joined by a veth: "vip0" in the first (where
// the VIP goes), "peer0" in the second (the rest of the LAN). It returns the
// namespace names.
func pair(t *testing.T) (string, string) {
	t.Helper()
	labtest.RequireRoot(t)
	pfx := labtest.Prefix(t)
	a := labtest.NewNetNS(t, pfx+"a")
	b := labtest.NewNetNS(t, pfx+"b")
	ha, err := netnsutil.Handle(a)
	if err != nil {
		t.Fatal(err)
	}
	defer ha.Close()
	hb, err := netnsutil.Handle(b)
	if err != nil {
		t.Fatal(err)
	}
	defer hb.Close()
	nsb, err := netns.GetFromName(b)
	if err != nil {
		t.Fatal(err)
	}
	defer nsb.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "vip0"}, PeerName: "peer0", PeerNamespace: netlink.NsFd(int(nsb))}
	if err := ha.LinkAdd(veth); err != nil {
		t.Fatalf("adding veth: %v", err)
	}
	for _, x := range []struct {
		h    *netlink.Handle
		name string
		addr string
	}{{ha, "vip0", "198.51.100.2/28"}, {hb, "peer0", "198.51.100.3/28"}} {
		l, err := x.h.LinkByName(x.name)
		if err != nil {
			t.Fatal(err)
		}
		a, _ := netlink.ParseAddr(x.addr)
		if err := x.h.AddrAdd(l, a); err != nil {
			t.Fatal(err)
		}
		if err := x.h.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
	}
	return a, b
}

func backend(t *testing.T, ns string) *vip.Netlink {
	t.Helper()
	n, err := vip.NewNetlink(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func TestNetlinkVIPLifetime(t *testing.T) {
	tests := []struct {
		name string
		addr string
	}{
		{name: "ipv4", addr: "198.51.100.1/28"},
		{name: "ipv6", addr: "2001:db8::1/64"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, _ := pair(t)
			n := backend(t, a)
			p := netip.MustParsePrefix(tc.addr)
			v, err := vip.New(vip.Config{Interface: "vip0", Address: p}, n, n, discard(), nil)
			if err != nil {
				t.Fatal(err)
			}
			// Present already (a leftover) is fine.
			if err := n.ReplaceAddr("vip0", p, 100, 100); err != nil {
				t.Fatal(err)
			}
			if err := v.Acquire(t.Context()); err != nil {
				t.Fatal(err)
			}
			valid, pref, ok, err := n.Lifetimes("vip0", p)
			if err != nil || !ok {
				t.Fatalf("VIP not present after Acquire (err %v)", err)
			}
			if valid > 1 || pref > 1 {
				t.Fatalf("lifetimes valid %d preferred %d, want <= 1 s", valid, pref)
			}
			// Held for 2.5 lifetimes: the refresher must keep it the whole time.
			end := time.Now().Add(2500 * time.Millisecond)
			for time.Now().Before(end) {
				if ok, err := n.HasAddr("vip0", p); err != nil || !ok {
					t.Fatalf("VIP vanished while held (err %v)", err)
				}
				time.Sleep(10 * time.Millisecond)
			}
			if err := v.Release(t.Context()); err != nil {
				t.Fatal(err)
			}
			if ok, err := n.HasAddr("vip0", p); err != nil || ok {
				t.Fatalf("VIP present after Release (err %v)", err)
			}
			// Release again, and release on a missing interface: both fine.
			if err := v.Release(t.Context()); err != nil {
				t.Fatal(err)
			}
			if err := n.DelAddr("nosuch0", p); err != nil {
				t.Fatalf("DelAddr on a missing interface: %v", err)
			}
		})
	}
}

// TestNetlinkVIPExpiresWhenRefresherDies stops the refresher without
// deleting the address, as SIGKILL of the daemon would, and measures how long
// the kernel keeps the address.
func TestNetlinkVIPExpiresWhenRefresherDies(t *testing.T) {
	tests := []struct {
		name string
		addr string
	}{
		{name: "ipv4", addr: "198.51.100.1/28"},
		{name: "ipv6", addr: "2001:db8::1/64"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, _ := pair(t)
			n := backend(t, a)
			p := netip.MustParsePrefix(tc.addr)
			v, err := vip.New(vip.Config{Interface: "vip0", Address: p}, n, nil, discard(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := v.Acquire(t.Context()); err != nil {
				t.Fatal(err)
			}
			time.Sleep(700 * time.Millisecond) // a couple of refreshes
			v.StopRefreshForTest()
			killed := time.Now()
			last := v.Status().LastRefresh
			for {
				ok, err := n.HasAddr("vip0", p)
				if err != nil {
					t.Fatal(err)
				}
				if !ok {
					break
				}
				if time.Since(killed) > 2*time.Second {
					t.Fatalf("VIP still present %s after its refresher died", time.Since(killed))
				}
				time.Sleep(5 * time.Millisecond)
			}
			t.Logf("VIP gone %s after the refresher died, %s after its last refresh",
				time.Since(killed).Round(time.Millisecond), time.Since(last).Round(time.Millisecond))
			if err := v.Release(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// capture opens an AF_PACKET socket for ethertype on iface inside ns and
// returns received frames (with their arrival times) on a channel until the
// test ends.
type frame struct {
	at time.Time
	f  ethernet.Frame
}

func capture(t *testing.T, ns, iface string, et ethernet.EtherType) <-chan frame {
	t.Helper()
	var c *packet.Conn
	err := netnsutil.Do(ns, func() error {
		ifi, err := net.InterfaceByName(iface)
		if err != nil {
			return err
		}
		c, err = packet.Listen(ifi, packet.Raw, int(et), nil)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan frame, 256)
	done := make(chan struct{})
	go func() {
		defer close(done)
		b := make([]byte, 2048)
		for {
			n, _, err := c.ReadFrom(b)
			if err != nil {
				return
			}
			at := time.Now()
			var f ethernet.Frame
			if f.UnmarshalBinary(b[:n]) != nil {
				continue
			}
			select {
			case out <- frame{at, f}:
			default:
			}
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
	return out
}

func macOf(t *testing.T, ns, iface string) net.HardwareAddr {
	t.Helper()
	h, err := netnsutil.Handle(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	l, err := h.LinkByName(iface)
	if err != nil {
		t.Fatal(err)
	}
	return l.Attrs().HardwareAddr
}

func TestNetlinkGARPSeenOnPeer(t *testing.T) {
	a, b := pair(t)
	frames := capture(t, b, "peer0", ethernet.EtherTypeARP)
	n := backend(t, a)
	p := netip.MustParsePrefix("198.51.100.1/28")
	const count, interval = 4, 20 * time.Millisecond
	v, err := vip.New(vip.Config{Interface: "vip0", Address: p, AnnounceCount: count, AnnounceInterval: interval}, n, n, discard(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Release(context.Background()) })
	start := time.Now()
	if err := v.Acquire(t.Context()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > interval {
		t.Errorf("Acquire blocked %s, longer than one announce interval", d)
	}
	mac := macOf(t, a, "vip0")
	var got []time.Time
	timeout := time.After(2 * time.Second)
	for len(got) < count {
		select {
		case fr := <-frames:
			var ap arp.Packet
			if ap.UnmarshalBinary(fr.f.Payload) != nil {
				continue
			}
			if ap.Operation != arp.OperationRequest || ap.SenderIP != p.Addr() || ap.TargetIP != p.Addr() {
				continue // e.g. the peer's own traffic
			}
			if ap.SenderHardwareAddr.String() != mac.String() || fr.f.Source.String() != mac.String() {
				t.Fatalf("GARP from %s (sender %s), want %s", fr.f.Source, ap.SenderHardwareAddr, mac)
			}
			if fr.f.Destination.String() != ethernet.Broadcast.String() {
				t.Fatalf("GARP to %s, want broadcast", fr.f.Destination)
			}
			got = append(got, fr.at)
		case <-timeout:
			t.Fatalf("saw %d gratuitous ARPs on the peer, want %d", len(got), count)
		}
	}
	for i := 1; i < len(got); i++ {
		if gap := got[i].Sub(got[i-1]); gap < interval/2 {
			t.Errorf("GARP %d came %s after the previous one, want about %s", i, gap, interval)
		}
	}
	select {
	case fr := <-frames:
		var ap arp.Packet
		if ap.UnmarshalBinary(fr.f.Payload) == nil && ap.SenderIP == p.Addr() && ap.TargetIP == p.Addr() {
			t.Errorf("more than %d gratuitous ARPs", count)
		}
	case <-time.After(3 * interval):
	}
}

func TestNetlinkNASeenOnPeer(t *testing.T) {
	a, b := pair(t)
	frames := capture(t, b, "peer0", ethernet.EtherTypeIPv6)
	n := backend(t, a)
	p := netip.MustParsePrefix("2001:db8::1/64")
	const count, interval = 3, 20 * time.Millisecond
	v, err := vip.New(vip.Config{Interface: "vip0", Address: p, AnnounceCount: count, AnnounceInterval: interval}, n, n, discard(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Release(context.Background()) })
	if err := v.Acquire(t.Context()); err != nil {
		t.Fatal(err)
	}
	mac := macOf(t, a, "vip0")
	seen := 0
	timeout := time.After(2 * time.Second)
	for seen < count {
		select {
		case fr := <-frames:
			na, hop, src, dst, ok := parseNA(fr.f.Payload)
			if !ok || na.TargetAddress != p.Addr() {
				continue // MLD reports, router solicitations, ...
			}
			if hop != 255 || src != p.Addr() || dst != netip.MustParseAddr("ff02::1") {
				t.Fatalf("NA hop limit %d %s -> %s, want 255 %s -> ff02::1", hop, src, dst, p.Addr())
			}
			if na.Solicited || !na.Override {
				t.Fatalf("NA flags S=%v O=%v, want S=false O=true", na.Solicited, na.Override)
			}
			var lla *ndp.LinkLayerAddress
			for _, o := range na.Options {
				if l, ok := o.(*ndp.LinkLayerAddress); ok && l.Direction == ndp.Target {
					lla = l
				}
			}
			if lla == nil || lla.Addr.String() != mac.String() {
				t.Fatalf("NA target link-layer option = %v, want %s", lla, mac)
			}
			seen++
		case <-timeout:
			t.Fatalf("saw %d unsolicited NAs on the peer, want %d", seen, count)
		}
	}
}

// parseNA decodes an IPv6 packet carrying an ICMPv6 Neighbor Advertisement.
func parseNA(b []byte) (na *ndp.NeighborAdvertisement, hop uint8, src, dst netip.Addr, ok bool) {
	const ipv6Len, icmpv6 = 40, 58
	if len(b) < ipv6Len || b[0]>>4 != 6 || b[6] != icmpv6 {
		return nil, 0, src, dst, false
	}
	plen := int(binary.BigEndian.Uint16(b[4:6]))
	if len(b) < ipv6Len+plen {
		return nil, 0, src, dst, false
	}
	src = netip.AddrFrom16([16]byte(b[8:24]))
	dst = netip.AddrFrom16([16]byte(b[24:40]))
	m, err := ndp.ParseMessage(b[ipv6Len : ipv6Len+plen])
	if err != nil {
		return nil, 0, src, dst, false
	}
	na, ok = m.(*ndp.NeighborAdvertisement)
	return na, b[7], src, dst, ok
}

func TestNewNetlinkMissingNamespace(t *testing.T) {
	labtest.RequireRoot(t)
	_, err := vip.NewNetlink(labtest.Prefix(t) + "nosuch")
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("NewNetlink on a missing namespace: %v, want a not-exist error", err)
	}
}
