package tunnel_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/havpn/havpn/internal/config"
	"github.com/havpn/havpn/internal/lab"
	"github.com/havpn/havpn/internal/lab/labtest"
	"github.com/havpn/havpn/internal/netnsutil"
	"github.com/havpn/havpn/internal/tunnel"
	"github.com/mdlayher/packet"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TestMain lets the test binary stand in for `havpn lab echo`, so the lab
// can start its echo responders without building havpn.
func TestMain(m *testing.M) {
	if len(os.Args) == 5 && os.Args[1] == "lab" && os.Args[2] == "echo" {
		port, _ := strconv.Atoi(os.Args[4])
		if err := lab.Echo(context.Background(), port); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// labTunnels is the lab with a manual-key tunnel between s1gw1 and s2gw1
// and static routes for the other site's LAN through it.
type labTunnels struct {
	l      *lab.Lab
	m1, m2 *tunnel.Manager
	c1, c2 config.Tunnel
}

func writeKey(t *testing.T, dir, name string, n int, seed byte) string {
	t.Helper()
	k := make([]byte, n)
	for i := range k {
		k[i] = seed + byte(i)*7
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(hex.EncodeToString(k)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func upLabTunnels(t *testing.T) *labTunnels {
	t.Helper()
	labtest.RequireRoot(t)
	prefix := labtest.Prefix(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lab.Down(prefix); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	ctx := context.Background()
	if _, err := lab.Up(ctx, lab.Options{Prefix: prefix, Bin: exe}); err != nil {
		t.Fatalf("lab up: %v", err)
	}
	l, err := lab.Open(prefix)
	if err != nil {
		t.Fatal(err)
	}
	lt := &labTunnels{l: l}
	dir := t.TempDir()
	k12 := writeKey(t, dir, "s1-to-s2.key", 36, 1)
	k21 := writeKey(t, dir, "s2-to-s1.key", 36, 101)
	mk := func(site int, local, remote string, addr string, peer string, in, out uint32, kin, kout string) config.Tunnel {
		c := config.Tunnel{
			Name: "gre-site" + strconv.Itoa(3-site), Local: netip.MustParseAddr(local), Remote: netip.MustParseAddr(remote),
			Port: 4500, Mode: config.ModeGRE, Address: netip.MustParsePrefix(addr), PeerAddress: netip.MustParseAddr(peer),
			WANMTU: 1500, Cipher: config.CipherAESGCM256, ReplayWindow: 1024,
			Keepalive: config.TunnelKeepalive{Interval: config.Duration(100 * time.Millisecond), Dead: config.Duration(500 * time.Millisecond)},
			Keying:    config.KeyingManual,
			Manual:    &config.ManualKeys{Inbound: config.ManualSA{SPI: in, KeyFile: kin}, Outbound: config.ManualSA{SPI: out, KeyFile: kout}},
		}
		c.MTU = c.WANMTU - c.Overhead()
		return c
	}
	// The gateways' own WAN addresses (the VIPs belong to the daemons).
	lt.c1 = mk(1, "198.51.100.2", "203.0.113.2", "172.16.0.1/30", "172.16.0.2", 0x2101, 0x1201, k21, k12)
	lt.c2 = mk(2, "203.0.113.2", "198.51.100.2", "172.16.0.2/30", "172.16.0.1", 0x1201, 0x2101, k12, k21)
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	for i, gw := range []string{"s1gw1", "s2gw1"} {
		ns, err := l.NS(gw)
		if err != nil {
			t.Fatal(err)
		}
		c := []config.Tunnel{lt.c1, lt.c2}[i]
		m, err := tunnel.New([]config.Tunnel{c}, tunnel.Options{NetNS: ns, Log: log.With("node", gw)})
		if err != nil {
			t.Fatalf("tunnel on %s: %v", gw, err)
		}
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- m.Run(runCtx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run on %s: %v", gw, err)
			}
		})
		// The LAN VIP (hosts' default gateway) and the other LAN via the
		// tunnel.
		h, err := netnsutil.Handle(ns)
		if err != nil {
			t.Fatal(err)
		}
		site := lab.SiteInfo(i + 1)
		lan0, err := h.LinkByName("lan0")
		if err != nil {
			t.Fatal(err)
		}
		if err := h.AddrAdd(lan0, &netlink.Addr{IPNet: ipnet(site.LANVIP)}); err != nil {
			t.Fatal(err)
		}
		tn, err := h.LinkByName(c.Name)
		if err != nil {
			t.Fatal(err)
		}
		other := lab.SiteInfo(2 - i).LAN
		if err := h.RouteAdd(&netlink.Route{LinkIndex: tn.Attrs().Index, Dst: ipnet(other)}); err != nil {
			t.Fatalf("route %s via %s: %v", other, c.Name, err)
		}
		h.Close()
		if i == 0 {
			lt.m1 = m
		} else {
			lt.m2 = m
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for !(lt.m1.Tunnel(lt.c1.Name).Up() && lt.m2.Tunnel(lt.c2.Name).Up()) {
		if time.Now().After(deadline) {
			t.Fatalf("tunnels not up: %+v %+v", lt.m1.Status(), lt.m2.Status())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return lt
}

func ipnet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(b, "\n")))
	return len(b), nil
}

// capture records every IP packet on an interface of a namespace.
type capture struct {
	mu   sync.Mutex
	pkts [][]byte
	conn *packet.Conn
	done chan struct{}
}

func startCapture(t *testing.T, ns, iface string) *capture {
	t.Helper()
	c := &capture{done: make(chan struct{})}
	err := netnsutil.Do(ns, func() error {
		ifi, err := net.InterfaceByName(iface)
		if err != nil {
			return err
		}
		c.conn, err = packet.Listen(ifi, packet.Datagram, unix.ETH_P_ALL, nil)
		return err
	})
	if err != nil {
		t.Fatalf("capture on %s %s: %v", ns, iface, err)
	}
	go func() {
		defer close(c.done)
		buf := make([]byte, 70000)
		for {
			n, _, err := c.conn.ReadFrom(buf)
			if err != nil {
				return
			}
			c.mu.Lock()
			c.pkts = append(c.pkts, bytes.Clone(buf[:n]))
			c.mu.Unlock()
		}
	}()
	return c
}

func (c *capture) stop() [][]byte {
	c.conn.Close()
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pkts
}

func TestLabTunnel(t *testing.T) {
	lt := upLabTunnels(t)
	ctx := context.Background()
	s2host := lab.SiteInfo(2).LAN.Addr().Next() // placeholder, replaced below
	for _, n := range lab.Topology() {
		if n.Name == "s2host" {
			s2host = n.Ports[0].Addr.Addr()
		}
	}

	for _, size := range []int{56, 1400} {
		t.Run("ping "+strconv.Itoa(size), func(t *testing.T) {
			res, err := lt.l.Probe(ctx, lab.ProbeOptions{From: "s1host", To: s2host, ICMP: true, Size: size, Interval: 10 * time.Millisecond, Duration: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if res.Received == 0 || res.Lost > 0 {
				t.Fatalf("sent %d received %d lost %d", res.Sent, res.Received, res.Lost)
			}
			t.Logf("rtt min/avg/max %.3f/%.3f/%.3f ms", res.RTTMinMS, res.RTTAvgMS, res.RTTMaxMS)
		})
	}

	t.Run("capture on inet", func(t *testing.T) {
		inet, _ := lt.l.NS("inet")
		capt := startCapture(t, inet, "wan1")
		marker := bytes.Repeat([]byte("HAVPN-CLEAR-MARKER-"), 40)
		s1host, _ := lt.l.NS("s1host")
		var reply []byte
		err := netnsutil.Do(s1host, func() error {
			c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: s2host.AsSlice(), Port: lab.DefaultEchoPort})
			if err != nil {
				return err
			}
			defer c.Close()
			for range 5 {
				if _, err := c.Write(marker); err != nil {
					return err
				}
				c.SetReadDeadline(time.Now().Add(time.Second))
				b := make([]byte, 2000)
				n, err := c.Read(b)
				if err == nil {
					reply = b[:n]
					return nil
				}
			}
			return errors.New("no echo reply")
		})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(reply, marker) {
			t.Fatal("echo reply differs")
		}
		time.Sleep(100 * time.Millisecond)
		pkts := capt.stop()
		esp := 0
		for _, p := range pkts {
			if bytes.Contains(p, []byte("HAVPN-CLEAR-MARKER")) {
				t.Fatal("the payload is visible in clear on inet")
			}
			if len(p) < 20 || p[0]>>4 != 4 {
				continue // ARP and the like
			}
			src, dst := netip.AddrFrom4([4]byte(p[12:16])), netip.AddrFrom4([4]byte(p[16:20]))
			between := (src == lt.c1.Local && dst == lt.c2.Local) || (src == lt.c2.Local && dst == lt.c1.Local)
			if !between {
				continue
			}
			ihl := int(p[0]&0xf) * 4
			if p[9] != unix.IPPROTO_UDP || len(p) < ihl+8 {
				t.Fatalf("non-UDP packet between the gateways: proto %d", p[9])
			}
			sp, dp := int(p[ihl])<<8|int(p[ihl+1]), int(p[ihl+2])<<8|int(p[ihl+3])
			if sp != 4500 || dp != 4500 {
				t.Fatalf("UDP %d -> %d between the gateways", sp, dp)
			}
			esp++
		}
		if esp == 0 {
			t.Fatalf("no UDP 4500 packet captured among %d", len(pkts))
		}
		t.Logf("%d packets captured, %d UDP 4500 between the gateways, no marker", len(pkts), esp)
	})

	t.Run("DF over the tunnel MTU gets ICMP", func(t *testing.T) {
		s1host, _ := lt.l.NS("s1host")
		err := netnsutil.Do(s1host, func() error {
			c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: s2host.AsSlice(), Port: lab.DefaultEchoPort})
			if err != nil {
				return err
			}
			defer c.Close()
			rc, _ := c.SyscallConn()
			var serr error
			rc.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DO)
			})
			if serr != nil {
				return serr
			}
			big := make([]byte, 1472) // 1500-byte IP packet with DF
			deadline := time.Now().Add(5 * time.Second)
			for time.Now().Before(deadline) {
				if _, err := c.Write(big); err != nil && !errors.Is(err, unix.EMSGSIZE) {
					return err
				}
				var mtu int
				rc.Control(func(fd uintptr) { mtu, serr = unix.GetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MTU) })
				if serr == nil && mtu == lt.c1.MTU {
					return nil
				}
				time.Sleep(50 * time.Millisecond)
			}
			return errors.New("path MTU never learned")
		})
		if err != nil {
			t.Fatal(err)
		}
	})

	t.Run("keepalives keep an idle tunnel up", func(t *testing.T) {
		time.Sleep(time.Second) // twice the dead interval without data
		for _, m := range []*tunnel.Manager{lt.m1, lt.m2} {
			st := m.Status()[0]
			if st.State != "up" || st.KeepalivesReceived < 5 {
				t.Errorf("%s: %s after 1 s idle, %d keepalives received", st.Name, st.State, st.KeepalivesReceived)
			}
		}
	})

	t.Run("counters", func(t *testing.T) {
		for _, m := range []*tunnel.Manager{lt.m1, lt.m2} {
			st := m.Status()[0]
			t.Logf("%s: tx %d rx %d keepalives sent %d received %d", st.Name, st.TxPackets, st.RxPackets, st.KeepalivesSent, st.KeepalivesReceived)
			if st.State != "up" || st.TxPackets == 0 || st.RxPackets == 0 {
				t.Errorf("%s: %s tx %d rx %d", st.Name, st.State, st.TxPackets, st.RxPackets)
			}
			for r, n := range st.DropsIn {
				if n != 0 {
					t.Errorf("%s: in drops %s = %d", st.Name, r, n)
				}
			}
		}
	})
}
