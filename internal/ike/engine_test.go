package ike

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/havpn/havpn/internal/ike/wire"
)

// recInstaller records what an Engine asks of the dataplane.
type recInstaller struct {
	installed map[uint32]Child // by inbound SPI, removed on RemoveChild
	active    uint32           // outbound SPI in use
	log       []string
}

func newRecInstaller() *recInstaller { return &recInstaller{installed: map[uint32]Child{}} }

func (r *recInstaller) InstallChild(c Child) error {
	r.installed[c.In.SPI] = c
	if c.Activate {
		r.active = c.Out.SPI
	}
	r.log = append(r.log, fmt.Sprintf("install %08x/%08x active=%v", c.In.SPI, c.Out.SPI, c.Activate))
	return nil
}

func (r *recInstaller) ActivateOutbound(_ string, out uint32) error {
	r.active = out
	r.log = append(r.log, fmt.Sprintf("activate %08x", out))
	return nil
}

func (r *recInstaller) RemoveChild(_ string, in, out uint32) error {
	delete(r.installed, in)
	if r.active == out {
		r.active = 0
	}
	r.log = append(r.log, fmt.Sprintf("remove %08x/%08x", in, out))
	return nil
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

func testLogger(t testing.TB, node string) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", node)
}

type datagram struct {
	data     []byte
	from, to netip.AddrPort
}

// testNet connects engines by address; drop decides per datagram.
type testNet struct {
	t       testing.TB
	now     time.Time
	engines map[netip.Addr]*Engine
	queue   []datagram
	drop    func(d datagram) bool
	nat     func(d datagram) datagram // rewrites addresses on the way (a NAT), after drop
	sent    []datagram
	maxLen  int
}

func (n *testNet) send(from netip.Addr) func([]byte, netip.AddrPort, netip.AddrPort) {
	return func(b []byte, local, remote netip.AddrPort) {
		if local.Addr() != from {
			n.t.Errorf("engine %s sent from %s", from, local)
		}
		d := datagram{bytes.Clone(b), local, remote}
		n.sent = append(n.sent, d)
		if len(b) > n.maxLen {
			n.maxLen = len(b)
		}
		n.queue = append(n.queue, d)
	}
}

// run delivers datagrams until none is left (bounded).
func (n *testNet) run() {
	for i := 0; len(n.queue) > 0; i++ {
		if i > 10000 {
			n.t.Fatal("message storm")
		}
		d := n.queue[0]
		n.queue = n.queue[1:]
		if n.drop != nil && n.drop(d) {
			continue
		}
		if n.nat != nil {
			d = n.nat(d)
		}
		if e := n.engines[d.to.Addr()]; e != nil {
			e.HandlePacket(n.now, d.data, d.to, d.from)
		}
	}
}

// advance moves the clock in steps, ticking all engines and delivering.
func (n *testNet) advance(d, step time.Duration) {
	end := n.now.Add(d)
	for n.now.Before(end) {
		for _, e := range n.engines {
			e.Tick(n.now)
		}
		n.run()
		n.now = n.now.Add(step)
	}
	for _, e := range n.engines {
		e.Tick(n.now)
	}
	n.run()
}

var (
	addrA = netip.MustParseAddr("198.51.100.1")
	addrB = netip.MustParseAddr("203.0.113.1")
)

type side struct {
	e   *Engine
	ins *recInstaller
}

func pskConfig(local, remote netip.Addr, localID, remoteID string, initiator bool) Config {
	return Config{
		LocalID: mustID(localID),
		PSK:     []byte("test-psk-0123456789abcdef"),
		DPD:     10 * time.Second,
		Peers:   []Peer{{Name: "tun0", Local: local, Remote: remote, RemoteID: mustID(remoteID), Initiator: initiator}},
	}
}

func mustID(s string) Identity {
	id, err := ParseIdentity(s)
	if err != nil {
		panic(err)
	}
	return id
}

