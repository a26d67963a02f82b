package tunnel

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/havpn/havpn/internal/config"
	"github.com/havpn/havpn/internal/tunnel/esp"
	"github.com/havpn/havpn/internal/tunnel/gre"
	"github.com/havpn/havpn/internal/tunnel/tun"
	"github.com/havpn/havpn/internal/tunnel/tun/tuntest"
	"github.com/prometheus/client_golang/prometheus"
)

func u32(v uint32) *uint32 { return &v }

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		o    pairOpts
	}{
		{"gre v4 in v4 aes-gcm-256", pairOpts{}},
		{"gre key v4 in v4 aes-gcm-128", pairOpts{greKey: u32(42), cipher: config.CipherAESGCM128}},
		{"gre v6 in v4 chacha", pairOpts{inner6: true, cipher: config.CipherChaCha20Poly1305}},
		{"gre v4 in v6 esn", pairOpts{outer6: true, esn: true}},
		{"gre v6 in v6 one worker", pairOpts{outer6: true, inner6: true, workers: 1}},
		{"gre v4 in v4 four workers", pairOpts{workers: 4}},
		{"ip v4 in v4", pairOpts{mode: config.ModeIP}},
		{"ip v6 in v6", pairOpts{mode: config.ModeIP, inner6: true, outer6: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newPair(t, tc.o)
			src, dst := a.cfg.Address.Addr(), a.cfg.PeerAddress
			var sent [][]byte
			for i := range 300 {
				size := 60 + (i*37)%(a.cfg.MTU-60)
				var p []byte
				if tc.o.inner6 {
					p = ipv6(src, dst, size, byte(i))
				} else {
					p = ipv4(src, dst, size, true, byte(i))
				}
				sent = append(sent, p)
				a.dev.ToTunnel <- p
			}
			for i, want := range sent {
				got := recv(t, b.dev, 5*time.Second)
				if !bytes.Equal(got, want) {
					t.Fatalf("packet %d differs: got %d bytes, want %d", i, len(got), len(want))
				}
			}
			// And back.
			var back []byte
			if tc.o.inner6 {
				back = ipv6(dst, src, 100, 7)
			} else {
				back = ipv4(dst, src, 100, false, 7)
			}
			b.dev.ToTunnel <- back
			if got := recv(t, a.dev, 5*time.Second); !bytes.Equal(got, back) {
				t.Fatal("reverse packet differs")
			}
			// The counters are added after the TUN write returns.
			waitFor(t, "counters", func() bool {
				sa, sb := a.m.Status()[0], b.m.Status()[0]
				return sa.RxPackets == 1 && sb.RxPackets == 300 && sa.TxPackets == 300 && sb.TxPackets == 1
			})
			sa, sb := a.m.Status()[0], b.m.Status()[0]
			if sa.TxPackets != 300 || sb.RxPackets != 300 || sb.TxPackets != 1 || sa.RxPackets != 1 {
				t.Errorf("counters: a tx %d rx %d, b tx %d rx %d", sa.TxPackets, sa.RxPackets, sb.TxPackets, sb.RxPackets)
			}
			for _, s := range []Status{sa, sb} {
				for r, n := range s.DropsIn {
					if n != 0 {
						t.Errorf("%s: drop in %s = %d", s.Name, r, n)
					}
				}
				for r, n := range s.DropsOut {
					if n != 0 {
						t.Errorf("%s: drop out %s = %d", s.Name, r, n)
					}
				}
			}
		})
	}
}

