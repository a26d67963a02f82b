package tun_test

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/havpn/havpn/internal/lab/labtest"
	"github.com/havpn/havpn/internal/netnsutil"
	"github.com/havpn/havpn/internal/tunnel/tun"
	"github.com/havpn/havpn/internal/tunnel/tun/tuntest"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

var _ tun.Device = (*tuntest.Device)(nil)

func TestConfigCheck(t *testing.T) {
	tests := []struct {
		name string
		c    tun.Config
	}{
		{"no name", tun.Config{MTU: 1400}},
		{"long name", tun.Config{Name: "abcdefghijklmnop", MTU: 1400}},
		{"small mtu", tun.Config{Name: "t0", MTU: 100}},
		{"peer without address", tun.Config{Name: "t0", MTU: 1400, Peer: netip.MustParseAddr("10.0.0.2")}},
		{"mixed families", tun.Config{Name: "t0", MTU: 1400, Address: netip.MustParsePrefix("10.0.0.1/30"), Peer: netip.MustParseAddr("fd00::2")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tun.Create(tc.c); !errors.Is(err, tun.ErrConfig) {
				t.Fatalf("Create = %v, want ErrConfig", err)
			}
		})
	}
}

func TestCreate(t *testing.T) {
	labtest.RequireRoot(t)
	ns := labtest.NewNetNS(t, labtest.Prefix(t)+"tun")
	for _, tc := range []struct {
		name string
		addr netip.Prefix
		peer netip.Addr
	}{
		{"gre-site2", netip.MustParsePrefix("172.16.0.1/30"), netip.MustParseAddr("172.16.0.2")},
		{"gre-v6", netip.MustParsePrefix("fd00:16::1/64"), netip.MustParseAddr("fd00:16::2")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var dev tun.Device
			err := netnsutil.Do(ns, func() (err error) {
				dev, err = tun.Create(tun.Config{Name: tc.name, MTU: 1400, Address: tc.addr, Peer: tc.peer})
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			h, err := netnsutil.Handle(ns)
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			link, err := h.LinkByName(tc.name)
			if err != nil {
				t.Fatal(err)
			}
			a := link.Attrs()
			if a.MTU != 1400 {
				t.Errorf("mtu %d, want 1400", a.MTU)
			}
			for _, f := range []net.Flags{net.FlagUp, net.FlagPointToPoint, net.FlagMulticast} {
				if a.Flags&f == 0 {
					t.Errorf("flag %v missing in %v", f, a.Flags)
				}
			}
			if a.TxQLen != 1000 {
				t.Errorf("txqueuelen %d, want 1000", a.TxQLen)
			}
			fam := netlink.FAMILY_V4
			if tc.addr.Addr().Is6() {
				fam = netlink.FAMILY_V6
			}
			addrs, err := h.AddrList(link, fam)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, ad := range addrs {
				local, _ := netip.AddrFromSlice(ad.IP)
				if local.Unmap() != tc.addr.Addr() {
					continue
				}
				found = true
				if ad.Peer == nil {
					t.Errorf("address %v has no peer", ad)
					continue
				}
				ones, _ := ad.Peer.Mask.Size()
				peer, _ := netip.AddrFromSlice(ad.Peer.IP)
				if peer.Unmap() != tc.peer || ones != tc.addr.Bits() {
					t.Errorf("address %v: peer %s/%d, want %s/%d", ad, peer, ones, tc.peer, tc.addr.Bits())
				}
			}
			if !found {
				t.Errorf("address %s not on %s: %v", tc.addr, tc.name, addrs)
			}
			if dev.BatchSize() < 1 {
				t.Errorf("batch size %d", dev.BatchSize())
			}
			if err := dev.Close(); err != nil {
				t.Fatal(err)
			}
			if err := dev.Close(); err != nil {
				t.Fatalf("second close: %v", err)
			}
			if _, err := h.LinkByName(tc.name); err == nil {
				t.Errorf("%s still exists after Close", tc.name)
			}
		})
	}
}

// TestReadWrite sends a UDP datagram to the peer address, which the kernel
// routes into the TUN, and writes a reply back through the TUN.
func TestReadWrite(t *testing.T) {
	labtest.RequireRoot(t)
	ns := labtest.NewNetNS(t, labtest.Prefix(t)+"tunrw")
	var dev tun.Device
	var sock *net.UDPConn
	err := netnsutil.Do(ns, func() (err error) {
		dev, err = tun.Create(tun.Config{Name: "tun0", MTU: 1400, Address: netip.MustParsePrefix("172.16.0.1/30"), Peer: netip.MustParseAddr("172.16.0.2")})
		if err != nil {
			return err
		}
		sock, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(172, 16, 0, 1), Port: 9999})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	defer sock.Close()
	if _, err := sock.WriteToUDP([]byte("hello tun"), &net.UDPAddr{IP: net.IPv4(172, 16, 0, 2), Port: 7}); err != nil {
		t.Fatal(err)
	}
	bs := max(dev.BatchSize(), 1)
	bufs := make([][]byte, bs)
	for i := range bufs {
		bufs[i] = make([]byte, tun.Headroom+tun.MaxPacket)
	}
	sizes := make([]int, bs)
	var pkt []byte
	deadline := time.Now().Add(5 * time.Second)
	for pkt == nil && time.Now().Before(deadline) {
		n, err := dev.Read(bufs, sizes, tun.Headroom)
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			p := bufs[i][tun.Headroom : tun.Headroom+sizes[i]]
			if len(p) >= 28 && p[0]>>4 == 4 && p[9] == unix.IPPROTO_UDP {
				pkt = p
			}
		}
	}
	if pkt == nil {
		t.Fatal("no UDP packet read from the tun")
	}
	if string(pkt[28:]) != "hello tun" {
		t.Fatalf("payload %q", pkt[28:])
	}
	// Reply: swap addresses and ports, clear the UDP checksum.
	reply := make([]byte, tun.Headroom+len(pkt), tun.Headroom+tun.MaxPacket)
	r := reply[tun.Headroom:]
	copy(r, pkt)
	copy(r[12:16], pkt[16:20])
	copy(r[16:20], pkt[12:16])
	copy(r[20:22], pkt[22:24])
	copy(r[22:24], pkt[20:22])
	r[26], r[27] = 0, 0
	r[10], r[11] = 0, 0
	var s uint32
	for i := 0; i < 20; i += 2 {
		s += uint32(r[i])<<8 | uint32(r[i+1])
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	r[10], r[11] = byte(^s>>8), byte(^s)
	if _, err := dev.Write([][]byte{reply}, tun.Headroom); err != nil {
		t.Fatal(err)
	}
	sock.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 100)
	n, from, err := sock.ReadFromUDP(b)
	if err != nil {
		t.Fatal(err)
	}
	if string(b[:n]) != "hello tun" || from.Port != 7 {
		t.Fatalf("got %q from %v", b[:n], from)
	}
	dev.Close()
	if _, err := dev.Read(bufs, sizes, tun.Headroom); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Read after Close = %v, want os.ErrClosed", err)
	}
}
