package ike

import (
	"net/netip"
	"testing"
	"time"

	"github.com/havpn/havpn/internal/ike/pki"
)

// BenchmarkIKESASetup measures complete IKE SA setups (IKE_SA_INIT +
// IKE_AUTH with one child SA) between two in-memory engines on one core:
// ns/op is the CPU of both ends of one setup.
func BenchmarkIKESASetup(b *testing.B) {
	certPair := func(kt pki.KeyType) (Config, Config) {
		pp := newTestPKI(b, kt)
		ca := pp.certConfig(b, kt, "gw-a", "a.example.net", addrA, "@a.example.net")
		cb := pp.certConfig(b, kt, "gw-b", "b.example.net", addrB, "@b.example.net")
		return ca, cb
	}
	cases := []struct {
		name  string
		pair  func() (Config, Config)
		props string
	}{
		{"psk-x25519", func() (Config, Config) {
			return pskConfig(addrA, addrB, "@a.example.net", "@b.example.net", true), pskConfig(addrB, addrA, "@b.example.net", "@a.example.net", false)
		}, "aes128gcm16-prfsha256-x25519"},
		{"psk-ecp384", func() (Config, Config) {
			return pskConfig(addrA, addrB, "@a.example.net", "@b.example.net", true), pskConfig(addrB, addrA, "@b.example.net", "@a.example.net", false)
		}, "aes256gcm16-prfsha384-ecp384"},
		{"ed25519-x25519", func() (Config, Config) { return certPair(pki.Ed25519) }, "aes128gcm16-prfsha256-x25519"},
		{"ecdsa-x25519", func() (Config, Config) { return certPair(pki.ECDSA) }, "aes128gcm16-prfsha256-x25519"},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			ca, cb := tc.pair()
			for _, c := range []*Config{&ca, &cb} {
				c.Proposals = []Proposal{mustProposal(tc.props, true)}
				c.ESPProposals = []Proposal{mustProposal("aes128gcm16", false)}
			}
			ca.Peers = []Peer{{Name: "tun0", Local: addrA, Remote: addrB, RemoteID: mustID("@b.example.net"), Initiator: true}}
			cb.Peers = []Peer{{Name: "tun0", Local: addrB, Remote: addrA, RemoteID: mustID("@a.example.net")}}
			n := &testNet{t: b, now: time.Unix(1_800_000_000, 0), engines: map[netip.Addr]*Engine{}}
			b.ReportAllocs()
			for b.Loop() {
				ia, ib := &countInstaller{}, &countInstaller{}
				ea, err := NewEngine(ca, Deps{Send: n.send(addrA), Installer: ia})
				if err != nil {
					b.Fatal(err)
				}
				eb, err := NewEngine(cb, Deps{Send: n.send(addrB), Installer: ib})
				if err != nil {
					b.Fatal(err)
				}
				n.engines[addrA], n.engines[addrB] = ea, eb
				n.sent = n.sent[:0]
				ea.Tick(n.now)
				n.run()
				if ia.n != 1 || ib.n != 1 {
					b.Fatalf("not established: %d/%d children", ia.n, ib.n)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "setups/s")
		})
	}
}

type countInstaller struct{ n int }

func (c *countInstaller) InstallChild(Child) error                 { c.n++; return nil }
func (c *countInstaller) ActivateOutbound(string, uint32) error    { return nil }
func (c *countInstaller) RemoveChild(string, uint32, uint32) error { c.n--; return nil }
