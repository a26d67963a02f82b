package ikecrypto

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"fmt"
	"hash"
	"io"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/havpn/havpn/internal/ike/wire"
)

// EncrKeyLen returns the key length in bytes of encryption transform id
// with key size keyBits (the Key Length attribute), including the 4-byte
// salt of the AEAD ciphers (RFC 5282 §7.1, RFC 7634 §2).
func EncrKeyLen(id uint16, keyBits uint16) (int, error) {
	switch id {
	case wire.EncrAESGCM16, wire.EncrAESCBC:
		if keyBits != 128 && keyBits != 256 && !(id == wire.EncrAESCBC && keyBits == 192) && !(id == wire.EncrAESGCM16 && keyBits == 192) {
			return 0, fmt.Errorf("encryption %d with %d-bit key: %w", id, keyBits, ErrUnsupported)
		}
		n := int(keyBits) / 8
		if id == wire.EncrAESGCM16 {
			n += 4
		}
		return n, nil
	case wire.EncrChaCha20Poly1305:
		if keyBits != 0 && keyBits != 256 {
			return 0, fmt.Errorf("chacha20-poly1305 with %d-bit key: %w", keyBits, ErrUnsupported)
		}
		return 36, nil
	}
	return 0, fmt.Errorf("encryption %d: %w", id, ErrUnsupported)
}

// IsAEAD reports whether encryption transform id is a combined-mode cipher
// (negotiated without an integrity transform).
func IsAEAD(id uint16) bool {
	return id == wire.EncrAESGCM16 || id == wire.EncrChaCha20Poly1305
}

// IntegKeyLen returns the key length in bytes of integrity transform id.
func IntegKeyLen(id uint16) (int, error) {
	switch id {
	case wire.IntegNone:
		return 0, nil
	case wire.IntegHMACSHA256128:
		return 32, nil
	case wire.IntegHMACSHA384192:
		return 48, nil
	case wire.IntegHMACSHA512256:
		return 64, nil
	}
	return 0, fmt.Errorf("integrity %d: %w", id, ErrUnsupported)
}

// SKCipher protects the Encrypted (SK) and Encrypted Fragment (SKF)
// payloads in one direction of an IKE SA (RFC 7296 §3.14, RFC 5282,
// RFC 7383 §2.5). Not safe for concurrent use.
type SKCipher interface {
	// SealedLen is the length of IV | ciphertext | ICV for n bytes of inner
	// payloads (padding and the Pad Length byte included).
	SealedLen(n int) int
	// Seal appends IV | ciphertext | ICV to prefix and returns the result.
	// prefix is the message from the IKE header through the SK/SKF payload
	// header, with every length field already final (SealedLen tells the
	// caller what to write): it is the AEAD associated data, or the start
	// of the integrity-protected range.
	Seal(prefix, inner []byte, rand io.Reader) ([]byte, error)
	// Open checks and decrypts data = IV | ciphertext | ICV that follows
	// prefix in a received message and returns the inner payload bytes
	// with the padding removed (a new slice).
	Open(prefix, data []byte) ([]byte, error)
}

// NewSKCipher returns the SK protection for one direction: encKey from
// SK_ei/SK_er (with salt for AEAD), integKey from SK_ai/SK_ar (empty for
// AEAD).
func NewSKCipher(encr uint16, encKey []byte, integ uint16, integKey []byte) (SKCipher, error) {
	switch encr {
	case wire.EncrAESGCM16, wire.EncrChaCha20Poly1305:
		if integ != wire.IntegNone {
			return nil, fmt.Errorf("AEAD cipher %d with integrity %d: %w", encr, integ, ErrUnsupported)
		}
		if len(encKey) < 4 {
			return nil, fmt.Errorf("AEAD key of %d bytes: %w", len(encKey), ErrUnsupported)
		}
		key, salt := encKey[:len(encKey)-4], encKey[len(encKey)-4:]
		var a cipher.AEAD
		var err error
		if encr == wire.EncrAESGCM16 {
			var b cipher.Block
			if b, err = aes.NewCipher(key); err == nil {
				a, err = cipher.NewGCM(b)
			}
		} else {
			a, err = chacha20poly1305.New(key)
		}
		if err != nil {
			return nil, fmt.Errorf("SK cipher %d: %w", encr, err)
		}
		return &aeadSK{aead: a, salt: append([]byte(nil), salt...)}, nil
	case wire.EncrAESCBC:
		b, err := aes.NewCipher(encKey)
		if err != nil {
			return nil, fmt.Errorf("SK cipher AES-CBC: %w", err)
		}
		var h func() hash.Hash
		var icv int
		switch integ {
		case wire.IntegHMACSHA256128:
			h, icv = sha256.New, 16
		case wire.IntegHMACSHA384192:
			h, icv = sha512.New384, 24
		case wire.IntegHMACSHA512256:
			h, icv = sha512.New, 32
		default:
			return nil, fmt.Errorf("AES-CBC with integrity %d: %w", integ, ErrUnsupported)
		}
		if want, _ := IntegKeyLen(integ); len(integKey) != want {
			return nil, fmt.Errorf("integrity key of %d bytes, want %d: %w", len(integKey), want, ErrUnsupported)
		}
		return &cbcSK{block: b, mac: hmac.New(h, integKey), icv: icv}, nil
	}
	return nil, fmt.Errorf("SK cipher %d: %w", encr, ErrUnsupported)
}

