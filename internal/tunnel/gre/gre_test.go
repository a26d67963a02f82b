package gre

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

// slowChecksum is RFC 1071 written the obvious way, 16 bits at a time, as a
// reference for Checksum.
func slowChecksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i < len(b); i += 2 {
		w := uint32(b[i]) << 8
		if i+1 < len(b) {
			w |= uint32(b[i+1])
		}
		sum += w
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// withChecksum builds a GRE packet with the C bit: header words, then payload,
// with the checksum filled in by slowChecksum.
func withChecksum(flags uint16, proto uint16, extra []byte, payload []byte) []byte {
	p := []byte{byte(flags>>8) | 0x80, byte(flags), byte(proto >> 8), byte(proto), 0, 0, 0, 0}
	p = append(p, extra...)
	p = append(p, payload...)
	c := slowChecksum(p)
	p[4], p[5] = byte(c>>8), byte(c)
	return p
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPut(t *testing.T) {
	tests := []struct {
		name   string
		proto  uint16
		key    uint32
		hasKey bool
		want   string
	}{
		{name: "ipv4 no key", proto: ProtoIPv4, want: "00000800"},
		{name: "ipv6 no key", proto: ProtoIPv6, want: "000086dd"},
		{name: "ipv4 key", proto: ProtoIPv4, key: 0x01020304, hasKey: true, want: "2000080001020304"},
		{name: "ipv6 key zero", proto: ProtoIPv6, key: 0, hasKey: true, want: "200086dd00000000"},
		{name: "key ignored without hasKey", proto: ProtoIPv4, key: 0xdeadbeef, want: "00000800"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := bytes.Repeat([]byte{0xaa}, 12)
			Put(b, tc.proto, tc.key, tc.hasKey)
			n := HeaderLen(tc.hasKey)
			if got := hex.EncodeToString(b[:n]); got != tc.want {
				t.Errorf("Put = %s, want %s", got, tc.want)
			}
			for i, c := range b[n:] {
				if c != 0xaa {
					t.Fatalf("Put wrote byte %d beyond the header", n+i)
				}
			}
		})
	}
}

func TestParse(t *testing.T) {
	payload := []byte{0x45, 0, 0, 20, 1, 2, 3}
	tests := []struct {
		name    string
		pkt     []byte
		want    Header
		wantErr error
	}{
		{name: "minimal ipv4", pkt: mustHex(t, "00000800"), want: Header{Proto: ProtoIPv4, Len: 4}},
		{name: "minimal with payload", pkt: append(mustHex(t, "000086dd"), payload...), want: Header{Proto: ProtoIPv6, Len: 4}},
		{name: "key", pkt: mustHex(t, "2000080001020304"), want: Header{Proto: ProtoIPv4, Key: 0x01020304, HasKey: true, Len: 8}},
		{name: "seq", pkt: mustHex(t, "1000080000000007"), want: Header{Proto: ProtoIPv4, Seq: 7, HasSeq: true, Len: 8}},
		{name: "key and seq", pkt: mustHex(t, "30000800aabbccddffffffff"),
			want: Header{Proto: ProtoIPv4, Key: 0xaabbccdd, HasKey: true, Seq: 0xffffffff, HasSeq: true, Len: 12}},
		{name: "checksum", pkt: withChecksum(0, ProtoIPv4, nil, payload), want: Header{Proto: ProtoIPv4, Len: 8, HasChecksum: true}},
		{name: "checksum empty payload", pkt: withChecksum(0, ProtoIPv6, nil, nil), want: Header{Proto: ProtoIPv6, Len: 8, HasChecksum: true}},
		{name: "checksum key seq odd payload", pkt: withChecksum(0x3000, ProtoIPv6, mustHex(t, "0000002a00000003"), payload),
			want: Header{Proto: ProtoIPv6, Key: 42, HasKey: true, Seq: 3, HasSeq: true, Len: 16, HasChecksum: true}},
		{name: "checksum with reserved1 set is ignored", pkt: func() []byte {
			p := withChecksum(0, ProtoIPv4, nil, payload)
			p[6], p[7] = 0x12, 0x34
			c := slowChecksum(append(append([]byte{}, p[:4]...), append([]byte{0, 0}, p[6:]...)...))
			p[4], p[5] = byte(c>>8), byte(c)
			return p
		}(), want: Header{Proto: ProtoIPv4, Len: 8, HasChecksum: true}},
		{name: "bad checksum", pkt: func() []byte { p := withChecksum(0, ProtoIPv4, nil, payload); p[len(p)-1] ^= 1; return p }(), wantErr: ErrChecksum},
		{name: "checksum field corrupted", pkt: func() []byte { p := withChecksum(0, ProtoIPv4, nil, payload); p[4] ^= 0x10; return p }(), wantErr: ErrChecksum},
		{name: "reserved0 bits 6-12 ignored", pkt: mustHex(t, "03f80800"), want: Header{Proto: ProtoIPv4, Len: 4}},
		{name: "unknown proto passed through", pkt: mustHex(t, "00006558"), want: Header{Proto: 0x6558, Len: 4}},
		{name: "version 1 (pptp)", pkt: mustHex(t, "2001880b00000000"), wantErr: ErrVersion},
		{name: "version 7", pkt: mustHex(t, "00070800"), wantErr: ErrVersion},
		{name: "routing bit", pkt: mustHex(t, "40000800000000000000000000000000"), wantErr: ErrReserved},
		{name: "strict source route bit", pkt: mustHex(t, "08000800"), wantErr: ErrReserved},
		{name: "recursion bit 5", pkt: mustHex(t, "04000800"), wantErr: ErrReserved},
		{name: "empty", pkt: nil, wantErr: ErrShort},
		{name: "three bytes", pkt: mustHex(t, "000008"), wantErr: ErrShort},
		{name: "key cut", pkt: mustHex(t, "20000800010203"), wantErr: ErrShort},
		{name: "seq cut after key", pkt: mustHex(t, "300008000102030400"), wantErr: ErrShort},
		{name: "checksum cut", pkt: mustHex(t, "80000800ffff"), wantErr: ErrShort},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.pkt)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Parse err = %v, want %v", err, tc.wantErr)
				}
				if got != (Header{}) {
					t.Errorf("Parse returned %+v with an error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got != tc.want {
				t.Errorf("Parse = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestPutParseRoundTrip(t *testing.T) {
	for _, hasKey := range []bool{false, true} {
		for _, proto := range []uint16{ProtoIPv4, ProtoIPv6} {
			b := make([]byte, 8+3)
			Put(b, proto, 0x11223344, hasKey)
			h, err := Parse(b)
			if err != nil {
				t.Fatalf("hasKey=%v proto=%#x: %v", hasKey, proto, err)
			}
			want := Header{Proto: proto, Len: HeaderLen(hasKey), HasKey: hasKey}
			if hasKey {
				want.Key = 0x11223344
			}
			if h != want {
				t.Errorf("hasKey=%v proto=%#x: got %+v, want %+v", hasKey, proto, h, want)
			}
		}
	}
}

func TestChecksum(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want uint16
	}{
		// RFC 1071 §3 example: words 0001 f203 f4f5 f6f7 sum to ddf2, checksum 220d.
		{name: "rfc1071 example", in: "0001f203f4f5f6f7", want: 0x220d},
		{name: "empty", in: "", want: 0xffff},
		{name: "odd byte padded", in: "01", want: 0xfeff},
		{name: "all ones", in: "ffffffff", want: 0x0000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Checksum(mustHex(t, tc.in)); got != tc.want {
				t.Errorf("Checksum = %#04x, want %#04x", got, tc.want)
			}
		})
	}
	// Against the slow reference on every length up to 100 and a varied pattern.
	b := make([]byte, 100)
	for i := range b {
		b[i] = byte(i*37 + 255 - i>>1)
	}
	for n := 0; n <= len(b); n++ {
		for start := 0; start < 3 && start <= n; start++ {
			if got, want := Checksum(b[start:n]), slowChecksum(b[start:n]); got != want {
				t.Fatalf("Checksum(b[%d:%d]) = %#04x, reference %#04x", start, n, got, want)
			}
		}
	}
}

func TestNoAllocs(t *testing.T) {
	pkt := withChecksum(0x3000, ProtoIPv4, mustHex(t, "0000002a00000003"), make([]byte, 1400))
	out := make([]byte, 8)
	allocs := testing.AllocsPerRun(100, func() {
		Put(out, ProtoIPv4, 1, true)
		if _, err := Parse(pkt); err != nil {
			t.Fatal(err)
		}
		if _, err := Parse(pkt[:5]); err == nil {
			t.Fatal("short packet parsed")
		}
	})
	if allocs != 0 {
		t.Errorf("Put+Parse allocate %v times per run, want 0", allocs)
	}
}
