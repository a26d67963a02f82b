package esp_test

import (
	"fmt"
	"testing"

	"github.com/havpn/havpn/internal/tunnel/esp"
)

var benchSizes = []int{64, 1420}

// BenchmarkSeal seals one inner packet per iteration, in place, as the
// dataplane does (b.SetBytes is the inner payload).
func BenchmarkSeal(b *testing.B) {
	for _, c := range ciphers {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%s/%d", c, n), func(b *testing.B) {
				out, _ := pair(b, c, false)
				buf := make([]byte, esp.HeaderLen+n+esp.MaxTrailer)
				payload := ipv4(n)
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					copy(buf[esp.HeaderLen:], payload)
					if _, err := out.Seal(buf, n, esp.NextHeaderGRE); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkOpen opens one packet per iteration: each has a fresh sequence
// number, so every one goes through replay check, AEAD, window update and
// padding check. Packets are sealed in batches with the timer stopped.
func BenchmarkOpen(b *testing.B) {
	const batch = 1024
	for _, c := range ciphers {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%s/%d", c, n), func(b *testing.B) {
				var (
					in   *esp.Inbound
					pkts [][]byte
					next = batch
				)
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					if next == batch {
						b.StopTimer()
						var out *esp.Outbound
						out, in = pair(b, c, false)
						pkts = pkts[:0]
						for range batch {
							pkts = append(pkts, seal(b, out, ipv4(n), esp.NextHeaderGRE))
						}
						next = 0
						b.StartTimer()
					}
					if _, _, err := in.Open(pkts[next]); err != nil {
						b.Fatal(err)
					}
					next++
				}
			})
		}
	}
}

// BenchmarkSealParallel seals on all cores through one SA (the contended
// atomic sequence counter and stats).
func BenchmarkSealParallel(b *testing.B) {
	for _, c := range ciphers {
		b.Run(fmt.Sprintf("%s/1420", c), func(b *testing.B) {
			out, _ := pair(b, c, false)
			b.SetBytes(1420)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				buf := make([]byte, esp.HeaderLen+1420+esp.MaxTrailer)
				for pb.Next() {
					if _, err := out.Seal(buf, 1420, esp.NextHeaderGRE); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
