package gre

import (
	"encoding/binary"
	"testing"
)

// FuzzGREParse checks Parse on arbitrary bytes: no panic, Len within the
// packet and consistent with the flags, the fields read back from where the
// RFC puts them, and Put+Parse round trips for the header built from the
// fuzzed values.
func FuzzGREParse(f *testing.F) {
	f.Add([]byte{0, 0, 8, 0, 0x45}, uint16(ProtoIPv4), uint32(0), false)
	f.Add([]byte{0x20, 0, 0x86, 0xdd, 0, 0, 0, 1}, uint16(ProtoIPv6), uint32(1), true)
	f.Add([]byte{0x30, 0, 8, 0, 1, 2, 3, 4, 0, 0, 0, 9}, uint16(0x6558), uint32(0xffffffff), true)
	f.Add(withChecksum(0x3000, ProtoIPv4, []byte{0, 0, 0, 42, 0, 0, 0, 3}, []byte{1, 2, 3}), uint16(ProtoIPv4), uint32(42), true)
	f.Add([]byte{0x40, 0, 8, 0}, uint16(0), uint32(0), false)
	f.Add([]byte{0x20, 0x01, 0x88, 0x0b}, uint16(0), uint32(0), false)
	f.Add([]byte{}, uint16(0), uint32(0), false)
	f.Fuzz(func(t *testing.T, b []byte, proto uint16, key uint32, hasKey bool) {
		h, err := Parse(b)
		if err == nil {
			if h.Len < MinHeaderLen || h.Len > MaxHeaderLen || h.Len > len(b) {
				t.Fatalf("Len %d outside [4,16] or beyond packet of %d", h.Len, len(b))
			}
			flags := binary.BigEndian.Uint16(b)
			want := 4
			for _, bit := range []uint16{flagChecksum, flagKey, flagSeq} {
				if flags&bit != 0 {
					want += 4
				}
			}
			if h.Len != want {
				t.Fatalf("Len %d, flags %#04x say %d", h.Len, flags, want)
			}
			if flags&maskVersion != 0 || flags&rejectBits != 0 {
				t.Fatalf("accepted flags %#04x", flags)
			}
			if h.HasChecksum && slowChecksum(b) != 0 {
				t.Fatal("accepted a bad checksum")
			}
			if h.Proto != binary.BigEndian.Uint16(b[2:]) {
				t.Fatal("wrong proto")
			}
			off := 4
			if h.HasChecksum {
				off += 4
			}
			if h.HasKey && h.Key != binary.BigEndian.Uint32(b[off:]) {
				t.Fatal("wrong key")
			}
			if h.HasKey {
				off += 4
			}
			if h.HasSeq && h.Seq != binary.BigEndian.Uint32(b[off:]) {
				t.Fatal("wrong seq")
			}
		} else if h != (Header{}) {
			t.Fatalf("non-zero header %+v with error %v", h, err)
		}

		// Round trip: Put then Parse on header + fuzzed bytes as payload.
		p := make([]byte, HeaderLen(hasKey)+len(b))
		Put(p, proto, key, hasKey)
		copy(p[HeaderLen(hasKey):], b)
		got, err := Parse(p)
		if err != nil {
			t.Fatalf("Parse(Put(%#x, %#x, %v)): %v", proto, key, hasKey, err)
		}
		want := Header{Proto: proto, HasKey: hasKey, Len: HeaderLen(hasKey)}
		if hasKey {
			want.Key = key
		}
		if got != want {
			t.Fatalf("round trip: got %+v, want %+v", got, want)
		}
	})
}
