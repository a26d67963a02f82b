package ike

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/havpn/havpn/internal/config"
	"github.com/havpn/havpn/internal/ike/pki"
)

func TestFromConfig(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	ca, err := pki.NewCA("lab", "lab CA", pki.Ed25519, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	crt, key, err := ca.Issue(pki.Request{CommonName: "s1", DNSNames: []string{"site1.example.net"}, KeyType: pki.Ed25519}, now)
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(pki.WriteCert(filepath.Join(dir, "ca.pem"), ca.Cert))
	must(pki.WriteCert(filepath.Join(dir, "gw.pem"), crt))
	must(pki.WriteKey(filepath.Join(dir, "gw.key"), key))
	must(os.WriteFile(filepath.Join(dir, "psk"), []byte("a-long-pre-shared-key\n"), 0o600))
	must(os.WriteFile(filepath.Join(dir, "psk-open"), []byte("a-long-pre-shared-key\n"), 0o644))
	base := func() *config.Config {
		return &config.Config{
			IKE: &config.IKE{
				Port: 500, NATPort: 4500, LocalID: "@site1.example.net", Auth: config.AuthCert,
				CertFile: filepath.Join(dir, "gw.pem"), KeyFile: filepath.Join(dir, "gw.key"), CAFile: filepath.Join(dir, "ca.pem"),
				IKELifetime: config.Duration(4 * time.Hour), ChildLifetime: config.Duration(time.Hour),
				RekeyMargin: config.Duration(5 * time.Minute), DPD: config.Duration(10 * time.Second), Fragmentation: true,
			},
			Tunnels: []config.Tunnel{
				{Name: "gre0", Local: netip.MustParseAddr("198.51.100.1"), Remote: netip.MustParseAddr("203.0.113.1"), Mode: config.ModeGRE,
					Keying: config.KeyingIKE, IKE: &config.TunnelIKE{RemoteID: "@site2.example.net", Initiator: true}},
				{Name: "ip0", Local: netip.MustParseAddr("198.51.100.1"), Remote: netip.MustParseAddr("203.0.113.9"), Mode: config.ModeIP,
					Keying: config.KeyingIKE, IKE: &config.TunnelIKE{}},
				{Name: "man0", Keying: config.KeyingManual},
			},
		}
	}
	c, err := FromConfig(base())
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Peers) != 2 || c.Peers[0].Mode != ModeGRE || !c.Peers[0].Initiator || c.Peers[0].RemoteID.String() != "@site2.example.net" || c.Peers[0].ForceEncap {
		t.Fatalf("peers %+v", c.Peers)
	}
	if p := c.Peers[1]; p.Mode != ModeTunnel || p.RemoteID.String() != "203.0.113.9" || p.LocalTS[0].String() != "0.0.0.0/0" || !p.ForceEncap {
		t.Fatalf("ip peer %+v", p)
	}
	withTS := base()
	withTS.Tunnels[1].IKE = &config.TunnelIKE{
		LocalTS:  []netip.Prefix{netip.MustParsePrefix("192.168.1.0/24")},
		RemoteTS: []netip.Prefix{netip.MustParsePrefix("10.3.0.0/16"), netip.MustParsePrefix("10.4.0.0/16")},
	}
	if ct, err := FromConfig(withTS); err != nil || fmtPrefixes(ct.Peers[1].LocalTS) != "[192.168.1.0/24]" ||
		fmtPrefixes(ct.Peers[1].RemoteTS) != "[10.3.0.0/16 10.4.0.0/16]" {
		t.Fatalf("configured traffic selectors: %v %+v", err, ct.Peers)
	}
	if len(c.Certificates) != 1 || c.Key == nil || len(c.CAs) != 1 || c.DPD != 10*time.Second {
		t.Fatalf("credentials/timers %+v", c)
	}
	if _, err := NewEngine(c, Deps{Send: func([]byte, netip.AddrPort, netip.AddrPort) {}}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		modify func(c *config.Config)
		ok     bool
	}{
		{"psk", func(c *config.Config) { c.IKE.Auth, c.IKE.PSKFile = config.AuthPSK, filepath.Join(dir, "psk") }, true},
		{"psk readable by others", func(c *config.Config) { c.IKE.Auth, c.IKE.PSKFile = config.AuthPSK, filepath.Join(dir, "psk-open") }, false},
		{"weak proposal", func(c *config.Config) { c.IKE.Proposals = []string{"3des-sha1-modp1024"} }, false},
		{"identity not in certificate", func(c *config.Config) { c.IKE.LocalID = "@other.example.net" }, false},
		{"missing key", func(c *config.Config) { c.IKE.KeyFile = filepath.Join(dir, "nope") }, false},
		{"no ike section", func(c *config.Config) { c.IKE = nil }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base()
			tc.modify(cfg)
			got, err := FromConfig(cfg)
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				if string(got.PSK) != "a-long-pre-shared-key" {
					t.Fatalf("PSK %q", got.PSK)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if tc.name == "weak proposal" && !errors.Is(err, ErrProposal) {
				t.Fatalf("error %v, want ErrProposal", err)
			}
		})
	}
}

func fmtPrefixes(ps []netip.Prefix) string { return fmt.Sprint(ps) }
