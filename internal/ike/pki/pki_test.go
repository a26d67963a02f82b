package pki

import (
	"crypto"
	"crypto/x509"
	"net/netip"
	"path/filepath"
	"testing"
	"time"
)

func TestIssueAndVerify(t *testing.T) {
	now := time.Now()
	for _, kt := range []KeyType{Ed25519, ECDSA, ECDSA384, RSA} {
		t.Run(string(kt), func(t *testing.T) {
			ca, err := NewCA("havpn lab", "havpn lab CA", kt, now, 24*time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			c, k, err := ca.Issue(Request{CommonName: "s1gw", DNSNames: []string{"site1.example.net"},
				IPs: []netip.Addr{netip.MustParseAddr("198.51.100.1")}, KeyType: kt}, now)
			if err != nil {
				t.Fatal(err)
			}
			roots := x509.NewCertPool()
			roots.AddCert(ca.Cert)
			if _, err := c.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, DNSName: "site1.example.net"}); err != nil {
				t.Fatalf("verify: %v", err)
			}
			if c.Subject.String() != "CN=s1gw,O=havpn lab" || len(c.IPAddresses) != 1 {
				t.Errorf("subject %s, IPs %v", c.Subject, c.IPAddresses)
			}
			dir := t.TempDir()
			if err := WriteCert(filepath.Join(dir, "c.pem"), ca.Cert); err != nil {
				t.Fatal(err)
			}
			if err := WriteKey(filepath.Join(dir, "k.pem"), ca.Key); err != nil {
				t.Fatal(err)
			}
			ca2, err := LoadCA(filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem"))
			if err != nil {
				t.Fatal(err)
			}
			if !ca2.Cert.Equal(ca.Cert) {
				t.Fatal("CA certificate changed in a round trip")
			}
			kp, err := KeyPEM(k)
			if err != nil {
				t.Fatal(err)
			}
			k2, err := ParseKey(kp)
			if err != nil {
				t.Fatal(err)
			}
			if !k2.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(k.Public()) {
				t.Fatal("key changed in a round trip")
			}
		})
	}
}

func TestParseKeyType(t *testing.T) {
	if _, err := ParseKeyType("dsa"); err == nil {
		t.Fatal("dsa accepted")
	}
	if k, err := ParseKeyType("ed25519"); err != nil || k != Ed25519 {
		t.Fatal(k, err)
	}
}
