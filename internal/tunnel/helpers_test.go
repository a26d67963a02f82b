package tunnel

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/havpn/havpn/internal/config"
	"github.com/havpn/havpn/internal/tunnel/esp"
	"github.com/havpn/havpn/internal/tunnel/tun"
	"github.com/havpn/havpn/internal/tunnel/tun/tuntest"
	"github.com/havpn/havpn/internal/tunnel/udp"
)

// fakeNet is an in-memory UDP network between fakeConns.
type fakeNet struct {
	mu    sync.Mutex
	conns map[netip.AddrPort]*fakeConn
}

func newFakeNet() *fakeNet { return &fakeNet{conns: map[netip.AddrPort]*fakeConn{}} }

type dgram struct {
	b    []byte
	from netip.AddrPort
}

type fakeConn struct {
	n      *fakeNet
	local  netip.AddrPort
	ch     chan dgram
	once   sync.Once
	closed chan struct{}
	// sent records every datagram written (for captures), when set.
	mu   sync.Mutex
	sent [][]byte
	rec  bool
}

func (n *fakeNet) listen(local netip.AddrPort) (PacketConn, error) {
	c := &fakeConn{n: n, local: local, ch: make(chan dgram, 8192), closed: make(chan struct{})}
	n.mu.Lock()
	n.conns[local] = c
	n.mu.Unlock()
	return c, nil
}

func (n *fakeNet) conn(ap netip.AddrPort) *fakeConn {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.conns[ap]
}

func (c *fakeConn) LocalAddr() netip.AddrPort { return c.local }

func (c *fakeConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

func (c *fakeConn) inject(b []byte, from netip.AddrPort) {
	select {
	case c.ch <- dgram{b: append([]byte(nil), b...), from: from}:
	case <-c.closed:
	}
}

func (c *fakeConn) ReadBatch(msgs []udp.Message) (int, error) {
	var d dgram
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	case d = <-c.ch:
	}
	n := 0
	for {
		m := &msgs[n]
		m.N = copy(m.Buf, d.b)
		if len(d.b) > len(m.Buf) {
			m.N = 0
		}
		m.Addr, m.Segment = d.from, 0
		n++
		if n == len(msgs) {
			return n, nil
		}
		select {
		case d = <-c.ch:
		default:
			return n, nil
		}
	}
}

func (c *fakeConn) WriteBatch(msgs []udp.Message) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	dst := (*fakeConn)(nil)
	for i := range msgs {
		m := &msgs[i]
		m.Failed = false
		if dst == nil || dst.local != m.Addr {
			dst = c.n.conn(m.Addr)
		}
		seg := m.Segment
		if seg <= 0 {
			seg = len(m.Buf)
		}
		for lo := 0; lo < len(m.Buf); lo += seg {
			b := append([]byte(nil), m.Buf[lo:min(lo+seg, len(m.Buf))]...)
			c.mu.Lock()
			if c.rec {
				c.sent = append(c.sent, b)
			}
			c.mu.Unlock()
			if dst == nil {
				continue // like UDP: nobody listens
			}
			select {
			case dst.ch <- dgram{b: b, from: c.local}:
			case <-dst.closed:
			default: // queue full: lost
			}
		}
	}
	return len(msgs), nil
}

// side is one gateway of a test pair.
type side struct {
	m    *Manager
	dev  *tuntest.Device
	conn *fakeConn
	cfg  config.Tunnel
}

type pairOpts struct {
	mode      config.TunnelMode
	greKey    *uint32
	outer6    bool
	inner6    bool
	cipher    config.Cipher
	esn       bool
	keepalive config.TunnelKeepalive
	mtu       int
	workers   int
	now       func() time.Time
	ike       func(pkt []byte, from, to netip.AddrPort)
	noSAs     bool
}

func tunnelCfg(o pairOpts, a bool) config.Tunnel {
	la, ra := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("203.0.113.1")
	if o.outer6 {
		la, ra = netip.MustParseAddr("2001:db8:1::1"), netip.MustParseAddr("2001:db8:2::1")
	}
	addr, peer := netip.MustParsePrefix("172.16.0.1/30"), netip.MustParseAddr("172.16.0.2")
	if o.inner6 {
		addr, peer = netip.MustParsePrefix("fd00:16::1/64"), netip.MustParseAddr("fd00:16::2")
	}
	if !a {
		la, ra = ra, la
		addr, peer = netip.PrefixFrom(peer, addr.Bits()), addr.Addr()
	}
	c := config.Tunnel{
		Name: "gre-b", Local: la, Remote: ra, Port: 4500, Mode: o.mode, GREKey: o.greKey,
		Address: addr, PeerAddress: peer, WANMTU: 1500, MTU: o.mtu, Cipher: o.cipher,
		ReplayWindow: 1024, ESN: o.esn, Keepalive: o.keepalive, Keying: config.KeyingIKE,
	}
	if a {
		c.Name = "gre-a"
	}
	if c.Mode == "" {
		c.Mode = config.ModeGRE
	}
	if c.Cipher == "" {
		c.Cipher = config.CipherAESGCM256
	}
	if c.MTU == 0 {
		c.MTU = c.WANMTU - c.Overhead()
	}
	if c.Keepalive.Interval == 0 {
		c.Keepalive = config.TunnelKeepalive{Interval: config.Duration(time.Hour), Dead: config.Duration(2 * time.Hour)}
	}
	return c
}

