package gre

import "testing"

func BenchmarkPut(b *testing.B) {
	buf := make([]byte, 8)
	b.ReportAllocs()
	b.SetBytes(8)
	for b.Loop() {
		Put(buf, ProtoIPv4, 0x01020304, true)
	}
}

func BenchmarkParse(b *testing.B) {
	for _, bc := range []struct {
		name string
		pkt  []byte
	}{
		{name: "key", pkt: append([]byte{0x20, 0, 8, 0, 1, 2, 3, 4}, make([]byte, 1420)...)},
		{name: "checksum-1420", pkt: withChecksum(0, ProtoIPv4, nil, make([]byte, 1420))},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.pkt)))
			for b.Loop() {
				if _, err := Parse(bc.pkt); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
