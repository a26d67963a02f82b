package ike

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
)

// espSA is a minimal RFC 4303 ESP SA with RFC 4106 AES-GCM or RFC 7634
// ChaCha20-Poly1305 (8-byte IV, 16-byte ICV, no ESN), used by the interop
// tests to check negotiated keys against a real peer's ESP traffic.
type espSA struct {
	aead cipher.AEAD
	salt []byte
	spi  uint32
	seq  uint32
}

func newESPSA(k ChildKeys) (*espSA, error) {
	if len(k.Key) < 4 {
		return nil, errors.New("short key")
	}
	key, salt := k.Key[:len(k.Key)-4], k.Key[len(k.Key)-4:]
	var a cipher.AEAD
	var err error
	switch k.Cipher {
	case "aes-gcm-128", "aes-gcm-256":
		var b cipher.Block
		if b, err = aes.NewCipher(key); err == nil {
			a, err = cipher.NewGCM(b)
		}
	case "chacha20-poly1305":
		a, err = chacha20poly1305.New(key)
	default:
		err = fmt.Errorf("cipher %q", k.Cipher)
	}
	if err != nil {
		return nil, err
	}
	return &espSA{aead: a, salt: salt, spi: k.SPI}, nil
}

// open decrypts an ESP packet and returns the payload and next header.
func (s *espSA) open(pkt []byte) ([]byte, byte, error) {
	if len(pkt) < 16+16+2 || binary.BigEndian.Uint32(pkt) != s.spi {
		return nil, 0, errors.New("not for this SA")
	}
	nonce := append(append([]byte(nil), s.salt...), pkt[8:16]...)
	pt, err := s.aead.Open(nil, nonce, pkt[16:], pkt[:8])
	if err != nil {
		return nil, 0, err
	}
	pad := int(pt[len(pt)-2])
	if pad+2 > len(pt) {
		return nil, 0, errors.New("bad padding")
	}
	return pt[:len(pt)-2-pad], pt[len(pt)-1], nil
}

// seal encrypts payload as the next ESP packet of this SA.
func (s *espSA) seal(payload []byte, next byte) []byte {
	s.seq++
	hdr := make([]byte, 16)
	binary.BigEndian.PutUint32(hdr, s.spi)
	binary.BigEndian.PutUint32(hdr[4:], s.seq)
	binary.BigEndian.PutUint64(hdr[8:], uint64(s.seq))
	pad := (4 - (len(payload)+2)%4) % 4
	pt := append([]byte(nil), payload...)
	for i := 1; i <= pad; i++ {
		pt = append(pt, byte(i))
	}
	pt = append(pt, byte(pad), next)
	nonce := append(append([]byte(nil), s.salt...), hdr[8:16]...)
	return s.aead.Seal(hdr, nonce, pt, hdr[:8])
}

func csum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

// echoReply turns an IPv4 ICMP echo request into its reply, or returns nil.
func echoReply(p []byte) []byte {
	if len(p) < 28 || p[0]>>4 != 4 || p[9] != 1 {
		return nil
	}
	ihl := int(p[0]&0xf) * 4
	if len(p) < ihl+8 || p[ihl] != 8 {
		return nil
	}
	r := append([]byte(nil), p...)
	copy(r[12:16], p[16:20])
	copy(r[16:20], p[12:16])
	r[8] = 64
	r[10], r[11] = 0, 0
	binary.BigEndian.PutUint16(r[10:], csum(r[:ihl]))
	r[ihl] = 0
	r[ihl+2], r[ihl+3] = 0, 0
	binary.BigEndian.PutUint16(r[ihl+2:], csum(r[ihl:]))
	return r
}
