package esp_test

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/havpn/havpn/internal/tunnel/esp"
)

// FuzzOpen feeds arbitrary bytes to Open (as they come, and with the SA's
// SPI patched in so the input reaches the replay check and the AEAD): no
// panic, no success for unauthenticated bytes, errors only from the
// documented set. Then it seals the fuzzed payload with a fuzzed cipher,
// ESN flag, starting sequence number and next header, and Open must give it
// back unchanged.
func FuzzOpen(f *testing.F) {
	out, _ := pair(f, esp.AESGCM128, false)
	good := seal(f, out, ipv4(40), 4)
	f.Add(good, []byte("payload"), uint8(0), uint64(0), uint8(4))
	f.Add(good[:esp.HeaderLen+2+esp.ICVLen], []byte{}, uint8(1), uint64(1<<32-2), uint8(41))
	f.Add([]byte{}, ipv6(100), uint8(2), uint64(1<<40), uint8(47))
	f.Add([]byte{0, 0, 0x10, 0x01, 0, 0, 0, 0}, ipv4(1500), uint8(5), uint64(1<<64-3), uint8(59))
	f.Add(bytes.Repeat([]byte{0xff}, 64), []byte{0xff}, uint8(3), uint64(7), uint8(0))
	f.Fuzz(func(t *testing.T, data, payload []byte, sel uint8, start uint64, nh uint8) {
		c := ciphers[int(sel)%len(ciphers)]
		esn := sel&4 != 0
		if !esn {
			start &= 0xffffffff
		}

		// Random bytes, opened with a key no seed was sealed with.
		in, err := esp.NewInbound(c, 0x1000+uint32(c), key(c, 0xaa), esn, 1024)
		if err != nil {
			t.Fatal(err)
		}
		for _, patch := range []bool{false, true} {
			pkt := bytes.Clone(data)
			if patch && len(pkt) >= 4 {
				binary.BigEndian.PutUint32(pkt, in.SPI())
			}
			p, _, err := in.Open(pkt)
			switch err {
			case esp.ErrShort, esp.ErrSPI, esp.ErrReplay, esp.ErrAuth:
			case nil, esp.ErrPadding:
				t.Fatalf("random %d bytes authenticated (err %v, payload %d bytes)", len(pkt), err, len(p))
			default:
				t.Fatalf("undocumented error %v", err)
			}
		}
		if st := in.Stats(); st.Packets != 0 {
			t.Fatalf("stats %+v", st)
		}

		// Round trip.
		k := key(c, sel)
		st := esp.State{Cipher: c, SPI: 0x1234, Key: k, ESN: esn, Seq: start, Window: 1024}
		o, err := esp.NewOutboundFromState(st)
		if err != nil {
			t.Fatal(err)
		}
		i, err := esp.NewInboundFromState(st)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, esp.HeaderLen+len(payload), esp.HeaderLen+len(payload)+esp.MaxTrailer)
		copy(buf[esp.HeaderLen:], payload)
		n, err := o.Seal(buf, len(payload), nh)
		limit := uint64(1<<32 - 1)
		if esn {
			limit = 1<<64 - 1
		}
		if start >= limit {
			if err != esp.ErrSeqExhausted {
				t.Fatalf("Seal at the last sequence number: %v", err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if n != len(payload)+esp.Overhead(len(payload)) || n%4 != 0 {
			t.Fatalf("sealed length %d for %d bytes", n, len(payload))
		}
		got, gotNH, err := i.Open(buf[:n])
		if err != nil {
			t.Fatalf("Open of sealed packet: %v", err)
		}
		if !bytes.Equal(got, payload) || gotNH != nh {
			t.Fatalf("round trip changed the payload or next header")
		}
	})
}

// FuzzClassifyUDP checks ClassifyUDP against the RFC 3948 rules written out
// independently, and its agreement with SPIOf.
func FuzzClassifyUDP(f *testing.F) {
	f.Add([]byte{0xff})
	f.Add([]byte{})
	f.Add(make([]byte, 32))
	f.Add(make([]byte, 31))
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 1})
	f.Add([]byte{0, 0, 1, 0, 0, 0, 0, 1})
	f.Add([]byte{0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		k := esp.ClassifyUDP(b)
		var want esp.UDPKind
		switch {
		case bytes.Equal(b, []byte{0xff}):
			want = esp.KindKeepalive
		case len(b) >= 32 && bytes.Equal(b[:4], []byte{0, 0, 0, 0}):
			want = esp.KindIKE
		case len(b) >= 8 && binary.BigEndian.Uint32(b) > 255:
			want = esp.KindESP
		default:
			want = esp.KindInvalid
		}
		if k != want {
			t.Fatalf("ClassifyUDP(%x) = %v, want %v", b, k, want)
		}
		if _, ok := esp.SPIOf(b); ok != (k == esp.KindESP) {
			t.Fatalf("SPIOf ok=%v but kind %v", ok, k)
		}
	})
}
