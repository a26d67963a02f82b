package tunnel

import (
	"net/netip"
	"testing"

	"github.com/havpn/havpn/internal/config"
	"github.com/havpn/havpn/internal/tunnel/esp"
	"github.com/havpn/havpn/internal/tunnel/gre"
	"github.com/havpn/havpn/internal/tunnel/tun"
	"github.com/havpn/havpn/internal/tunnel/tun/tuntest"
)

// FuzzReceive feeds the inbound path (classification, SPI lookup, ESP
// open, GRE, inner checks, TUN write) with arbitrary datagrams. With seal
// set, data is first sealed as the payload of a valid ESP packet with next
// header nh, so that the fuzzer reaches what lies behind the ICV. It checks
// that nothing panics, that only well-formed IP packets reach the TUN, and
// that every ESP packet is accounted for exactly once.
func FuzzReceive(f *testing.F) {
	inner := ipv4(netip.MustParseAddr("172.16.0.2"), netip.MustParseAddr("172.16.0.1"), 60, false, 1)
	inner6 := ipv6(netip.MustParseAddr("fd00::2"), netip.MustParseAddr("fd00::1"), 80, 1)
	withGRE := func(proto uint16, key uint32, hasKey bool, p []byte) []byte {
		h := make([]byte, gre.HeaderLen(hasKey))
		gre.Put(h, proto, key, hasKey)
		return append(h, p...)
	}
	f.Add(withGRE(gre.ProtoIPv4, 5, true, inner), true, byte(esp.NextHeaderGRE), false)
	f.Add(withGRE(gre.ProtoIPv6, 5, true, inner6), true, byte(esp.NextHeaderGRE), false)
	f.Add(withGRE(gre.ProtoIPv4, 0, false, inner), true, byte(esp.NextHeaderGRE), false)
	f.Add(inner, true, byte(esp.NextHeaderIPv4), true)
	f.Add(inner6, true, byte(esp.NextHeaderIPv6), true)
	f.Add([]byte{}, true, byte(esp.NextHeaderNoNext), false)
	f.Add([]byte{0xff}, false, byte(0), false)
	f.Add(append([]byte{0, 0, 0, 0}, make([]byte, 28)...), false, byte(0), false)
	f.Add([]byte{0, 0, 0x10, 0x01, 0, 0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24}, false, byte(0), false)
	f.Add([]byte{0, 0, 0, 7, 1}, false, byte(0), true)

	f.Fuzz(func(t *testing.T, data []byte, seal bool, nh byte, modeIP bool) {
		var written int
		cfg := tunnelCfg(pairOpts{greKey: u32(5)}, false)
		if modeIP {
			cfg = tunnelCfg(pairOpts{mode: config.ModeIP}, false)
		}
		fn := newFakeNet()
		m, err := New([]config.Tunnel{cfg}, Options{
			Workers: 1,
			Batch:   4,
			IKE:     func(pkt []byte, from, to netip.AddrPort) {},
			CreateTUN: func(c tun.Config) (tun.Device, error) {
				d := tuntest.New(c.Name, 128, 1)
				d.OnWrite = func(p []byte) {
					written++
					if _, ok := checkIP(p, p[0]>>4); !ok {
						t.Fatalf("malformed packet written to the TUN: % x", p)
					}
				}
				return d, nil
			},
			ListenUDP: fn.listen,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		k := make([]byte, 36)
		for i := range k {
			k[i] = byte(i)
		}
		if err := m.InstallInbound(cfg.Name, SA{State: esp.State{Cipher: esp.AESGCM256, SPI: 0x1001, Key: k}}); err != nil {
			t.Fatal(err)
		}
		d := data
		if seal {
			o, _ := esp.NewOutbound(esp.AESGCM256, 0x1001, k, false)
			buf := make([]byte, esp.HeaderLen+len(data)+esp.MaxTrailer)
			copy(buf[esp.HeaderLen:], data)
			n, err := o.Seal(buf, len(data), nh)
			if err != nil {
				t.Fatal(err)
			}
			d = buf[:n]
		}
		r := newReceiver(m, m.socks[0])
		from := netip.AddrPortFrom(cfg.Remote, 4500)
		r.msgs[0].N = copy(r.msgs[0].Buf, d)
		r.msgs[0].Addr = from
		// The same datagram twice: the second is a replay when the first
		// was accepted. A third copy arrives as part of a GRO run.
		r.msgs[1].N = copy(r.msgs[1].Buf, d)
		r.msgs[1].Addr = from
		r.batch(2)

		tn := m.tunnels[0]
		s := m.socks[0]
		var drops uint64
		for i := range tn.c.in {
			drops += tn.c.in[i].Load()
		}
		accounted := drops + tn.c.rxPackets.Load() + tn.c.kaRecv.Load() + s.c.noSA.Load()
		if s.c.esp.Load() != accounted {
			t.Fatalf("%d ESP packets, %d accounted (drops %d rx %d ka %d nosa %d)", s.c.esp.Load(), accounted, drops, tn.c.rxPackets.Load(), tn.c.kaRecv.Load(), s.c.noSA.Load())
		}
		if uint64(written) != tn.c.rxPackets.Load() {
			t.Fatalf("%d written, %d counted", written, tn.c.rxPackets.Load())
		}
		if tn.c.rxPackets.Load() > 1 {
			t.Fatalf("a replayed packet was accepted")
		}
		total := s.c.esp.Load() + s.c.ike.Load() + s.c.natKeepalive.Load() + s.c.invalid.Load() + s.c.truncated.Load()
		if total != 2 && len(d) > 0 {
			t.Fatalf("%d datagrams classified, want 2", total)
		}
	})
}
