package ike

import (
	"crypto"
	"crypto/x509"
	"net/netip"
	"testing"
	"time"

	"github.com/havpn/havpn/internal/ike/pki"
	"github.com/havpn/havpn/internal/ike/wire"
)

type testPKI struct {
	ca *pki.CA
}

func newTestPKI(t testing.TB, kt pki.KeyType) *testPKI {
	t.Helper()
	ca, err := pki.NewCA("havpn test", "havpn test CA", kt, time.Unix(1_800_000_000, 0), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return &testPKI{ca: ca}
}

// certConfig returns a certificate-authenticated config for one side.
func (p *testPKI) certConfig(t testing.TB, kt pki.KeyType, cn, fqdn string, addr netip.Addr, localID string) Config {
	t.Helper()
	c, k, err := p.ca.Issue(pki.Request{CommonName: cn, DNSNames: []string{fqdn}, IPs: []netip.Addr{addr}, KeyType: kt}, time.Unix(1_800_000_000, 0))
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Certificates: [][]byte{c.Raw}, Key: k, CAs: []*x509.Certificate{p.ca.Cert}, DPD: 10 * time.Second}
	if localID != "" {
		cfg.LocalID = mustID(localID)
	}
	return cfg
}

func TestEstablishCertificates(t *testing.T) {
	tests := []struct {
		name     string
		kt       pki.KeyType
		idA, idB string // local IDs; "" = certificate DN
		remoteA  string // A's expectation of B
		remoteB  string
		pkcs1    bool
	}{
		{"ed25519 fqdn", pki.Ed25519, "@a.example.net", "@b.example.net", "@b.example.net", "@a.example.net", false},
		{"ecdsa p256 ip", pki.ECDSA, "198.51.100.1", "203.0.113.1", "203.0.113.1", "198.51.100.1", false},
		{"ecdsa p384 dn", pki.ECDSA384, "", "", "O=havpn test, CN=gw-b", "O=havpn test, CN=gw-a", false},
		{"rsa pss", pki.RSA, "@a.example.net", "@b.example.net", "@b.example.net", "@a.example.net", false},
		{"rsa pkcs1", pki.RSA, "@a.example.net", "@b.example.net", "@b.example.net", "@a.example.net", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newTestPKI(t, tc.kt)
			ca := p.certConfig(t, tc.kt, "gw-a", "a.example.net", addrA, tc.idA)
			cb := p.certConfig(t, tc.kt, "gw-b", "b.example.net", addrB, tc.idB)
			ca.RSAPKCS1, cb.RSAPKCS1 = tc.pkcs1, tc.pkcs1
			ca.Peers = []Peer{{Name: "tun0", Local: addrA, Remote: addrB, RemoteID: mustID(tc.remoteA), Initiator: true}}
			cb.Peers = []Peer{{Name: "tun0", Local: addrB, Remote: addrA, RemoteID: mustID(tc.remoteB)}}
			n, a, b := newTestNet(t, ca, cb)
			n.advance(time.Second, 100*time.Millisecond)
			established(t, a, b)
		})
	}
}

