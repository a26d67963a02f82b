package ikecrypto

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"testing"

	"github.com/havpn/havpn/internal/ike/wire"
)

func TestKeyExchangeAgreement(t *testing.T) {
	for _, g := range []uint16{wire.DHECP256, wire.DHECP384, wire.DHCurve25519} {
		a, err := NewKeyExchange(g, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		b, err := NewKeyExchange(g, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if len(a.PublicKey()) != PublicKeyLen(g) {
			t.Errorf("group %d public length %d, want %d", g, len(a.PublicKey()), PublicKeyLen(g))
		}
		s1, err1 := a.SharedSecret(b.PublicKey())
		s2, err2 := b.SharedSecret(a.PublicKey())
		if err1 != nil || err2 != nil || !bytes.Equal(s1, s2) {
			t.Errorf("group %d: secrets differ (%v, %v)", g, err1, err2)
		}
	}
}

func TestKeyExchangeRejects(t *testing.T) {
	tests := []struct {
		name  string
		group uint16
		peer  []byte
	}{
		{"p256 short", wire.DHECP256, make([]byte, 63)},
		{"p256 not on curve", wire.DHECP256, bytes.Repeat([]byte{1}, 64)},
		{"p384 zeros", wire.DHECP384, make([]byte, 96)},
		{"x25519 long", wire.DHCurve25519, make([]byte, 33)},
		{"x25519 low order (all-zero output)", wire.DHCurve25519, make([]byte, 32)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, err := NewKeyExchange(tc.group, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := k.SharedSecret(tc.peer); !errors.Is(err, ErrPublicKey) {
				t.Fatalf("SharedSecret error %v, want ErrPublicKey", err)
			}
		})
	}
}

func TestWeakAlgorithmsUnsupported(t *testing.T) {
	for _, g := range []uint16{wire.DHModp1024, wire.DHModp2048, 5, 22} {
		if _, err := NewKeyExchange(g, rand.Reader); !errors.Is(err, ErrUnsupported) {
			t.Errorf("group %d: %v", g, err)
		}
	}
	for _, p := range []uint16{wire.PRFHMACMD5, wire.PRFHMACSHA1, 4} {
		if _, err := NewPRF(p); !errors.Is(err, ErrUnsupported) {
			t.Errorf("PRF %d: %v", p, err)
		}
	}
	if _, err := EncrKeyLen(wire.EncrDES3, 0); !errors.Is(err, ErrUnsupported) {
		t.Errorf("3DES: %v", err)
	}
	if _, err := EncrKeyLen(wire.EncrAESGCM8, 128); !errors.Is(err, ErrUnsupported) {
		t.Errorf("AES-GCM-8: %v", err)
	}
	if _, err := IntegKeyLen(wire.IntegHMACSHA196); !errors.Is(err, ErrUnsupported) {
		t.Errorf("HMAC-SHA1-96: %v", err)
	}
	if _, err := NewSKCipher(wire.EncrAESCBC, make([]byte, 16), wire.IntegHMACSHA196, make([]byte, 20)); !errors.Is(err, ErrUnsupported) {
		t.Errorf("CBC with SHA1: %v", err)
	}
}

func TestSKRoundTrip(t *testing.T) {
	tests := []struct {
		name   string
		encr   uint16
		keyLen int
		integ  uint16
	}{
		{"aes-gcm-128", wire.EncrAESGCM16, 20, 0},
		{"aes-gcm-256", wire.EncrAESGCM16, 36, 0},
		{"chacha20-poly1305", wire.EncrChaCha20Poly1305, 36, 0},
		{"aes-cbc-128 sha256", wire.EncrAESCBC, 16, wire.IntegHMACSHA256128},
		{"aes-cbc-256 sha384", wire.EncrAESCBC, 32, wire.IntegHMACSHA384192},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ik, _ := IntegKeyLen(tc.integ)
			c, err := NewSKCipher(tc.encr, bytes.Repeat([]byte{1}, tc.keyLen), tc.integ, bytes.Repeat([]byte{2}, ik))
			if err != nil {
				t.Fatal(err)
			}
			for n := 0; n < 40; n++ {
				inner := bytes.Repeat([]byte{byte(n)}, n)
				prefix := []byte("header-and-sk-generic-header")
				out, err := c.Seal(append([]byte(nil), prefix...), inner, rand.Reader)
				if err != nil {
					t.Fatal(err)
				}
				if got := len(out) - len(prefix); got != c.SealedLen(n) {
					t.Fatalf("n=%d: sealed %d bytes, SealedLen %d", n, got, c.SealedLen(n))
				}
				got, err := c.Open(prefix, out[len(prefix):])
				if err != nil || !bytes.Equal(got, inner) {
					t.Fatalf("n=%d: Open = %x, %v", n, got, err)
				}
			}
		})
	}
}