func newTestNet(t testing.TB, ca, cb Config) (*testNet, side, side) {
	t.Helper()
	n := &testNet{t: t, now: time.Unix(1_800_000_000, 0), engines: map[netip.Addr]*Engine{}}
	mk := func(c Config, addr netip.Addr) side {
		ins := newRecInstaller()
		e, err := NewEngine(c, Deps{Send: n.send(addr), Installer: ins, Log: testLogger(t, addr.String())})
		if err != nil {
			t.Fatal(err)
		}
		n.engines[addr] = e
		return side{e, ins}
	}
	return n, mk(ca, addrA), mk(cb, addrB)
}

func defaultPair(t testing.TB) (*testNet, side, side) {
	return newTestNet(t, pskConfig(addrA, addrB, "@a.example.net", "@b.example.net", true),
		pskConfig(addrB, addrA, "@b.example.net", "@a.example.net", false))
}

// established checks that both sides have one established IKE SA and
// matching child SAs, and returns the SAs.
func established(t *testing.T, a, b side) (SAInfo, SAInfo) {
	t.Helper()
	sa, sb := a.e.SAs(), b.e.SAs()
	if len(sa) != 1 || len(sb) != 1 {
		t.Fatalf("want one IKE SA per side, got %d and %d:\n%+v\n%+v", len(sa), len(sb), sa, sb)
	}
	if sa[0].State != "ESTABLISHED" || sb[0].State != "ESTABLISHED" {
		t.Fatalf("states %s / %s", sa[0].State, sb[0].State)
	}
	if sa[0].SPIi != sb[0].SPIi || sa[0].SPIr != sb[0].SPIr {
		t.Fatalf("SPIs differ: %s/%s vs %s/%s", sa[0].SPIi, sa[0].SPIr, sb[0].SPIi, sb[0].SPIr)
	}
	checkChildren(t, a, b)
	return sa[0], sb[0]
}

// checkChildren checks that every child on one side has a mirror on the
// other: same SPIs crossed, same keys crossed.
func checkChildren(t *testing.T, a, b side) {
	t.Helper()
	if len(a.ins.installed) == 0 || len(a.ins.installed) != len(b.ins.installed) {
		t.Fatalf("installed children: %d vs %d\n%v\n%v", len(a.ins.installed), len(b.ins.installed), a.ins.log, b.ins.log)
	}
	for in, ca := range a.ins.installed {
		cb, ok := b.ins.installed[ca.Out.SPI]
		if !ok {
			t.Fatalf("A child in=%08x out=%08x has no partner on B", in, ca.Out.SPI)
		}
		if cb.Out.SPI != in || !bytes.Equal(ca.In.Key, cb.Out.Key) || !bytes.Equal(ca.Out.Key, cb.In.Key) || ca.In.Cipher != cb.Out.Cipher {
			t.Fatalf("child keys differ:\nA %+v\nB %+v", ca, cb)
		}
		if len(ca.In.Key) != 36 && len(ca.In.Key) != 20 {
			t.Fatalf("key length %d", len(ca.In.Key))
		}
	}
	if a.ins.active == 0 || b.ins.active == 0 {
		t.Fatalf("no active outbound SA: A %08x B %08x", a.ins.active, b.ins.active)
	}
}