// TestWire checks the bytes on the wire: ESP with the right SPI and next
// header, GRE with the key, and the inner packet nowhere in clear.
func TestWire(t *testing.T) {
	for _, tc := range []struct {
		name   string
		o      pairOpts
		nh     byte
		greKey bool
	}{
		{"gre key", pairOpts{greKey: u32(0xabcd)}, esp.NextHeaderGRE, true},
		{"gre", pairOpts{}, esp.NextHeaderGRE, false},
		{"ip", pairOpts{mode: config.ModeIP}, esp.NextHeaderIPv4, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newPair(t, tc.o)
			a.conn.mu.Lock()
			a.conn.rec = true
			a.conn.mu.Unlock()
			p := ipv4(a.cfg.Address.Addr(), a.cfg.PeerAddress, 200, false, 0x55)
			marker := p[100:140]
			a.dev.ToTunnel <- p
			recv(t, b.dev, 5*time.Second)
			a.conn.mu.Lock()
			sent := a.conn.sent
			a.conn.mu.Unlock()
			if len(sent) != 1 {
				t.Fatalf("%d datagrams sent", len(sent))
			}
			w := sent[0]
			if bytes.Contains(w, marker) {
				t.Fatal("inner payload visible on the wire")
			}
			if spi, _ := esp.SPIOf(w); spi != 0x1001 {
				t.Fatalf("spi %#x", spi)
			}
			// Open with the receiver's SA to look at the payload.
			in := (*b.m.inbound.Load())[0x1001].in
			st := in.Export()
			dec, _ := esp.NewInbound(st.Cipher, st.SPI, st.Key, st.ESN, 1024)
			pl, nh, err := dec.Open(append([]byte(nil), w...))
			if err != nil || nh != tc.nh {
				t.Fatalf("open: nh %d err %v", nh, err)
			}
			if tc.nh == esp.NextHeaderGRE {
				h, err := gre.Parse(pl)
				if err != nil || h.HasKey != tc.greKey || (tc.greKey && h.Key != 0xabcd) || h.Proto != gre.ProtoIPv4 {
					t.Fatalf("gre header %+v, %v", h, err)
				}
				pl = pl[h.Len:]
			}
			if !bytes.Equal(pl, p) {
				t.Fatal("inner packet differs")
			}
		})
	}
}

func TestPMTU(t *testing.T) {
	a, b := newPair(t, pairOpts{mtu: 1400})
	self := a.cfg.Address.Addr()
	host := netip.MustParseAddr("192.168.1.10")
	far := netip.MustParseAddr("192.168.2.10")

	t.Run("ipv4 df", func(t *testing.T) {
		p := ipv4(host, far, 1450, true, 1)
		a.dev.ToTunnel <- p
		icmp := recv(t, a.dev, 5*time.Second)
		if len(icmp) < 28+28 || icmp[9] != 1 || icmp[20] != 3 || icmp[21] != 4 {
			t.Fatalf("not ICMP frag needed: % x", icmp[:min(len(icmp), 28)])
		}
		if got := binary.BigEndian.Uint16(icmp[26:]); got != 1400 {
			t.Errorf("mtu %d, want 1400", got)
		}
		if netip.AddrFrom4([4]byte(icmp[12:16])) != self || netip.AddrFrom4([4]byte(icmp[16:20])) != host {
			t.Errorf("addresses %v -> %v", icmp[12:16], icmp[16:20])
		}
		if checksum(icmp[:20], 0) != 0 || checksum(icmp[20:], 0) != 0 {
			t.Error("bad checksum")
		}
		if int(binary.BigEndian.Uint16(icmp[2:])) != len(icmp) || len(icmp) > 576 {
			t.Errorf("length %d", len(icmp))
		}
		if !bytes.Equal(icmp[28:48], p[:20]) {
			t.Error("original header not quoted")
		}
	})
	t.Run("ipv4 no df goes through", func(t *testing.T) {
		p := ipv4(host, far, 1450, false, 2)
		a.dev.ToTunnel <- p
		if got := recv(t, b.dev, 5*time.Second); !bytes.Equal(got, p) {
			t.Fatal("differs")
		}
	})
	t.Run("ipv6", func(t *testing.T) {
		h6, f6 := netip.MustParseAddr("fd00:1::10"), netip.MustParseAddr("fd00:2::10")
		p := ipv6(h6, f6, 1450, 3)
		a.dev.ToTunnel <- p
		icmp := recv(t, a.dev, 5*time.Second)
		if len(icmp) < 48 || icmp[6] != 58 || icmp[40] != 2 || icmp[41] != 0 {
			t.Fatalf("not ICMPv6 packet too big: % x", icmp[:min(len(icmp), 48)])
		}
		if got := binary.BigEndian.Uint32(icmp[44:]); got != 1400 {
			t.Errorf("mtu %d", got)
		}
		if len(icmp) > 1280 || netip.AddrFrom16([16]byte(icmp[24:40])) != h6 || netip.AddrFrom16([16]byte(icmp[8:24])) != f6 {
			t.Errorf("len %d or addresses wrong", len(icmp))
		}
		var sum uint32
		for i := 8; i < 40; i += 2 {
			sum += uint32(icmp[i])<<8 | uint32(icmp[i+1])
		}
		sum += uint32(len(icmp)-40) + 58
		if checksum(icmp[40:], sum) != 0 {
			t.Error("bad ICMPv6 checksum")
		}
	})
	waitFor(t, "too_big counted", func() bool {
		st := a.m.Status()[0]
		return st.DropsOut["too_big"] == 2 && st.ICMPSent == 2
	})
	st := a.m.Status()[0]
	if st.DropsOut["too_big"] != 2 || st.ICMPSent != 2 {
		t.Errorf("too_big %d icmp %d, want 2, 2", st.DropsOut["too_big"], st.ICMPSent)
	}
}

