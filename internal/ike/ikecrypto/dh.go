package ikecrypto

import (
	"crypto/ecdh"
	"fmt"
	"io"

	"github.com/havpn/havpn/internal/ike/wire"
)

// KeyExchange is one side of a Diffie-Hellman exchange in one group.
type KeyExchange struct {
	group uint16
	curve ecdh.Curve
	priv  *ecdh.PrivateKey
}

func curveOf(group uint16) (ecdh.Curve, error) {
	switch group {
	case wire.DHECP256:
		return ecdh.P256(), nil
	case wire.DHECP384:
		return ecdh.P384(), nil
	case wire.DHCurve25519:
		return ecdh.X25519(), nil
	}
	return nil, fmt.Errorf("key exchange group %d: %w", group, ErrUnsupported)
}

// SupportedGroup reports whether group is implemented.
func SupportedGroup(group uint16) bool {
	_, err := curveOf(group)
	return err == nil
}

// NewKeyExchange generates a private value in group from rand.
func NewKeyExchange(group uint16, rand io.Reader) (*KeyExchange, error) {
	c, err := curveOf(group)
	if err != nil {
		return nil, err
	}
	k, err := c.GenerateKey(rand)
	if err != nil {
		return nil, fmt.Errorf("generating group %d key: %w", group, err)
	}
	return &KeyExchange{group: group, curve: c, priv: k}, nil
}

// NewKeyExchangeFromPrivate makes a KeyExchange from a known private value
// (the scalar for NIST curves, 32 bytes for X25519); for tests.
func NewKeyExchangeFromPrivate(group uint16, priv []byte) (*KeyExchange, error) {
	c, err := curveOf(group)
	if err != nil {
		return nil, err
	}
	k, err := c.NewPrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("group %d private key: %w", group, err)
	}
	return &KeyExchange{group: group, curve: c, priv: k}, nil
}

// Group returns the IANA group number.
func (k *KeyExchange) Group() uint16 { return k.group }

// PublicKey returns the KE payload data: x|y for the NIST curves
// (RFC 5903 §7, without the 0x04 point-format octet), the u-coordinate for
// X25519 (RFC 8031 §2).
func (k *KeyExchange) PublicKey() []byte {
	b := k.priv.PublicKey().Bytes()
	if k.group == wire.DHCurve25519 {
		return b
	}
	return b[1:]
}

// SharedSecret computes g^ir from the peer's KE payload data: the
// x-coordinate for the NIST curves (RFC 5903 §7), the X25519 output for
// group 31 (an all-zero output is rejected, RFC 8031 §2.2). The peer value
// must have exactly the group's length and be a valid point.
func (k *KeyExchange) SharedSecret(peer []byte) ([]byte, error) {
	want := PublicKeyLen(k.group)
	if len(peer) != want {
		return nil, fmt.Errorf("group %d public value of %d bytes, want %d: %w", k.group, len(peer), want, ErrPublicKey)
	}
	raw := peer
	if k.group != wire.DHCurve25519 {
		raw = append([]byte{4}, peer...)
	}
	pub, err := k.curve.NewPublicKey(raw)
	if err != nil {
		return nil, fmt.Errorf("group %d public value: %w: %w", k.group, ErrPublicKey, err)
	}
	s, err := k.priv.ECDH(pub)
	if err != nil {
		return nil, fmt.Errorf("group %d shared secret: %w: %w", k.group, ErrPublicKey, err)
	}
	return s, nil
}

// PublicKeyLen is the KE data length of group (0 if unsupported).
func PublicKeyLen(group uint16) int {
	switch group {
	case wire.DHECP256:
		return 64
	case wire.DHECP384:
		return 96
	case wire.DHCurve25519:
		return 32
	}
	return 0
}
