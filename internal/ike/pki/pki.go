// Package pki makes the certificates havpn's IKE uses: a CA and gateway
// certificates (RSA, ECDSA or Ed25519 keys) with subjectAltNames for the
// gateway's FQDN identity and addresses. `havpn pki` and the lab use it;
// the output is PEM that strongSwan's swanctl/pki read as well (keys are
// PKCS#8).
//
// Functions are safe for concurrent use; they read randomness from
// crypto/rand.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"time"
)

// KeyType names a key algorithm.
type KeyType string

// Key types.
const (
	RSA      KeyType = "rsa"      // RSA 3072
	ECDSA    KeyType = "ecdsa"    // ECDSA P-256
	ECDSA384 KeyType = "ecdsa384" // ECDSA P-384
	Ed25519  KeyType = "ed25519"
)

// ErrKeyType means an unknown key type name.
var ErrKeyType = errors.New("unknown key type (rsa, ecdsa, ecdsa384, ed25519)")

// ParseKeyType parses "rsa", "ecdsa", "ecdsa384" or "ed25519".
func ParseKeyType(s string) (KeyType, error) {
	switch k := KeyType(s); k {
	case RSA, ECDSA, ECDSA384, Ed25519:
		return k, nil
	}
	return "", fmt.Errorf("key type %q: %w", s, ErrKeyType)
}

// GenerateKey makes a new private key of type kt.
func GenerateKey(kt KeyType) (crypto.Signer, error) {
	switch kt {
	case RSA:
		return rsa.GenerateKey(rand.Reader, 3072)
	case ECDSA:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case ECDSA384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case Ed25519:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}
	return nil, fmt.Errorf("generating key %q: %w", kt, ErrKeyType)
}

// CA is a certificate authority: its certificate and key.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

// NewCA makes a self-signed CA named "O=org, CN=cn" valid from now for
// lifetime.
func NewCA(org, cn string, kt KeyType, now time.Time, lifetime time.Duration) (*CA, error) {
	key, err := GenerateKey(kt)
	if err != nil {
		return nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{Organization: []string{org}, CommonName: cn},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(lifetime),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("creating CA certificate %q: %w", cn, err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: c, Key: key}, nil
}

// Request describes a gateway certificate.
type Request struct {
	// CommonName goes into the subject "O=<CA's organization>, CN=...".
	CommonName string
	// DNSNames and IPs become subjectAltNames (IKE identities @fqdn and IP
	// must be among them).
	DNSNames []string
	IPs      []netip.Addr
	// Key is the subject's key; nil generates one of KeyType.
	Key     crypto.Signer
	KeyType KeyType
	// Lifetime defaults to one year.
	Lifetime time.Duration
}

// Issue signs a gateway certificate for r at time now and returns it with
// its key.
func (ca *CA) Issue(r Request, now time.Time) (*x509.Certificate, crypto.Signer, error) {
	key := r.Key
	if key == nil {
		var err error
		if key, err = GenerateKey(r.KeyType); err != nil {
			return nil, nil, err
		}
	}
	lt := r.Lifetime
	if lt == 0 {
		lt = 365 * 24 * time.Hour
	}
	sn, err := serial()
	if err != nil {
		return nil, nil, err
	}
	ku := x509.KeyUsageDigitalSignature
	if _, ok := key.(*rsa.PrivateKey); ok {
		ku |= x509.KeyUsageKeyEncipherment
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{Organization: ca.Cert.Subject.Organization, CommonName: r.CommonName},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(lt),
		KeyUsage:     ku,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     r.DNSNames,
	}
	for _, ip := range r.IPs {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.IP(ip.Unmap().AsSlice()))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("issuing certificate %q: %w", r.CommonName, err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return c, key, nil
}

// CertPEM encodes a certificate as PEM.
func CertPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// KeyPEM encodes a private key as PKCS#8 PEM ("PRIVATE KEY").
func KeyPEM(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("encoding private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParseCerts decodes every CERTIFICATE block of PEM data.
func ParseCerts(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing certificate: %w", err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no certificate in PEM data")
	}
	return out, nil
}

// ParseKey decodes a PEM private key: PKCS#8, PKCS#1 RSA or SEC 1 EC.
func ParseKey(data []byte) (crypto.Signer, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("no private key in PEM data")
		}
		var k any
		var err error
		switch b.Type {
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(b.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("parsing %s: %w", b.Type, err)
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("%s holds a %T, not a signing key", b.Type, k)
		}
		return s, nil
	}
}

// WriteCert writes c as PEM to path (mode 0644).
func WriteCert(path string, c *x509.Certificate) error {
	if err := os.WriteFile(path, CertPEM(c), 0o644); err != nil {
		return fmt.Errorf("writing certificate %s: %w", path, err)
	}
	return nil
}

// WriteKey writes k as PKCS#8 PEM to path (mode 0600).
func WriteKey(path string, k crypto.Signer) error {
	b, err := KeyPEM(k)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("writing key %s: %w", path, err)
	}
	return nil
}

// LoadCA reads a CA certificate and key written by WriteCert/WriteKey.
func LoadCA(certPath, keyPath string) (*CA, error) {
	cb, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("reading CA certificate: %w", err)
	}
	certs, err := ParseCerts(cb)
	if err != nil {
		return nil, fmt.Errorf("CA certificate %s: %w", certPath, err)
	}
	kb, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("reading CA key: %w", err)
	}
	k, err := ParseKey(kb)
	if err != nil {
		return nil, fmt.Errorf("CA key %s: %w", keyPath, err)
	}
	return &CA{Cert: certs[0], Key: k}, nil
}