func TestEstablishPSK(t *testing.T) {
	n, a, b := defaultPair(t)
	n.advance(time.Second, 100*time.Millisecond)
	ia, ib := established(t, a, b)
	if !ia.Initiator || ib.Initiator {
		t.Errorf("roles: A initiator=%v B initiator=%v", ia.Initiator, ib.Initiator)
	}
	if ia.Proposal != "aes256gcm16-prfsha384-x25519" {
		t.Errorf("proposal %q", ia.Proposal)
	}
	if ia.Local != "198.51.100.1:4500" || ia.Remote != "203.0.113.1:4500" {
		t.Errorf("endpoints %s -> %s, want NAT-T ports", ia.Local, ia.Remote)
	}
	if len(ia.Children) != 1 || ia.Children[0].Mode != "gre" || ia.Children[0].LocalTS[0] != "198.51.100.1[47]" || ia.Children[0].RemoteTS[0] != "203.0.113.1[47]" {
		t.Errorf("child %+v", ia.Children)
	}
	if ib.RemoteID != "@a.example.net" || ib.Peer != "tun0" {
		t.Errorf("responder sees %+v", ib)
	}
	for _, c := range a.ins.installed {
		if c.Remote.String() != "203.0.113.1:4500" || c.Mode != ModeGRE || c.Out.Cipher != "aes-gcm-256" {
			t.Errorf("installed %+v", c)
		}
	}
}

func TestAuthenticationFailures(t *testing.T) {
	tests := []struct {
		name   string
		modify func(a, b *Config)
	}{
		{"wrong psk", func(a, b *Config) { b.PSK = []byte("another-psk-entirely") }},
		{"unknown initiator identity", func(a, b *Config) { a.LocalID = mustID("@mallory.example.net") }},
		{"responder identity differs", func(a, b *Config) { a.Peers[0].RemoteID = mustID("@c.example.net") }},
		{"no common ESP proposal", func(a, b *Config) {
			a.ESPProposals = []Proposal{mustProposal("aes128gcm16-x25519", false)}
			b.ESPProposals = []Proposal{mustProposal("chacha20poly1305-x25519", false)}
		}},
		{"no common IKE proposal", func(a, b *Config) {
			a.Proposals = []Proposal{mustProposal("aes128gcm16-prfsha256-x25519", true)}
			b.Proposals = []Proposal{mustProposal("aes256-sha512-prfsha512-ecp384", true)}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ca := pskConfig(addrA, addrB, "@a.example.net", "@b.example.net", true)
			cb := pskConfig(addrB, addrA, "@b.example.net", "@a.example.net", false)
			tc.modify(&ca, &cb)
			n, a, b := newTestNet(t, ca, cb)
			n.advance(3*time.Second, 100*time.Millisecond)
			if len(a.ins.installed) != 0 || len(b.ins.installed) != 0 {
				t.Fatalf("child installed despite failure: %v / %v", a.ins.log, b.ins.log)
			}
			for _, s := range append(a.e.SAs(), b.e.SAs()...) {
				if s.State == "ESTABLISHED" {
					t.Fatalf("SA established despite failure: %+v", s)
				}
			}
		})
	}
}

func mustProposal(s string, ike bool) Proposal {
	p, err := ParseProposal(s, ike)
	if err != nil {
		panic(err)
	}
	return p
}

func TestRetransmission(t *testing.T) {
	n, a, b := defaultPair(t)
	dropped := map[wire.ExchangeType]int{}
	n.drop = func(d datagram) bool {
		h, err := wire.DecodeHeader(stripMarker(d))
		if err != nil {
			return false
		}
		// lose the first IKE_SA_INIT response and the first IKE_AUTH request
		if (h.Exchange == wire.IKESAInit && h.IsResponse() || h.Exchange == wire.IKEAuth && !h.IsResponse()) && dropped[h.Exchange] == 0 {
			dropped[h.Exchange]++
			return true
		}
		return false
	}
	n.advance(5*time.Second, 100*time.Millisecond)
	established(t, a, b)
	if dropped[wire.IKESAInit] != 1 || dropped[wire.IKEAuth] != 1 {
		t.Fatalf("dropped %v", dropped)
	}
}

func stripMarker(d datagram) []byte {
	if d.to.Port() == 4500 && len(d.data) >= 4 {
		return d.data[4:]
	}
	return d.data
}

