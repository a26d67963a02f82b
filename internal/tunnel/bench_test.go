package tunnel

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/havpn/havpn/internal/config"
	"github.com/havpn/havpn/internal/tunnel/esp"
	"github.com/havpn/havpn/internal/tunnel/tun"
	"github.com/havpn/havpn/internal/tunnel/tun/tuntest"
	"github.com/havpn/havpn/internal/tunnel/udp"
)

// loopPair is two managers over real UDP sockets on 127.0.0.1 and
// 127.0.0.2 with tuntest devices; b's device counts what it gets.
type loopPair struct {
	a, b         *Manager
	aDev, bDev   *tuntest.Device
	got, gotByte atomic.Uint64
	aCfg         config.Tunnel
}

func newLoopPair(tb testing.TB, cipher config.Cipher, workers int) *loopPair {
	tb.Helper()
	port := uint16(20000 + rand.IntN(40000))
	lp := &loopPair{}
	mk := func(local, remote string, name string, dev **tuntest.Device) *Manager {
		cfg := tunnelCfg(pairOpts{cipher: cipher}, name == "gre-a")
		cfg.Local, cfg.Remote, cfg.Port = netip.MustParseAddr(local), netip.MustParseAddr(remote), port
		if name == "gre-a" {
			lp.aCfg = cfg
		}
		m, err := New([]config.Tunnel{cfg}, Options{
			Workers: workers,
			CreateTUN: func(c tun.Config) (tun.Device, error) {
				*dev = tuntest.New(c.Name, 128, 1024)
				return *dev, nil
			},
		})
		if err != nil {
			tb.Skipf("loopback sockets: %v", err)
		}
		return m
	}
	lp.a = mk("127.0.0.1", "127.0.0.2", "gre-a", &lp.aDev)
	lp.b = mk("127.0.0.2", "127.0.0.1", "gre-b", &lp.bDev)
	lp.bDev.OnWrite = func(p []byte) {
		lp.got.Add(1)
		lp.gotByte.Add(uint64(len(p)))
	}
	c, _ := esp.ParseCipher(string(cipher))
	install(tb, &side{m: lp.a, cfg: lp.aCfg}, &side{m: lp.b, cfg: config.Tunnel{Name: "gre-b"}}, c, 0x1001, 0x2001, key(tb, c), key(tb, c), false)
	for _, m := range []*Manager{lp.a, lp.b} {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- m.Run(ctx) }()
		tb.Cleanup(func() {
			cancel()
			<-done
		})
	}
	return lp
}

// BenchmarkTunnel pushes 1400-byte packets through a whole tunnel: TUN
// read, GRE, ESP seal, UDP over loopback, ESP open, TUN write.
func BenchmarkTunnel(b *testing.B) {
	for _, c := range []config.Cipher{config.CipherAESGCM128, config.CipherAESGCM256, config.CipherChaCha20Poly1305} {
		b.Run(string(c), func(b *testing.B) {
			lp := newLoopPair(b, c, 0)
			pkt := ipv4(lp.aCfg.Address.Addr(), lp.aCfg.PeerAddress, 1400, true, 1)
			// Warm up (buffers, goroutines) before measuring.
			lp.aDev.ToTunnel <- pkt
			waitFor(b, "warm-up", func() bool { return lp.got.Load() == 1 })
			start := lp.got.Load()
			b.ReportAllocs()
			b.SetBytes(int64(len(pkt)))
			sent := 0
			for b.Loop() {
				lp.aDev.ToTunnel <- pkt
				sent++
			}
			deadline := time.Now().Add(2 * time.Second)
			for lp.got.Load()-start < uint64(sent) && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			b.ReportMetric(1-float64(lp.got.Load()-start)/float64(sent), "packet-loss")
		})
	}
}

// TestNoAllocs runs batches through the send and receive paths over real
// loopback sockets and checks that they do not allocate.
func TestNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	lp := newLoopPair(t, config.CipherAESGCM256, 0)
	pkt := ipv4(lp.aCfg.Address.Addr(), lp.aCfg.PeerAddress, 1400, true, 1)
	lp.aDev.ToTunnel <- pkt
	waitFor(t, "warm-up", func() bool { return lp.got.Load() == 1 })
	n := 0
	allocs := testing.AllocsPerRun(200, func() {
		for range 64 {
			lp.aDev.ToTunnel <- pkt
		}
		n += 64
		for lp.got.Load() < uint64(1+n) {
			time.Sleep(50 * time.Microsecond)
		}
	})
	if allocs > 0 {
		t.Fatalf("%v allocations per batch of 64 packets", allocs)
	}
	// udp is used for real here.
	var _ PacketConn = (*udp.Conn)(nil)
}