// aeadSK is AES-GCM-16 (RFC 5282) or ChaCha20-Poly1305 (RFC 7634): 8-byte
// explicit IV, nonce = salt | IV, AAD = prefix, 16-byte ICV. The IV is
// random: unlike a counter it stays unique when a standby takes over an
// exported IKE SA.
type aeadSK struct {
	aead cipher.AEAD
	salt []byte
}

const aeadIV = 8

func (c *aeadSK) SealedLen(n int) int { return aeadIV + n + 1 + c.aead.Overhead() }

func (c *aeadSK) Seal(prefix, inner []byte, rand io.Reader) ([]byte, error) {
	var nonce [12]byte
	copy(nonce[:], c.salt)
	if _, err := io.ReadFull(rand, nonce[4:]); err != nil {
		return nil, fmt.Errorf("SK IV: %w", err)
	}
	out := append(prefix, nonce[4:]...)
	pt := make([]byte, len(inner)+1) // Pad Length 0, no padding (RFC 5282 §3)
	copy(pt, inner)
	return c.aead.Seal(out, nonce[:], pt, prefix), nil
}

func (c *aeadSK) Open(prefix, data []byte) ([]byte, error) {
	if len(data) < aeadIV+1+c.aead.Overhead() {
		return nil, fmt.Errorf("SK payload of %d bytes: %w", len(data), ErrAuth)
	}
	var nonce [12]byte
	copy(nonce[:], c.salt)
	copy(nonce[4:], data[:aeadIV])
	pt, err := c.aead.Open(nil, nonce[:], data[aeadIV:], prefix)
	if err != nil {
		return nil, fmt.Errorf("SK payload: %w", ErrAuth)
	}
	return unpad(pt)
}

func unpad(pt []byte) ([]byte, error) {
	if len(pt) == 0 {
		return nil, fmt.Errorf("SK payload without pad length: %w", ErrPadding)
	}
	pl := int(pt[len(pt)-1])
	if pl+1 > len(pt) {
		return nil, fmt.Errorf("SK pad length %d of %d bytes: %w", pl, len(pt), ErrPadding)
	}
	return pt[:len(pt)-1-pl], nil
}

// cbcSK is AES-CBC (RFC 3602) with HMAC-SHA2 truncated (RFC 4868): random
// 16-byte IV, padding to the block size, ICV over prefix | IV | ciphertext.
type cbcSK struct {
	block cipher.Block
	mac   hash.Hash
	icv   int
}

func (c *cbcSK) SealedLen(n int) int {
	bs := c.block.BlockSize()
	return bs + (n+1+bs-1)/bs*bs + c.icv
}

func (c *cbcSK) Seal(prefix, inner []byte, rand io.Reader) ([]byte, error) {
	bs := c.block.BlockSize()
	padded := (len(inner) + 1 + bs - 1) / bs * bs
	start := len(prefix)
	out := append(prefix, make([]byte, bs+padded)...)
	iv := out[start : start+bs]
	if _, err := io.ReadFull(rand, iv); err != nil {
		return nil, fmt.Errorf("SK IV: %w", err)
	}
	ct := out[start+bs:]
	copy(ct, inner)
	ct[padded-1] = byte(padded - len(inner) - 1)
	cipher.NewCBCEncrypter(c.block, iv).CryptBlocks(ct, ct)
	c.mac.Reset()
	c.mac.Write(out)
	return append(out, c.mac.Sum(nil)[:c.icv]...), nil
}

func (c *cbcSK) Open(prefix, data []byte) ([]byte, error) {
	bs := c.block.BlockSize()
	if len(data) < bs+bs+c.icv || (len(data)-bs-c.icv)%bs != 0 {
		return nil, fmt.Errorf("SK payload of %d bytes: %w", len(data), ErrAuth)
	}
	body, icv := data[:len(data)-c.icv], data[len(data)-c.icv:]
	c.mac.Reset()
	c.mac.Write(prefix)
	c.mac.Write(body)
	if subtle.ConstantTimeCompare(c.mac.Sum(nil)[:c.icv], icv) != 1 {
		return nil, fmt.Errorf("SK payload: %w", ErrAuth)
	}
	pt := make([]byte, len(body)-bs)
	cipher.NewCBCDecrypter(c.block, body[:bs]).CryptBlocks(pt, body[bs:])
	return unpad(pt)
}