func TestLostResponseIsResent(t *testing.T) {
	// The IKE_AUTH response is lost: the retransmitted request must be
	// answered from the cache, not processed twice.
	n, a, b := defaultPair(t)
	lost := false
	n.drop = func(d datagram) bool {
		h, _ := wire.DecodeHeader(stripMarker(d))
		if h.Exchange == wire.IKEAuth && h.IsResponse() && !lost {
			lost = true
			return true
		}
		return false
	}
	n.advance(5*time.Second, 100*time.Millisecond)
	established(t, a, b)
	if !lost || len(b.ins.log) != 1 {
		t.Fatalf("lost=%v responder installs %v", lost, b.ins.log)
	}
}

func TestCookies(t *testing.T) {
	ca := pskConfig(addrA, addrB, "@a.example.net", "@b.example.net", true)
	cb := pskConfig(addrB, addrA, "@b.example.net", "@a.example.net", false)
	cb.CookieThreshold = -1 // always demand a cookie
	n, a, b := newTestNet(t, ca, cb)
	n.advance(time.Second, 100*time.Millisecond)
	established(t, a, b)
	cookies := 0
	for _, d := range n.sent {
		m, err := wire.Decode(stripMarker(d))
		if err == nil && m.Header.Exchange == wire.IKESAInit && wire.FindNotify(m.Payloads, wire.Cookie) != nil {
			cookies++
		}
	}
	if cookies != 2 { // the responder's demand and the initiator's retry
		t.Fatalf("%d IKE_SA_INIT messages with a cookie, want 2", cookies)
	}
}

func TestInvalidKERetry(t *testing.T) {
	ca := pskConfig(addrA, addrB, "@a.example.net", "@b.example.net", true)
	cb := pskConfig(addrB, addrA, "@b.example.net", "@a.example.net", false)
	ca.Proposals = []Proposal{mustProposal("aes128gcm16-prfsha256-x25519", true), mustProposal("aes256gcm16-prfsha384-ecp384", true)}
	cb.Proposals = []Proposal{mustProposal("aes256gcm16-prfsha384-ecp384", true)}
	n, a, b := newTestNet(t, ca, cb)
	n.advance(time.Second, 100*time.Millisecond)
	ia, _ := established(t, a, b)
	if ia.Proposal != "aes256gcm16-prfsha384-ecp384" {
		t.Fatalf("proposal %s", ia.Proposal)
	}
}

func TestCBCProposalAndChaCha(t *testing.T) {
	ca := pskConfig(addrA, addrB, "@a.example.net", "@b.example.net", true)
	cb := pskConfig(addrB, addrA, "@b.example.net", "@a.example.net", false)
	for _, c := range []*Config{&ca, &cb} {
		c.Proposals = []Proposal{mustProposal("aes256-sha512-prfsha512-ecp256", true)}
		c.ESPProposals = []Proposal{mustProposal("chacha20poly1305-ecp256-esn", false)}
	}
	n, a, b := newTestNet(t, ca, cb)
	n.advance(time.Second, 100*time.Millisecond)
	ia, _ := established(t, a, b)
	if ia.Proposal != "aes256-sha512-prfsha512-ecp256" || ia.Children[0].Cipher != "chacha20-poly1305" {
		t.Fatalf("negotiated %s / %s", ia.Proposal, ia.Children[0].Cipher)
	}
	for _, c := range a.ins.installed {
		if !c.Out.ESN || !c.In.ESN {
			t.Fatalf("ESN not negotiated: %+v", c)
		}
	}
}

