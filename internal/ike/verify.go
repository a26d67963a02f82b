package ike

import (
	"crypto"
	"crypto/x509"
	"fmt"
	"time"
)

// CertVerifier validates a peer's certificate chain for an identity and
// returns the key that must have signed the AUTH payload.
type CertVerifier interface {
	// Verify checks chain (DER, end-entity first, then any intermediates
	// the peer sent) at time now and that the end-entity certificate
	// contains id. Errors wrap ErrCertificate.
	Verify(chain [][]byte, id Identity, now time.Time) (crypto.PublicKey, error)
}

// X509Verifier verifies against a CA bundle with crypto/x509.
type X509Verifier struct {
	Roots *x509.CertPool
}

// NewX509Verifier returns a verifier trusting cas.
func NewX509Verifier(cas []*x509.Certificate) *X509Verifier {
	p := x509.NewCertPool()
	for _, c := range cas {
		p.AddCert(c)
	}
	return &X509Verifier{Roots: p}
}

// Verify implements CertVerifier. Any extended key usage is accepted
// (strongSwan's pki sets serverAuth only, RFC 4945 §5.1.3.12 says IKE
// peers should not insist).
func (v *X509Verifier) Verify(chain [][]byte, id Identity, now time.Time) (crypto.PublicKey, error) {
	if len(chain) == 0 {
		return nil, fmt.Errorf("no certificate: %w", ErrCertificate)
	}
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		return nil, fmt.Errorf("parsing peer certificate: %w: %w", ErrCertificate, err)
	}
	inter := x509.NewCertPool()
	for _, der := range chain[1:] {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("parsing intermediate certificate: %w: %w", ErrCertificate, err)
		}
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots: v.Roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return nil, fmt.Errorf("verifying certificate %q: %w: %w", leaf.Subject, ErrCertificate, err)
	}
	if !certHasIdentity(leaf, id) {
		return nil, fmt.Errorf("certificate %q does not contain identity %s: %w", leaf.Subject, id, ErrCertificate)
	}
	return leaf.PublicKey, nil
}
