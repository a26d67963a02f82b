package ike

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/havpn/havpn/internal/ike/wire"
)

// masquerade returns a testNet NAT that hides inside behind public: the
// source of inside's datagrams becomes public with the port plus 30000,
// and datagrams to public go back to inside (nftables masquerade).
func masquerade(inside, public netip.Addr) func(d datagram) datagram {
	return func(d datagram) datagram {
		switch {
		case d.from.Addr() == inside:
			d.from = netip.AddrPortFrom(public, d.from.Port()+30000)
		case d.to.Addr() == public:
			d.to = netip.AddrPortFrom(inside, d.to.Port()-30000)
		}
		return d
	}
}

// natNotify returns the data of the first notification of type typ in an
// IKE_SA_INIT datagram, nil when there is none or it is something else.
func natNotify(t *testing.T, d datagram, typ wire.NotifyType) (wire.Header, []byte) {
	t.Helper()
	m, err := wire.Decode(stripMarker(d))
	if err != nil || m.Header.Exchange != wire.IKESAInit {
		return wire.Header{}, nil
	}
	if n := wire.FindNotify(m.Payloads, typ); n != nil {
		return m.Header, n.Data
	}
	return m.Header, nil
}

// TestNATDetection checks RFC 7296 §2.23 NAT detection between two
// engines: the hashes name the address and port each IKE_SA_INIT message
// is sent from (and the destination), so a direct path shows no NAT on
// either side, a masquerade shows on both, and forced encapsulation is a
// fake NAT only in the peer's eyes.
func TestNATDetection(t *testing.T) {
	natAddr := netip.MustParseAddr("192.0.2.77")
	tests := []struct {
		name           string
		nat            bool // A behind a masquerade
		forceA, forceB bool // Peer.ForceEncap
		wantA, wantB   [3]bool
		wantKeepalives bool // A sends NAT keepalives
	}{
		// [3]bool: NATLocal, NATRemote, NATFake
		{name: "direct path", wantA: [3]bool{false, false, false}, wantB: [3]bool{false, false, false}},
		{name: "initiator behind a NAT", nat: true, wantA: [3]bool{true, false, false}, wantB: [3]bool{false, true, false}, wantKeepalives: true},
		{name: "initiator forces encapsulation", forceA: true, wantA: [3]bool{false, false, true}, wantB: [3]bool{false, true, false}},
		{name: "responder forces encapsulation", forceB: true, wantA: [3]bool{false, true, false}, wantB: [3]bool{false, false, true}},
		{name: "responder forcing is moot behind a NAT", nat: true, forceB: true, wantA: [3]bool{true, false, false}, wantB: [3]bool{false, true, false}, wantKeepalives: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ca := pskConfig(addrA, addrB, "@a.example.net", "@b.example.net", true)
			cb := pskConfig(addrB, addrA, "@b.example.net", "@a.example.net", false)
			ca.NATKeepalive = 2 * time.Second
			ca.Peers[0].ForceEncap, cb.Peers[0].ForceEncap = tc.forceA, tc.forceB
			n, a, b := newTestNet(t, ca, cb)
			if tc.nat {
				n.nat = masquerade(addrA, natAddr)
			}
			n.advance(time.Second, 100*time.Millisecond)
			ia, ib := established(t, a, b)
			for _, c := range []struct {
				who  string
				got  SAInfo
				want [3]bool
			}{{"A", ia, tc.wantA}, {"B", ib, tc.wantB}} {
				if got := [3]bool{c.got.NATLocal, c.got.NATRemote, c.got.NATFake}; got != c.want {
					t.Errorf("%s: nat_local, nat_remote, nat_fake = %v, want %v", c.who, got, c.want)
				}
			}
			// The hashes themselves: source = where the message was sent
			// from, destination = where it went, before any NAT.
			var seen int
			for _, d := range n.sent {
				h, src := natNotify(t, d, wire.NATDetectionSourceIP)
				_, dst := natNotify(t, d, wire.NATDetectionDestinationIP)
				if src == nil || dst == nil {
					continue
				}
				seen++
				spir := h.SPIr
				if !h.IsResponse() {
					spir = 0
				}
				fake := tc.forceA && d.from.Addr() == addrA || tc.forceB && !tc.nat && d.from.Addr() == addrB
				if got := bytes.Equal(src, natHash(h.SPIi, spir, d.from)); got == fake {
					t.Errorf("IKE_SA_INIT from %s: source hash true=%v, want %v", d.from, got, !fake)
				}
				if !bytes.Equal(dst, natHash(h.SPIi, spir, d.to)) {
					t.Errorf("IKE_SA_INIT from %s: destination hash does not match %s", d.from, d.to)
				}
			}
			if seen != 2 {
				t.Fatalf("%d IKE_SA_INIT messages with NAT detection, want 2", seen)
			}
			before := len(n.sent)
			n.advance(5*time.Second, 500*time.Millisecond)
			var ka int
			for _, d := range n.sent[before:] {
				if len(d.data) == 1 && d.data[0] == 0xff {
					ka++
					if d.from.Addr() != addrA || d.from.Port() != 4500 {
						t.Errorf("keepalive from %s", d.from)
					}
				}
			}
			if (ka > 0) != tc.wantKeepalives {
				t.Errorf("%d NAT keepalives in 5s, want some: %v", ka, tc.wantKeepalives)
			}
			// An IKE rekey keeps what was detected.
			sas := a.e.sasSnapshot()
			sas[0].startIKERekey(n.now)
			n.advance(time.Second, 100*time.Millisecond)
			ra, rb := established(t, a, b)
			if ra.SPIi == ia.SPIi || [3]bool{ra.NATLocal, ra.NATRemote, ra.NATFake} != tc.wantA || [3]bool{rb.NATLocal, rb.NATRemote, rb.NATFake} != tc.wantB {
				t.Errorf("after IKE rekey: A %+v\nB %+v", ra, rb)
			}
		})
	}
}