func TestCertificateRefused(t *testing.T) {
	tests := []struct {
		name   string
		modify func(t *testing.T, a, b *Config)
	}{
		{"untrusted CA", func(t *testing.T, a, b *Config) {
			other := newTestPKI(t, pki.Ed25519)
			b.CAs = []*x509.Certificate{other.ca.Cert}
			b.Verifier = nil
		}},
		{"identity not in certificate", func(t *testing.T, a, b *Config) {
			// A claims an identity its certificate does not carry; bypass
			// the local check by setting the ID after validation would fail,
			// so use a verifier-level mismatch instead: B expects another name.
			b.Peers[0].RemoteID = mustID("@c.example.net")
		}},
		{"expired certificate", func(t *testing.T, a, b *Config) {
			b.Verifier = timeShift{b.Verifier, 48 * time.Hour}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newTestPKI(t, pki.Ed25519)
			ca := p.certConfig(t, pki.Ed25519, "gw-a", "a.example.net", addrA, "@a.example.net")
			cb := p.certConfig(t, pki.Ed25519, "gw-b", "b.example.net", addrB, "@b.example.net")
			ca.Peers = []Peer{{Name: "tun0", Local: addrA, Remote: addrB, RemoteID: mustID("@b.example.net"), Initiator: true}}
			cb.Peers = []Peer{{Name: "tun0", Local: addrB, Remote: addrA, RemoteID: mustID("@a.example.net")}}
			cb.Verifier = NewX509Verifier(cb.CAs)
			tc.modify(t, &ca, &cb)
			n, a, b := newTestNet(t, ca, cb)
			n.advance(2*time.Second, 100*time.Millisecond)
			if len(a.ins.installed)+len(b.ins.installed) != 0 {
				t.Fatal("child SA installed with a bad certificate")
			}
		})
	}
}

// timeShift verifies as if the clock were d later.
type timeShift struct {
	v CertVerifier
	d time.Duration
}

func (s timeShift) Verify(chain [][]byte, id Identity, now time.Time) (crypto.PublicKey, error) {
	return s.v.Verify(chain, id, now.Add(s.d))
}

func TestOwnCertificateMustCarryLocalID(t *testing.T) {
	p := newTestPKI(t, pki.Ed25519)
	c := p.certConfig(t, pki.Ed25519, "gw-a", "a.example.net", addrA, "@other.example.net")
	c.Peers = []Peer{{Name: "tun0", Local: addrA, Remote: addrB, RemoteID: mustID("@b.example.net")}}
	if _, err := NewEngine(c, Deps{Send: func([]byte, netip.AddrPort, netip.AddrPort) {}}); err == nil {
		t.Fatal("engine accepted a local ID its certificate does not prove")
	}
}

func TestFragmentation(t *testing.T) {
	p := newTestPKI(t, pki.RSA)
	ca := p.certConfig(t, pki.RSA, "gw-a", "a.example.net", addrA, "@a.example.net")
	cb := p.certConfig(t, pki.RSA, "gw-b", "b.example.net", addrB, "@b.example.net")
	// A chain of CA + leaf makes IKE_AUTH about 3 kB.
	ca.Certificates = append(ca.Certificates, p.ca.Cert.Raw)
	cb.Certificates = append(cb.Certificates, p.ca.Cert.Raw)
	for _, c := range []*Config{&ca, &cb} {
		c.Fragmentation = true
		c.FragmentSize = 576
	}
	ca.Peers = []Peer{{Name: "tun0", Local: addrA, Remote: addrB, RemoteID: mustID("@b.example.net"), Initiator: true}}
	cb.Peers = []Peer{{Name: "tun0", Local: addrB, Remote: addrA, RemoteID: mustID("@a.example.net")}}
	n, a, b := newTestNet(t, ca, cb)
	// Lose one fragment of the IKE_AUTH request once: the retransmission
	// must recover.
	lost := false
	frags := 0
	n.drop = func(d datagram) bool {
		m, err := wire.Decode(stripMarker(d))
		if err != nil || len(m.Payloads) == 0 {
			return false
		}
		if f, ok := m.Payloads[len(m.Payloads)-1].(*wire.Fragment); ok {
			frags++
			if f.Number == 2 && !lost {
				lost = true
				return true
			}
		}
		return false
	}
	n.advance(3*time.Second, 100*time.Millisecond)
	established(t, a, b)
	if frags < 6 || !lost {
		t.Fatalf("%d fragments seen, lost=%v", frags, lost)
	}
	// IP packet = UDP payload + 8 + 20 must fit 576 (IKE_SA_INIT is never
	// fragmented and is small).
	if n.maxLen+28 > 576 {
		t.Fatalf("largest datagram %d bytes exceeds the 576-byte path", n.maxLen)
	}
}