func TestChildRekeyMakeBeforeBreak(t *testing.T) {
	ca := pskConfig(addrA, addrB, "@a.example.net", "@b.example.net", true)
	cb := pskConfig(addrB, addrA, "@b.example.net", "@a.example.net", false)
	for _, c := range []*Config{&ca, &cb} {
		c.ChildLifetime = 2 * time.Minute
		c.RekeyMargin = 30 * time.Second
		c.DPD = 0
	}
	n, a, b := newTestNet(t, ca, cb)
	n.advance(time.Second, 100*time.Millisecond)
	established(t, a, b)
	oldA, oldB := a.ins.active, b.ins.active
	// Watch the order of events on B: the new inbound SA must be there
	// before A sends with the new keys; B's outbound switches only when
	// A's Delete for the old child arrives.
	n.advance(2*time.Minute, time.Second)
	established(t, a, b)
	if a.ins.active == oldA || b.ins.active == oldB {
		t.Fatalf("outbound SAs not switched: A %08x->%08x B %08x->%08x", oldA, a.ins.active, oldB, b.ins.active)
	}
	for _, s := range [][]string{a.ins.log, b.ins.log} {
		installs, removes := 0, 0
		for _, l := range s {
			if l[:7] == "install" {
				installs++
			}
			if l[:6] == "remove" {
				removes++
			}
		}
		if installs < 2 || removes != installs-1 {
			t.Fatalf("rekey events: %v", s)
		}
	}
	// On the rekey responder, "activate" comes after "install ... active=false" and before "remove".
	var order []string
	for _, l := range b.ins.log {
		order = append(order, l[:6])
	}
	if !slices.Equal(order[:4], []string{"instal", "instal", "activa", "remove"}) {
		t.Fatalf("responder order %v", b.ins.log)
	}
}

func TestIKERekey(t *testing.T) {
	ca := pskConfig(addrA, addrB, "@a.example.net", "@b.example.net", true)
	cb := pskConfig(addrB, addrA, "@b.example.net", "@a.example.net", false)
	for _, c := range []*Config{&ca, &cb} {
		c.IKELifetime = 2 * time.Minute
		c.ChildLifetime = 10 * time.Minute
		c.RekeyMargin = 30 * time.Second
	}
	n, a, b := newTestNet(t, ca, cb)
	n.advance(time.Second, 100*time.Millisecond)
	before, _ := established(t, a, b)
	n.advance(100*time.Second, time.Second)
	after, _ := established(t, a, b)
	if after.SPIi == before.SPIi {
		t.Fatal("IKE SA not rekeyed")
	}
	if len(after.Children) != 1 || after.Children[0].InSPI != before.Children[0].InSPI {
		t.Fatalf("children not moved: %+v", after.Children)
	}
	// The new IKE SA works: a child rekey over it.
	n.advance(9*time.Minute, 5*time.Second)
	final, _ := established(t, a, b)
	if final.Children[0].InSPI == before.Children[0].InSPI {
		t.Fatal("child not rekeyed over the rekeyed IKE SA")
	}
}

func TestDPDDetectsDeadPeer(t *testing.T) {
	n, a, b := defaultPair(t)
	n.advance(time.Second, 100*time.Millisecond)
	established(t, a, b)
	dead := n.now
	delete(n.engines, addrB) // B vanishes
	var lostAt time.Time
	for i := 0; i < 300 && lostAt.IsZero(); i++ {
		n.advance(100*time.Millisecond, 100*time.Millisecond)
		if len(a.ins.installed) == 0 {
			lostAt = n.now
		}
	}
	if lostAt.IsZero() {
		t.Fatal("dead peer not detected")
	}
	// DPD 10s idle + 10s without an answer.
	if d := lostAt.Sub(dead); d > 21*time.Second {
		t.Fatalf("dead peer detected after %s, want <= 2*DPD", d)
	}
	// B comes back (restarted, no state): A re-initiates with INITIAL_CONTACT.
	cb := pskConfig(addrB, addrA, "@b.example.net", "@a.example.net", false)
	ins := newRecInstaller()
	e, err := NewEngine(cb, Deps{Send: n.send(addrB), Installer: ins})
	if err != nil {
		t.Fatal(err)
	}
	n.engines[addrB] = e
	n.advance(2*time.Minute, 500*time.Millisecond)
	established(t, a, side{e, ins})
}