func TestICMPLimiter(t *testing.T) {
	var l icmpLimiter
	now := time.Unix(1000, 0)
	n := 0
	for range 1000 {
		if l.allow(now) {
			n++
		}
	}
	if n != icmpRate {
		t.Fatalf("%d allowed at once, want %d", n, icmpRate)
	}
	if !l.allow(now.Add(20 * time.Millisecond)) {
		t.Fatal("no token after 20 ms")
	}
}

// TestDrops sends the receiver one packet per drop reason.
func TestDrops(t *testing.T) {
	var ikeGot []byte
	ikeCh := make(chan struct{}, 1)
	a, b := newPair(t, pairOpts{greKey: u32(7), ike: func(pkt []byte, from, to netip.AddrPort) {
		ikeGot = append([]byte(nil), pkt...)
		ikeCh <- struct{}{}
	}})
	from := netip.AddrPortFrom(a.cfg.Local, 4500)
	stranger := netip.MustParseAddrPort("192.0.2.99:4500")
	st := (*b.m.inbound.Load())[0x1001].in.Export()
	// seal makes an ESP packet under the a->b SA with a separate Outbound
	// whose sequence numbers start far ahead of the tunnel's.
	raw, err := esp.NewOutboundFromState(esp.State{Cipher: st.Cipher, SPI: st.SPI, Key: st.Key, Seq: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	inner := ipv4(b.cfg.PeerAddress, b.cfg.Address.Addr(), 100, false, 9)
	seal := func(payload []byte, nh byte) []byte {
		buf := make([]byte, esp.HeaderLen+len(payload)+esp.MaxTrailer)
		copy(buf[esp.HeaderLen:], payload)
		n, err := raw.Seal(buf, len(payload), nh)
		if err != nil {
			t.Fatal(err)
		}
		return buf[:n]
	}
	greHdr := func(key uint32, hasKey bool, proto uint16) []byte {
		h := make([]byte, gre.HeaderLen(hasKey))
		gre.Put(h, proto, key, hasKey)
		return h
	}
	cat := func(x ...[]byte) []byte { return bytes.Join(x, nil) }
	good := seal(cat(greHdr(7, true, gre.ProtoIPv4), inner), esp.NextHeaderGRE)
	tampered := append([]byte(nil), seal(cat(greHdr(7, true, gre.ProtoIPv4), inner), esp.NextHeaderGRE)...)
	tampered[30] ^= 1
	badIP := append([]byte(nil), inner...)
	binary.BigEndian.PutUint16(badIP[2:], 500)

	steps := []struct {
		name  string
		pkt   []byte
		from  netip.AddrPort
		check func(Status, SocketStatus) bool
	}{
		{"good", good, from, func(s Status, _ SocketStatus) bool { return s.RxPackets == 1 }},
		{"replay", good, from, func(s Status, _ SocketStatus) bool { return s.DropsIn["replay"] == 1 }},
		{"auth", tampered, from, func(s Status, _ SocketStatus) bool { return s.DropsIn["auth"] == 1 }},
		{"no sa from peer", cat([]byte{0, 0, 0x77, 0x77}, make([]byte, 40)), from, func(s Status, _ SocketStatus) bool { return s.DropsIn["no_sa"] == 1 }},
		{"no sa from stranger", cat([]byte{0, 0, 0x77, 0x77}, make([]byte, 40)), stranger, func(_ Status, k SocketStatus) bool { return k.NoSA == 1 }},
		{"short", cat([]byte{0, 0, 0x10, 0x01}, make([]byte, 10)), from, func(s Status, _ SocketStatus) bool { return s.DropsIn["short"] == 1 }},
		{"next header", seal(inner, esp.NextHeaderIPv4), from, func(s Status, _ SocketStatus) bool { return s.DropsIn["next_header"] == 1 }},
		{"gre version", seal(cat([]byte{0, 1, 8, 0}, inner), esp.NextHeaderGRE), from, func(s Status, _ SocketStatus) bool { return s.DropsIn["gre"] == 1 }},
		{"gre wrong key", seal(cat(greHdr(8, true, gre.ProtoIPv4), inner), esp.NextHeaderGRE), from, func(s Status, _ SocketStatus) bool { return s.DropsIn["gre_key"] == 1 }},
		{"gre no key", seal(cat(greHdr(0, false, gre.ProtoIPv4), inner), esp.NextHeaderGRE), from, func(s Status, _ SocketStatus) bool { return s.DropsIn["gre_key"] == 2 }},
		{"gre proto", seal(cat(greHdr(7, true, 0x6558), inner), esp.NextHeaderGRE), from, func(s Status, _ SocketStatus) bool { return s.DropsIn["gre_proto"] == 1 }},
		{"inner length", seal(cat(greHdr(7, true, gre.ProtoIPv4), badIP), esp.NextHeaderGRE), from, func(s Status, _ SocketStatus) bool { return s.DropsIn["inner"] == 1 }},
		{"inner version", seal(cat(greHdr(7, true, gre.ProtoIPv6), inner), esp.NextHeaderGRE), from, func(s Status, _ SocketStatus) bool { return s.DropsIn["inner"] == 2 }},
		{"keepalive esp", seal(nil, esp.NextHeaderNoNext), from, func(s Status, _ SocketStatus) bool { return s.KeepalivesReceived == 1 }},
		{"nat keepalive", []byte{0xff}, from, func(_ Status, k SocketStatus) bool { return k.NATKeepalives == 1 }},
		{"invalid", []byte{0, 0, 0, 5, 1, 2, 3, 4, 5}, from, func(_ Status, k SocketStatus) bool { return k.Invalid == 1 }},
		{"ike", cat([]byte{0, 0, 0, 0}, []byte("an IKE message of 28 bytes..")), from, func(_ Status, k SocketStatus) bool { return k.IKE == 1 }},
	}
	for _, s := range steps {
		b.conn.inject(s.pkt, s.from)
		waitFor(t, s.name, func() bool { return s.check(b.m.Status()[0], b.m.Sockets()[0]) })
	}
	<-ikeCh
	if string(ikeGot) != "\x00\x00\x00\x00an IKE message of 28 bytes.." {
		t.Errorf("IKE handler got %q", ikeGot)
	}
	if got := recv(t, b.dev, time.Second); !bytes.Equal(got, inner) {
		t.Error("good packet differs")
	}
	select {
	case p := <-b.dev.FromTunnel:
		t.Fatalf("a dropped packet reached the TUN: % x", p[:20])
	default:
	}
	t.Run("metrics", func(t *testing.T) {
		reg := prometheus.NewPedanticRegistry()
		if err := reg.Register(collector{m: b.m, d: newDescs()}); err != nil {
			t.Fatal(err)
		}
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		series := map[string]int{}
		var replay float64 = -1
		for _, mf := range mfs {
			series[mf.GetName()] = len(mf.GetMetric())
			if mf.GetName() != "havpn_tunnel_drops_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				l := map[string]string{}
				for _, lp := range m.GetLabel() {
					l[lp.GetName()] = lp.GetValue()
				}
				if l["tunnel"] == "gre-b" && l["dir"] == "rx" && l["reason"] == "replay" {
					replay = m.GetCounter().GetValue()
				}
			}
		}
		if replay != 1 {
			t.Errorf("replay drops metric = %v, want 1", replay)
		}
		want := map[string]int{
			"havpn_tunnel_drops_total":          int(numInReasons) + int(numOutReasons),
			"havpn_tunnel_packets_total":        2,
			"havpn_tunnel_up":                   1,
			"havpn_tunnel_sas":                  2,
			"havpn_tunnel_socket_packets_total": 8,
		}
		for name, n := range want {
			if series[name] != n {
				t.Errorf("%s: %d series, want %d", name, series[name], n)
			}
		}
	})
}

func TestNoOutboundSA(t *testing.T) {
	a, _ := newPair(t, pairOpts{noSAs: true})
	a.dev.ToTunnel <- ipv4(a.cfg.Address.Addr(), a.cfg.PeerAddress, 100, false, 0)
	waitFor(t, "no_sa", func() bool { return a.m.Status()[0].DropsOut["no_sa"] == 1 })
	a.dev.ToTunnel <- []byte{0x10, 1, 2}
	waitFor(t, "inner", func() bool { return a.m.Status()[0].DropsOut["no_sa"] == 2 })
}

func TestSAErrors(t *testing.T) {
	a, b := newPair(t, pairOpts{})
	c := esp.AESGCM256
	k := key(t, c)
	tests := []struct {
		name string
		err  error
		fn   func() error
	}{
		{"unknown tunnel", ErrUnknownTunnel, func() error { return a.m.InstallInbound("nope", SA{State: esp.State{Cipher: c, SPI: 0x3000, Key: k}}) }},
		{"spi in use", ErrSPIInUse, func() error { return a.m.InstallInbound("gre-a", SA{State: esp.State{Cipher: c, SPI: 0x2001, Key: k}}) }},
		{"bad key", esp.ErrKey, func() error {
			return a.m.InstallInbound("gre-a", SA{State: esp.State{Cipher: c, SPI: 0x3000, Key: k[:5]}})
		}},
		{"outbound before inbound", ErrNoInbound, func() error {
			return a.m.InstallOutbound("gre-a", SA{State: esp.State{Cipher: c, SPI: 0x3001, Key: k}, Pair: 0x4444}, true)
		}},
		{"outbound paired with other tunnel's inbound", ErrNoInbound, func() error {
			return b.m.InstallOutbound("gre-b", SA{State: esp.State{Cipher: c, SPI: 0x3001, Key: k}, Pair: 0x2001}, true)
		}},
		{"unknown local", ErrNoSocket, func() error {
			return a.m.InstallOutbound("gre-a", SA{State: esp.State{Cipher: c, SPI: 0x3001, Key: k}, Pair: 0x2001, Local: netip.MustParseAddrPort("10.9.9.9:4500")}, true)
		}},
		{"activate unknown", ErrNoSA, func() error { return a.m.ActivateOutbound("gre-a", 0x9999) }},
		{"remove unknown inbound", ErrNoSA, func() error { return a.m.RemoveInbound("gre-a", 0x9999) }},
		{"remove unknown outbound", ErrNoSA, func() error { return a.m.RemoveOutbound("gre-a", 0x9999) }},
		{"remove unknown child", ErrNoSA, func() error { return a.m.RemoveChild("gre-a", 0x9998, 0x9999) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.fn(); !errors.Is(err, tc.err) {
				t.Fatalf("got %v, want %v", err, tc.err)
			}
		})
	}
}

// TestInstallChild installs child SA pairs the way the IKE daemon does: a
// refused outbound SA takes its inbound SA back out.
func TestInstallChild(t *testing.T) {
	a, b := newPair(t, pairOpts{noSAs: true})
	c := esp.AESGCM256
	kab, kba := key(t, c), key(t, c)
	sa := func(spi uint32, k []byte) SA { return SA{State: esp.State{Cipher: c, SPI: spi, Key: k}} }
	spis := func(m *Manager) (in, out []uint32) {
		for _, s := range m.ExportSAs() {
			if s.Inbound {
				in = append(in, s.SA.SPI)
			} else {
				out = append(out, s.SA.SPI)
			}
		}
		return in, out
	}
	tests := []struct {
		name     string
		in, out  SA
		activate bool
		err      error
		wantIn   []uint32
		wantOut  []uint32
	}{
		{name: "outbound refused", in: sa(0x2001, kba), out: SA{State: sa(0x1001, kab).State, Local: netip.MustParseAddrPort("10.9.9.9:4500")},
			activate: true, err: ErrNoSocket},
		{name: "inbound refused", in: sa(0x2001, kba[:5]), out: sa(0x1001, kab), activate: true, err: esp.ErrKey},
		{name: "installed", in: sa(0x2001, kba), out: sa(0x1001, kab), activate: true, wantIn: []uint32{0x2001}, wantOut: []uint32{0x1001}},
		{name: "inbound spi in use", in: sa(0x2001, kba), out: sa(0x1009, kab), activate: true, err: ErrSPIInUse, wantIn: []uint32{0x2001}, wantOut: []uint32{0x1001}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := a.m.InstallChild("gre-a", tc.in, tc.out, tc.activate)
			if !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
				t.Fatalf("got %v, want %v", err, tc.err)
			}
			if in, out := spis(a.m); !slices.Equal(in, tc.wantIn) || !slices.Equal(out, tc.wantOut) {
				t.Fatalf("SAs in %x out %x, want in %x out %x", in, out, tc.wantIn, tc.wantOut)
			}
		})
	}
	// The other side as a rekey responder: inbound at once, outbound
	// inactive until ActivateOutbound; then packets pass both ways.
	if err := b.m.InstallChild("gre-b", sa(0x1001, kab), sa(0x2001, kba), false); err != nil {
		t.Fatal(err)
	}
	for _, s := range b.m.ExportSAs() {
		if !s.Inbound && (s.Active || s.SA.Pair != 0x1001) {
			t.Fatalf("inactive outbound expected, paired with 0x1001: %+v", s)
		}
	}
	if err := b.m.ActivateOutbound("gre-b", 0x2001); err != nil {
		t.Fatal(err)
	}
	a.dev.ToTunnel <- ipv4(a.cfg.Address.Addr(), a.cfg.PeerAddress, 100, false, 1)
	recv(t, b.dev, 5*time.Second)
	b.dev.ToTunnel <- ipv4(b.cfg.Address.Addr(), b.cfg.PeerAddress, 100, false, 2)
	recv(t, a.dev, 5*time.Second)
}