func key(t testing.TB, c esp.Cipher) []byte {
	k := make([]byte, c.KeyLen())
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

// newPair builds two managers joined by a fake network, with one SA pair
// each way (SPIs 0x1001 a->b, 0x2001 b->a), running until the test ends.
func newPair(t testing.TB, o pairOpts) (a, b *side) {
	t.Helper()
	fn := newFakeNet()
	mk := func(isA bool) *side {
		cfg := tunnelCfg(o, isA)
		s := &side{cfg: cfg}
		opts := Options{
			Workers: o.workers,
			Now:     o.now,
			IKE:     o.ike,
			CreateTUN: func(c tun.Config) (tun.Device, error) {
				s.dev = tuntest.New(c.Name, 128, 4096)
				return s.dev, nil
			},
			ListenUDP: func(local netip.AddrPort) (PacketConn, error) {
				pc, err := fn.listen(local)
				s.conn = pc.(*fakeConn)
				return pc, err
			},
		}
		m, err := New([]config.Tunnel{cfg}, opts)
		if err != nil {
			t.Fatal(err)
		}
		s.m = m
		return s
	}
	a, b = mk(true), mk(false)
	if !o.noSAs {
		c, _ := esp.ParseCipher(string(a.cfg.Cipher))
		k1, k2 := key(t, c), key(t, c)
		install(t, a, b, c, 0x1001, 0x2001, k1, k2, o.esn)
	}
	for _, s := range []*side{a, b} {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.m.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	return a, b
}

// install adds the SA pair a->b (spiAB, kAB) and b->a (spiBA, kBA).
func install(t testing.TB, a, b *side, c esp.Cipher, spiAB, spiBA uint32, kAB, kBA []byte, esn bool) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(b.m.InstallInbound(b.cfg.Name, SA{State: esp.State{Cipher: c, SPI: spiAB, Key: kAB, ESN: esn}}))
	must(a.m.InstallInbound(a.cfg.Name, SA{State: esp.State{Cipher: c, SPI: spiBA, Key: kBA, ESN: esn}}))
	must(a.m.InstallOutbound(a.cfg.Name, SA{State: esp.State{Cipher: c, SPI: spiAB, Key: kAB, ESN: esn}, Pair: spiBA}, true))
	must(b.m.InstallOutbound(b.cfg.Name, SA{State: esp.State{Cipher: c, SPI: spiBA, Key: kBA, ESN: esn}, Pair: spiAB}, true))
}

// ipv4 returns an IPv4 UDP packet of total length size from src to dst.
func ipv4(src, dst netip.Addr, size int, df bool, fill byte) []byte {
	p := make([]byte, size)
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(size))
	if df {
		p[6] = 0x40
	}
	p[8], p[9] = 64, 17
	s4, d4 := src.As4(), dst.As4()
	copy(p[12:], s4[:])
	copy(p[16:], d4[:])
	binary.BigEndian.PutUint16(p[10:], checksum(p[:20], 0))
	binary.BigEndian.PutUint16(p[20:], 1234)
	binary.BigEndian.PutUint16(p[22:], 5678)
	binary.BigEndian.PutUint16(p[24:], uint16(size-20))
	for i := 28; i < size; i++ {
		p[i] = fill + byte(i)
	}
	return p
}

// ipv6 returns an IPv6 UDP packet of total length size.
func ipv6(src, dst netip.Addr, size int, fill byte) []byte {
	p := make([]byte, size)
	p[0] = 0x60
	binary.BigEndian.PutUint16(p[4:], uint16(size-40))
	p[6], p[7] = 17, 64
	s, d := src.As16(), dst.As16()
	copy(p[8:], s[:])
	copy(p[24:], d[:])
	binary.BigEndian.PutUint16(p[40:], 1234)
	binary.BigEndian.PutUint16(p[42:], 5678)
	binary.BigEndian.PutUint16(p[44:], uint16(size-40))
	for i := 48; i < size; i++ {
		p[i] = fill + byte(i)
	}
	return p
}

func recv(t testing.TB, d *tuntest.Device, timeout time.Duration) []byte {
	t.Helper()
	select {
	case p := <-d.FromTunnel:
		return p
	case <-time.After(timeout):
		t.Fatalf("nothing written to %s within %v", d.Name(), timeout)
		return nil
	}
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type atomicTime struct{ v atomic.Int64 }

func (a *atomicTime) set(t time.Time) { a.v.Store(t.UnixNano()) }
func (a *atomicTime) get() time.Time  { return time.Unix(0, a.v.Load()) }
