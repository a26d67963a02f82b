package esp

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"
)

// rawPacket builds an ESP packet around an arbitrary ESP plaintext (payload,
// padding, pad length, next header as given), so that malformed trailers can
// be authenticated.
func rawPacket(o *Outbound, seq uint64, plaintext []byte) []byte {
	pkt := make([]byte, HeaderLen, HeaderLen+len(plaintext)+ICVLen)
	binary.BigEndian.PutUint32(pkt[0:], o.spi)
	binary.BigEndian.PutUint32(pkt[4:], uint32(seq))
	binary.BigEndian.PutUint64(pkt[8:], seq)
	var nonce [12]byte
	copy(nonce[:], o.salt[:])
	copy(nonce[4:], pkt[8:16])
	return o.aead.Seal(pkt, nonce[:], plaintext, pkt[:8])
}

func TestPadding(t *testing.T) {
	seqPad := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i + 1)
		}
		return b
	}
	payload := []byte("inner packet bytes")
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	tests := []struct {
		name      string
		plaintext []byte
		want      error
		payload   []byte
		nh        byte
	}{
		{"minimal", cat(payload, seqPad(2), []byte{2, 4}), nil, payload, 4},
		{"no padding", cat(payload[:2], []byte{0, 41}), nil, payload[:2], 41},
		{"empty payload", []byte{0, 59}, nil, []byte{}, 59},
		{"longer than needed", cat(payload, seqPad(6), []byte{6, 47}), nil, payload, 47},
		{"255 bytes", cat(payload, seqPad(255), []byte{255, 4}), nil, payload, 4},
		{"unaligned accepted", cat(payload[:1], []byte{0, 4}), nil, payload[:1], 4},
		{"zero pad bytes", cat(payload, []byte{0, 0}, []byte{2, 4}), ErrPadding, nil, 0},
		{"pad bytes off by one", cat(payload, []byte{1, 3}, []byte{2, 4}), ErrPadding, nil, 0},
		{"pad bytes reversed", cat(payload, []byte{3, 2, 1}, []byte{3, 4}), ErrPadding, nil, 0},
		{"pad length beyond payload", []byte{1, 2, 3, 5, 4}, ErrPadding, nil, 0},
		{"pad length exactly all", []byte{1, 2, 3, 3, 4}, nil, []byte{}, 4},
		{"pad length 255 short", cat(payload, []byte{255, 4}), ErrPadding, nil, 0},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key := make([]byte, AESGCM128.KeyLen())
			o, err := NewOutbound(AESGCM128, 0x5555, key, false)
			if err != nil {
				t.Fatal(err)
			}
			in, err := NewInbound(AESGCM128, 0x5555, key, false, 1024)
			if err != nil {
				t.Fatal(err)
			}
			seq := uint64(i + 1)
			pkt := rawPacket(o, seq, tc.plaintext)
			got, nh, err := in.Open(bytes.Clone(pkt))
			if err != tc.want {
				t.Fatalf("Open: %v, want %v", err, tc.want)
			}
			if err == nil && (!bytes.Equal(got, tc.payload) || nh != tc.nh) {
				t.Fatalf("Open gave %q nh %d, want %q nh %d", got, nh, tc.payload, tc.nh)
			}
			st := in.Stats()
			if tc.want == ErrPadding && st.Padding != 1 {
				t.Fatalf("Padding counter %d", st.Padding)
			}
			// The packet authenticated, so its number is used up either way.
			if _, _, err := in.Open(bytes.Clone(pkt)); err != ErrReplay {
				t.Fatalf("second Open: %v, want ErrReplay", err)
			}
		})
	}
}

func TestPadLen(t *testing.T) {
	for n := range 64 {
		p := padLen(n)
		if p < 0 || p > 3 || (n+p+2)%4 != 0 {
			t.Fatalf("padLen(%d) = %d", n, p)
		}
		if Overhead(n) != HeaderLen+p+2+ICVLen {
			t.Fatalf("Overhead(%d) = %d", n, Overhead(n))
		}
	}
}

// BenchmarkRawAEAD is the floor for BenchmarkSeal: the bare AEAD Seal of
// the same plaintext length, nonce and AAD preallocated, no ESP framing.
func BenchmarkRawAEAD(b *testing.B) {
	for _, c := range []Cipher{AESGCM128, AESGCM256, ChaCha20Poly1305} {
		for _, n := range []int{64, 1420} {
			b.Run(fmt.Sprintf("%s/%d", c, n), func(b *testing.B) {
				o, err := NewOutbound(c, 0x100, make([]byte, c.KeyLen()), false)
				if err != nil {
					b.Fatal(err)
				}
				ptLen := n + padLen(n) + 2
				buf := make([]byte, ptLen+ICVLen)
				nonce, aad := make([]byte, 12), make([]byte, 8)
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					o.aead.Seal(buf[:0], nonce, buf[:ptLen], aad)
				}
			})
		}
	}
}