// TestRekey checks make-before-break: after a new pair is installed and
// activated, old packets still arrive during the grace period and are
// refused after it.
func TestRekey(t *testing.T) {
	var now atomicTime
	now.set(time.Unix(1_000_000, 0))
	a, b := newPair(t, pairOpts{now: now.get})
	c := esp.AESGCM256
	old := (*b.m.inbound.Load())[0x1001].in.Export()
	oldOut, _ := esp.NewOutboundFromState(esp.State{Cipher: c, SPI: 0x1001, Key: old.Key, Seq: 1 << 20})

	p := ipv4(a.cfg.Address.Addr(), a.cfg.PeerAddress, 100, false, 1)
	a.dev.ToTunnel <- p
	recv(t, b.dev, 5*time.Second)

	// Rekey: b installs its new inbound (from a), the responder-style
	// inactive outbound, a installs both and activates, then b activates.
	k1, k2 := key(t, c), key(t, c)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(b.m.InstallInbound("gre-b", SA{State: esp.State{Cipher: c, SPI: 0x1002, Key: k1}}))
	must(b.m.InstallOutbound("gre-b", SA{State: esp.State{Cipher: c, SPI: 0x2002, Key: k2}, Pair: 0x1002}, false))
	must(a.m.InstallInbound("gre-a", SA{State: esp.State{Cipher: c, SPI: 0x2002, Key: k2}}))
	must(a.m.InstallOutbound("gre-a", SA{State: esp.State{Cipher: c, SPI: 0x1002, Key: k1}, Pair: 0x2002}, true))
	must(b.m.ActivateOutbound("gre-b", 0x2002))

	a.dev.ToTunnel <- p
	recv(t, b.dev, 5*time.Second)
	if spi := a.m.tunnels[0].out.Load().out.SPI(); spi != 0x1002 {
		t.Fatalf("a sends with %#x", spi)
	}
	// b activated 0x2002 (paired with 0x1002): its old outbound 0x2001
	// was paired with 0x1001, which now retires.
	oldIn := func() *inSA { return (*b.m.inbound.Load())[0x1001] }
	if oldIn() == nil || oldIn().expires.Load() == 0 {
		t.Fatal("old inbound SA not retiring after the activation")
	}
	// A late packet under the old SA is still accepted.
	late := make([]byte, 200)
	inner := ipv4(a.cfg.Address.Addr(), a.cfg.PeerAddress, 100, false, 3)
	gre.Put(late[esp.HeaderLen:], gre.ProtoIPv4, 0, false)
	copy(late[esp.HeaderLen+4:], inner)
	n, _ := oldOut.Seal(late, 4+len(inner), esp.NextHeaderGRE)
	b.conn.inject(late[:n], netip.AddrPortFrom(a.cfg.Local, 4500))
	if got := recv(t, b.dev, 5*time.Second); !bytes.Equal(got, inner) {
		t.Fatal("late packet differs")
	}
	// After the grace period it is gone.
	now.set(now.get().Add(DefaultGrace + time.Second))
	b.m.expire(now.get())
	if oldIn() != nil {
		t.Fatal("old inbound SA still there after the grace period")
	}
	n, _ = oldOut.Seal(late, 4+len(inner), esp.NextHeaderGRE)
	b.conn.inject(late[:n], netip.AddrPortFrom(a.cfg.Local, 4500))
	waitFor(t, "no_sa", func() bool { return b.m.Status()[0].DropsIn["no_sa"] == 1 })

	// RemoveChild: outbound at once, inbound after the grace period.
	must(a.m.RemoveChild("gre-a", 0x2002, 0x1002))
	if a.m.tunnels[0].out.Load() != nil {
		t.Fatal("outbound still active after RemoveChild")
	}
	if in := (*a.m.inbound.Load())[0x2002]; in == nil || in.expires.Load() == 0 {
		t.Fatal("inbound not retiring after RemoveChild")
	}
}