func TestSignVerify(t *testing.T) {
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	octets := []byte("the signed octets of RFC 7296 2.15")
	all := SignatureHashes()
	tests := []struct {
		name      string
		key       crypto.Signer
		opts      SignOptions
		hashes    []uint16
		wantAlgID string // hex of the AlgorithmIdentifier (RFC 7427 Appendix A)
		wantErr   error
	}{
		{"ed25519", edPriv, SignOptions{}, all, "300506032b6570", nil},
		{"ecdsa p256", p256, SignOptions{}, all, "300a06082a8648ce3d040302", nil},
		{"ecdsa p384", p384, SignOptions{}, all, "300a06082a8648ce3d040303", nil},
		{"rsa pkcs1", rk, SignOptions{RSAPKCS1: true}, all, "300d06092a864886f70d01010b0500", nil},
		{"rsa pss", rk, SignOptions{}, all, "", nil},
		{"ed25519 without identity hash", edPriv, SignOptions{}, []uint16{wire.HashSHA2256}, "", ErrUnsupported},
		{"p384 without sha384", p384, SignOptions{}, []uint16{wire.HashSHA2256}, "", ErrUnsupported},
		{"rsa with sha1 only", rk, SignOptions{}, []uint16{wire.HashSHA1}, "", ErrUnsupported},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data, err := Sign(tc.key, octets, tc.hashes, tc.opts, rand.Reader)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Sign error %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantAlgID != "" {
				if got := data[1 : 1+int(data[0])]; !bytes.Equal(got, mustHex(tc.wantAlgID)) {
					t.Errorf("AlgorithmIdentifier %x, want %s", got, tc.wantAlgID)
				}
			}
			if err := Verify(tc.key.Public(), data, octets); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if err := Verify(tc.key.Public(), data, append(octets, 0)); !errors.Is(err, ErrSignature) {
				t.Fatalf("Verify of other octets: %v", err)
			}
			// A signature must not verify with a key of another type.
			other := crypto.PublicKey(p256.Public())
			if _, ok := tc.key.Public().(*ecdsa.PublicKey); ok {
				other = edPriv.Public()
			}
			if err := Verify(other, data, octets); err == nil {
				t.Fatal("verified with a key of another type")
			}
		})
	}
}

func TestVerifyRefusesSHA1(t *testing.T) {
	// sha1WithRSAEncryption AlgorithmIdentifier
	alg := mustHex("300d06092a864886f70d0101050500")
	data := append([]byte{byte(len(alg))}, alg...)
	data = append(data, make([]byte, 256)...)
	rk, _ := rsa.GenerateKey(rand.Reader, 1024)
	if err := Verify(rk.Public(), data, []byte("x")); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("Verify sha1WithRSA: %v, want ErrUnsupported", err)
	}
}

func mustHex(s string) []byte {
	b := make([]byte, len(s)/2)
	for i := range b {
		var v byte
		for _, c := range s[2*i : 2*i+2] {
			v <<= 4
			switch {
			case c >= '0' && c <= '9':
				v |= byte(c - '0')
			case c >= 'a' && c <= 'f':
				v |= byte(c - 'a' + 10)
			}
		}
		b[i] = v
	}
	return b
}
