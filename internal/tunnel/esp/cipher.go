package esp

import (
	"crypto/aes"
	"crypto/cipher"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
)

// Cipher is an ESP combined-mode (AEAD) transform.
type Cipher uint8

// The supported ciphers, all with a 16-byte ICV.
const (
	// AESGCM128 is AES-GCM with a 128-bit key and 16-byte ICV (RFC 4106, IKEv2 ENCR_AES_GCM_16).
	AESGCM128 Cipher = iota + 1
	// AESGCM256 is AES-GCM with a 256-bit key and 16-byte ICV (RFC 4106).
	AESGCM256
	// ChaCha20Poly1305 is ChaCha20-Poly1305 (RFC 7634, RFC 8439 AEAD).
	ChaCha20Poly1305
)

const saltLen = 4

// String returns the name ParseCipher accepts ("aes-gcm-128", ...).
func (c Cipher) String() string {
	switch c {
	case AESGCM128:
		return "aes-gcm-128"
	case AESGCM256:
		return "aes-gcm-256"
	case ChaCha20Poly1305:
		return "chacha20-poly1305"
	}
	return fmt.Sprintf("Cipher(%d)", uint8(c))
}

// ParseCipher returns the cipher named s: "aes-gcm-128", "aes-gcm-256" or
// "chacha20-poly1305". Other names give an error wrapping ErrCipher.
func ParseCipher(s string) (Cipher, error) {
	for _, c := range []Cipher{AESGCM128, AESGCM256, ChaCha20Poly1305} {
		if s == c.String() {
			return c, nil
		}
	}
	return 0, fmt.Errorf("parsing cipher %q: %w", s, ErrCipher)
}

// KeyLen returns the length of the SA key material: cipher key plus the
// 4-byte salt (20 for AES-GCM-128, 36 for AES-GCM-256 and
// ChaCha20-Poly1305), or 0 for an unknown cipher.
func (c Cipher) KeyLen() int {
	switch c {
	case AESGCM128:
		return 16 + saltLen
	case AESGCM256:
		return 32 + saltLen
	case ChaCha20Poly1305:
		return chacha20poly1305.KeySize + saltLen
	}
	return 0
}

// newAEAD builds the AEAD from key material (key || salt) and returns it with
// the salt.
func (c Cipher) newAEAD(keymat []byte) (cipher.AEAD, [saltLen]byte, error) {
	var salt [saltLen]byte
	if c.KeyLen() == 0 {
		return nil, salt, fmt.Errorf("creating SA with cipher %d: %w", uint8(c), ErrCipher)
	}
	if len(keymat) != c.KeyLen() {
		return nil, salt, fmt.Errorf("creating %s SA with %d-byte key, want %d: %w", c, len(keymat), c.KeyLen(), ErrKey)
	}
	key := keymat[:len(keymat)-saltLen]
	copy(salt[:], keymat[len(key):])
	var (
		a   cipher.AEAD
		err error
	)
	switch c {
	case AESGCM128, AESGCM256:
		var b cipher.Block
		if b, err = aes.NewCipher(key); err == nil {
			a, err = cipher.NewGCM(b)
		}
	case ChaCha20Poly1305:
		a, err = chacha20poly1305.New(key)
	}
	if err != nil {
		return nil, salt, fmt.Errorf("creating %s SA: %w", c, err)
	}
	if a.NonceSize() != saltLen+8 || a.Overhead() != ICVLen {
		return nil, salt, fmt.Errorf("creating %s SA: nonce %d overhead %d: %w", c, a.NonceSize(), a.Overhead(), ErrCipher)
	}
	return a, salt, nil
}