func TestStateExport(t *testing.T) {
	a, b := newPair(t, pairOpts{})
	for range 5 {
		a.dev.ToTunnel <- ipv4(a.cfg.Address.Addr(), a.cfg.PeerAddress, 100, false, 1)
		recv(t, b.dev, 5*time.Second)
	}
	infos := a.m.ExportSAs()
	if len(infos) != 2 {
		t.Fatalf("%d SAs", len(infos))
	}
	in, out := infos[0], infos[1]
	if !in.Inbound || in.SA.SPI != 0x2001 || out.Inbound || !out.Active || out.SA.SPI != 0x1001 || out.SA.Pair != 0x2001 {
		t.Fatalf("export %+v", infos)
	}
	if out.SA.Seq != 5 || out.Stats.Packets != 5 || len(out.SA.Key) != 36 {
		t.Errorf("out seq %d packets %d key %d", out.SA.Seq, out.Stats.Packets, len(out.SA.Key))
	}
	// A standby installs the exported SAs with a sequence jump and goes on.
	c, _ := newPairNoRun(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.m.InstallInbound("gre-a", in.SA))
	out.SA.Seq += 1000
	must(c.m.InstallOutbound("gre-a", out.SA, true))
	got := c.m.ExportSAs()
	if got[1].SA.Seq != 1005 || got[0].SA.Seq != in.SA.Seq {
		t.Errorf("imported seqs %d %d", got[0].SA.Seq, got[1].SA.Seq)
	}
	st := a.m.Status()[0]
	if len(st.SAs) != 2 || st.SAs[1].Dir != "out" || !st.SAs[1].Active || st.SAs[1].Packets != 5 {
		t.Errorf("status SAs %+v", st.SAs)
	}
}