func TestInitialContactReplacesStaleSA(t *testing.T) {
	n, a, b := defaultPair(t)
	n.advance(time.Second, 100*time.Millisecond)
	established(t, a, b)
	// A restarts without telling B (crash): new engine, same config.
	ca := pskConfig(addrA, addrB, "@a.example.net", "@b.example.net", true)
	ins := newRecInstaller()
	e, err := NewEngine(ca, Deps{Send: n.send(addrA), Installer: ins})
	if err != nil {
		t.Fatal(err)
	}
	n.engines[addrA] = e
	n.advance(time.Second, 100*time.Millisecond)
	established(t, side{e, ins}, b)
}

func TestShutdownDeletes(t *testing.T) {
	n, a, b := defaultPair(t)
	n.advance(time.Second, 100*time.Millisecond)
	established(t, a, b)
	a.e.Shutdown(n.now)
	n.run()
	if len(b.e.SAs()) != 0 || len(b.ins.installed) != 0 || len(a.ins.installed) != 0 {
		t.Fatalf("after shutdown: B SAs %+v, B children %d, A children %d", b.e.SAs(), len(b.ins.installed), len(a.ins.installed))
	}
}

func TestTunnelModeNarrowing(t *testing.T) {
	ca := pskConfig(addrA, addrB, "@a.example.net", "@b.example.net", true)
	cb := pskConfig(addrB, addrA, "@b.example.net", "@a.example.net", false)
	ca.Peers[0].Mode, cb.Peers[0].Mode = ModeTunnel, ModeTunnel
	ca.Peers[0].LocalTS = []netip.Prefix{netip.MustParsePrefix("192.168.1.0/24")}
	ca.Peers[0].RemoteTS = []netip.Prefix{netip.MustParsePrefix("192.168.0.0/16")} // wider than B allows
	cb.Peers[0].LocalTS = []netip.Prefix{netip.MustParsePrefix("192.168.2.0/24")}
	cb.Peers[0].RemoteTS = []netip.Prefix{netip.MustParsePrefix("192.168.1.0/24")}
	n, a, b := newTestNet(t, ca, cb)
	n.advance(time.Second, 100*time.Millisecond)
	ia, ib := established(t, a, b)
	if got := ia.Children[0]; got.Mode != "tunnel" || got.LocalTS[0] != "192.168.1.0-192.168.1.255" || got.RemoteTS[0] != "192.168.2.0-192.168.2.255" {
		t.Fatalf("initiator child %+v", got)
	}
	if got := ib.Children[0]; got.LocalTS[0] != "192.168.2.0-192.168.2.255" || got.RemoteTS[0] != "192.168.1.0-192.168.1.255" {
		t.Fatalf("responder child %+v", got)
	}
}

func TestModeMismatchRefused(t *testing.T) {
	ca := pskConfig(addrA, addrB, "@a.example.net", "@b.example.net", true)
	cb := pskConfig(addrB, addrA, "@b.example.net", "@a.example.net", false)
	ca.Peers[0].Mode = ModeTunnel
	ca.Peers[0].LocalTS = []netip.Prefix{netip.MustParsePrefix("192.168.1.0/24")}
	ca.Peers[0].RemoteTS = []netip.Prefix{netip.MustParsePrefix("192.168.2.0/24")}
	n, a, b := newTestNet(t, ca, cb)
	n.advance(time.Second, 100*time.Millisecond)
	if len(a.ins.installed)+len(b.ins.installed) != 0 {
		t.Fatalf("tunnel-mode initiator got a child from a GRE responder")
	}
}

