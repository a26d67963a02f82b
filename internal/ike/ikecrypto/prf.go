package ikecrypto

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"

	"github.com/havpn/havpn/internal/ike/wire"
)

// PRF is a negotiated pseudo-random function (HMAC-SHA2, RFC 4868).
type PRF struct {
	id  uint16
	h   func() hash.Hash
	len int
}

// NewPRF returns the PRF with IANA transform ID id.
func NewPRF(id uint16) (PRF, error) {
	switch id {
	case wire.PRFHMACSHA2256:
		return PRF{id, sha256.New, 32}, nil
	case wire.PRFHMACSHA2384:
		return PRF{id, sha512.New384, 48}, nil
	case wire.PRFHMACSHA2512:
		return PRF{id, sha512.New, 64}, nil
	}
	return PRF{}, fmt.Errorf("PRF %d: %w", id, ErrUnsupported)
}

// ID returns the IANA transform ID.
func (p PRF) ID() uint16 { return p.id }

// Size is the output length, also the preferred key length (RFC 4868 §2.1)
// used for SK_d, SK_pi and SK_pr.
func (p PRF) Size() int { return p.len }

// Sum returns prf(key, data[0] | data[1] | ...).
func (p PRF) Sum(key []byte, data ...[]byte) []byte {
	m := hmac.New(p.h, key)
	for _, d := range data {
		m.Write(d)
	}
	return m.Sum(nil)
}

// Plus returns the first n bytes of prf+(key, seed) (RFC 7296 §2.13):
// T1 = prf(K, S | 0x01), Tk = prf(K, Tk-1 | S | k). n must not exceed
// 255 output blocks.
func (p PRF) Plus(key, seed []byte, n int) []byte {
	if n > 255*p.len {
		panic(fmt.Sprintf("ikecrypto: prf+ of %d bytes exceeds 255 blocks", n))
	}
	out := make([]byte, 0, n+p.len)
	m := hmac.New(p.h, key)
	var t []byte
	for i := 1; len(out) < n; i++ {
		m.Reset()
		m.Write(t)
		m.Write(seed)
		m.Write([]byte{byte(i)})
		t = m.Sum(nil)
		out = append(out, t...)
	}
	return out[:n]
}