// newPairNoRun builds a single manager like side a, not running.
func newPairNoRun(t *testing.T) (*side, error) {
	fn := newFakeNet()
	cfg := tunnelCfg(pairOpts{}, true)
	s := &side{cfg: cfg}
	m, err := New([]config.Tunnel{cfg}, Options{
		CreateTUN: func(c tun.Config) (tun.Device, error) { s.dev = tuntest.New(c.Name, 128, 16); return s.dev, nil },
		ListenUDP: fn.listen,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	s.m = m
	return s, nil
}

func TestSetIKE(t *testing.T) {
	a, b := newPair(t, pairOpts{})
	from := netip.AddrPortFrom(a.cfg.Local, 4500)
	msg := append([]byte{0, 0, 0, 0}, bytes.Repeat([]byte{1}, 28)...)
	b.conn.inject(msg, from)
	waitFor(t, "ike dropped", func() bool { return b.m.Sockets()[0].IKEDropped == 1 })
	got := make(chan netip.AddrPort, 1)
	b.m.SetIKE(func(pkt []byte, from, to netip.AddrPort) {
		if bytes.Equal(pkt, msg) {
			got <- to
		}
	})
	b.conn.inject(msg, from)
	select {
	case to := <-got:
		if to != netip.AddrPortFrom(b.cfg.Local, 4500) {
			t.Errorf("to = %s", to)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("handler not called")
	}
	// SendUDP goes out of the shared socket (the shape of ike's SendNAT).
	if err := b.m.SendUDP(msg, netip.AddrPort{}, from); err != nil {
		t.Fatal(err)
	}
	if err := b.m.SendUDP(msg, netip.MustParseAddrPort("192.0.2.1:4500"), from); !errors.Is(err, ErrNoSocket) {
		t.Fatalf("SendUDP from an unknown local: %v", err)
	}
	waitFor(t, "IKE at a", func() bool { return a.m.Sockets()[0].IKEDropped == 1 })
}

// TestRegistry checks that a Manager's metrics leave the registry on Close,
// so that the next one (a config reload) can register.
func TestRegistry(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	for i := range 2 {
		fn := newFakeNet()
		cfg := tunnelCfg(pairOpts{}, true)
		m, err := New([]config.Tunnel{cfg}, Options{
			Registerer: reg,
			CreateTUN:  func(c tun.Config) (tun.Device, error) { return tuntest.New(c.Name, 1, 1), nil },
			ListenUDP:  fn.listen,
		})
		if err != nil {
			t.Fatalf("manager %d: %v", i, err)
		}
		mfs, err := reg.Gather()
		if err != nil || len(mfs) == 0 {
			t.Fatalf("gather: %d families, %v", len(mfs), err)
		}
		if i == 0 {
			if _, err := New([]config.Tunnel{cfg}, Options{
				Registerer: reg,
				CreateTUN:  func(c tun.Config) (tun.Device, error) { return tuntest.New(c.Name, 1, 1), nil },
				ListenUDP:  newFakeNet().listen,
			}); err == nil {
				t.Fatal("a second live manager registered on the same registry")
			}
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