func TestReplayedRequestDropped(t *testing.T) {
	n, a, b := defaultPair(t)
	n.advance(time.Second, 100*time.Millisecond)
	established(t, a, b)
	// Record A's next request (DPD) and replay it much later, out of window.
	var req datagram
	n.drop = func(d datagram) bool {
		h, _ := wire.DecodeHeader(stripMarker(d))
		if h.Exchange == wire.Informational && !h.IsResponse() && req.data == nil && d.from.Addr() == addrA {
			req = d
		}
		return false
	}
	n.advance(25*time.Second, time.Second) // a few DPD exchanges
	if req.data == nil {
		t.Fatal("no INFORMATIONAL request seen")
	}
	before := len(n.sent)
	b.e.HandlePacket(n.now, req.data, req.to, req.from)
	if len(n.sent) != before {
		t.Fatalf("an old request was answered")
	}
}

// TestChildRekeyDuringPeerIKERekey crosses our child rekey with the
// peer's IKE rekey: the new child must end up on the new IKE SA on both
// sides, the old one deleted.
func TestChildRekeyDuringPeerIKERekey(t *testing.T) {
	n, a, b := defaultPair(t)
	n.advance(time.Second, 100*time.Millisecond)
	before, _ := established(t, a, b)
	var saA, saB *ikeSA
	for _, s := range a.e.sasSnapshot() {
		saA = s
	}
	for _, s := range b.e.sasSnapshot() {
		saB = s
	}
	saA.rekeyChild(n.now, saA.children[0])
	saB.startIKERekey(n.now)
	n.run()
	n.advance(2*time.Second, 100*time.Millisecond)
	after, _ := established(t, a, b)
	if after.SPIi == before.SPIi || len(after.Children) != 1 || after.Children[0].InSPI == before.Children[0].InSPI {
		t.Fatalf("before %+v\nafter %+v", before, after)
	}
	if len(a.ins.installed) != 1 {
		t.Fatalf("A children %v", a.ins.log)
	}
}

func TestTerminateAndInitiate(t *testing.T) {
	n, a, b := defaultPair(t)
	n.advance(time.Second, 100*time.Millisecond)
	established(t, a, b)
	if err := a.e.Terminate(n.now, "tun0"); err != nil {
		t.Fatal(err)
	}
	n.advance(time.Minute, time.Second) // no automatic reconnect
	if len(a.e.SAs())+len(b.e.SAs())+len(a.ins.installed)+len(b.ins.installed) != 0 {
		t.Fatalf("after Terminate: %+v / %+v", a.e.SAs(), b.e.SAs())
	}
	if err := a.e.Initiate(n.now, "tun0"); err != nil {
		t.Fatal(err)
	}
	n.advance(time.Second, 100*time.Millisecond)
	established(t, a, b)
	if err := a.e.Terminate(n.now, "nope"); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("Terminate(unknown) = %v", err)
	}
}

func TestResponderPrefersSentKEGroup(t *testing.T) {
	// B prefers ECP-384 but also accepts X25519, which A sends a KE for:
	// no INVALID_KE_PAYLOAD round trip.
	ca := pskConfig(addrA, addrB, "@a.example.net", "@b.example.net", true)
	cb := pskConfig(addrB, addrA, "@b.example.net", "@a.example.net", false)
	ca.Proposals = []Proposal{mustProposal("aes128gcm16-prfsha256-x25519", true), mustProposal("aes256gcm16-prfsha384-ecp384", true)}
	cb.Proposals = []Proposal{mustProposal("aes256gcm16-prfsha384-ecp384", true), mustProposal("aes128gcm16-prfsha256-x25519", true)}
	n, a, b := newTestNet(t, ca, cb)
	n.advance(time.Second, 100*time.Millisecond)
	ia, _ := established(t, a, b)
	if ia.Proposal != "aes128gcm16-prfsha256-x25519" {
		t.Fatalf("proposal %s", ia.Proposal)
	}
	for _, d := range n.sent {
		if m, err := wire.Decode(stripMarker(d)); err == nil && wire.FindNotify(m.Payloads, wire.InvalidKEPayload) != nil {
			t.Fatal("INVALID_KE_PAYLOAD sent")
		}
	}
}
