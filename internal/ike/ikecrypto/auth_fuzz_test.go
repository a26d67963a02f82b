package ikecrypto

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"testing"
)

// FuzzVerify feeds arbitrary AUTH data (peer-controlled) to Verify: it
// must never panic and never accept data that is not a real signature.
func FuzzVerify(f *testing.F) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 1024)
	octets := []byte("octets")
	for _, s := range [][]byte{
		func() []byte { d, _ := Sign(priv, octets, SignatureHashes(), SignOptions{}, rand.Reader); return d }(),
		func() []byte { d, _ := Sign(rk, octets, SignatureHashes(), SignOptions{}, rand.Reader); return d }(),
		{7, 0x30, 5, 6, 3, 0x2b, 0x65, 0x70},
		{},
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, k := range []any{pub, rk.Public()} {
			if err := Verify(k, data, []byte("other octets")); err == nil {
				t.Fatalf("accepted %x", data)
			}
		}
	})
}

// FuzzSKOpen feeds arbitrary SK payload data to Open: no panic, and
// nothing authenticates without the key.
func FuzzSKOpen(f *testing.F) {
	gcm, _ := NewSKCipher(20, bytes.Repeat([]byte{1}, 20), 0, nil)
	cbc, _ := NewSKCipher(12, bytes.Repeat([]byte{1}, 16), 12, bytes.Repeat([]byte{2}, 32))
	prefix := []byte("prefix")
	for _, c := range []SKCipher{gcm, cbc} {
		out, _ := c.Seal(append([]byte(nil), prefix...), []byte("inner payloads"), rand.Reader)
		f.Add(out[len(prefix):])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, c := range []SKCipher{gcm, cbc} {
			if inner, err := c.Open(prefix, data); err == nil && !bytes.Equal(inner, []byte("inner payloads")) {
				t.Fatalf("forged SK payload accepted: %x", data)
			}
		}
	})
}
