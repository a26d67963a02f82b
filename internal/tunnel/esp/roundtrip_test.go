package esp_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"sync"
	"testing"

	"github.com/havpn/havpn/internal/tunnel/esp"
)

var ciphers = []esp.Cipher{esp.AESGCM128, esp.AESGCM256, esp.ChaCha20Poly1305}

func key(c esp.Cipher, seed byte) []byte {
	k := make([]byte, c.KeyLen())
	for i := range k {
		k[i] = seed + byte(i)*7
	}
	return k
}

// pair returns an outbound and an inbound SA sharing SPI and key.
func pair(t testing.TB, c esp.Cipher, esn bool) (*esp.Outbound, *esp.Inbound) {
	t.Helper()
	out, err := esp.NewOutbound(c, 0x1000+uint32(c), key(c, 1), esn)
	if err != nil {
		t.Fatal(err)
	}
	in, err := esp.NewInbound(c, 0x1000+uint32(c), key(c, 1), esn, 1024)
	if err != nil {
		t.Fatal(err)
	}
	return out, in
}

// ipv4 and ipv6 return inner packets of n bytes with a recognisable header.
func ipv4(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*31 + 3)
	}
	if n >= 20 {
		p[0] = 0x45
		binary.BigEndian.PutUint16(p[2:], uint16(n))
	}
	return p
}

func ipv6(n int) []byte {
	p := ipv4(n)
	if n >= 40 {
		p[0] = 0x60
		binary.BigEndian.PutUint16(p[4:], uint16(n-40))
	}
	return p
}

// seal copies payload into a fresh buffer of exactly the needed capacity and
// seals it.
func seal(t testing.TB, out *esp.Outbound, payload []byte, nh byte) []byte {
	t.Helper()
	buf := make([]byte, esp.HeaderLen+len(payload), len(payload)+esp.Overhead(len(payload)))
	copy(buf[esp.HeaderLen:], payload)
	n, err := out.Seal(buf, len(payload), nh)
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	return buf[:n]
}

func TestRoundTrip(t *testing.T) {
	type payloadCase struct {
		name string
		p    []byte
		nh   byte
	}
	var cases []payloadCase
	for n := 0; n <= 70; n++ {
		cases = append(cases, payloadCase{"ipv4", ipv4(n), esp.NextHeaderIPv4})
	}
	cases = append(cases,
		payloadCase{"ipv4-1400", ipv4(1400), esp.NextHeaderIPv4},
		payloadCase{"ipv6-40", ipv6(40), esp.NextHeaderIPv6},
		payloadCase{"ipv6-1420", ipv6(1420), esp.NextHeaderIPv6},
		payloadCase{"ipv6-9000", ipv6(9000), esp.NextHeaderIPv6},
		payloadCase{"gre", ipv4(88), esp.NextHeaderGRE},
		payloadCase{"dummy", nil, esp.NextHeaderNoNext},
	)
	for _, c := range ciphers {
		for _, esn := range []bool{false, true} {
			name := c.String()
			if esn {
				name += "/esn"
			}
			t.Run(name, func(t *testing.T) {
				out, in := pair(t, c, esn)
				for i, pc := range cases {
					pkt := seal(t, out, pc.p, pc.nh)
					if len(pkt)%4 != 0 {
						t.Fatalf("%s/%d: packet length %d not 4-byte aligned", pc.name, len(pc.p), len(pkt))
					}
					if got := binary.BigEndian.Uint32(pkt[4:]); got != uint32(i+1) {
						t.Fatalf("%s/%d: sequence number %d, want %d", pc.name, len(pc.p), got, i+1)
					}
					if bytes.Contains(pkt, pc.p) && len(pc.p) >= 16 {
						t.Fatalf("%s/%d: plaintext visible in packet", pc.name, len(pc.p))
					}
					got, nh, err := in.Open(pkt)
					if err != nil {
						t.Fatalf("%s/%d: Open: %v", pc.name, len(pc.p), err)
					}
					if !bytes.Equal(got, pc.p) || nh != pc.nh {
						t.Fatalf("%s/%d: Open gave %d bytes nh %d, want %d bytes nh %d", pc.name, len(pc.p), len(got), nh, len(pc.p), pc.nh)
					}
				}
				so, si := out.Stats(), in.Stats()
				if so.Packets != uint64(len(cases)) || si.Packets != uint64(len(cases)) || so.Bytes != si.Bytes || si.Auth+si.Replay+si.Short+si.Padding != 0 {
					t.Fatalf("stats out %+v in %+v", so, si)
				}
			})
		}
	}
}

// TestTamper flips every byte of a sealed packet in turn: the SPI bytes give
// ErrSPI, every other byte ErrAuth, and none of the forgeries moves the
// replay window (the original still opens afterwards).
func TestTamper(t *testing.T) {
	for _, c := range ciphers {
		for _, esn := range []bool{false, true} {
			t.Run(c.String(), func(t *testing.T) {
				out, in := pair(t, c, esn)
				out.SkipSeq(5000) // so forged high sequence numbers would be "new"
				for _, p := range [][]byte{ipv4(0), ipv4(61), ipv6(100)} {
					pkt := seal(t, out, p, esp.NextHeaderIPv4)
					for i := range pkt {
						bad := bytes.Clone(pkt)
						bad[i] ^= 0xff
						_, _, err := in.Open(bad)
						want := esp.ErrAuth
						if i < 4 {
							want = esp.ErrSPI
						}
						if err != want {
							t.Fatalf("byte %d of %d flipped: %v, want %v", i, len(pkt), err, want)
						}
					}
					if _, _, err := in.Open(pkt); err != nil {
						t.Fatalf("original after forgeries: %v", err)
					}
				}
				if st := in.Stats(); st.Auth == 0 || st.Packets != 3 {
					t.Fatalf("stats %+v", st)
				}
			})
		}
	}
}

func TestReplayRejected(t *testing.T) {
	for _, c := range ciphers {
		out, in := pair(t, c, false)
		var pkts [][]byte
		for range 2000 {
			pkts = append(pkts, seal(t, out, ipv4(40), esp.NextHeaderIPv4))
		}
		open := func(i int) error {
			_, _, err := in.Open(bytes.Clone(pkts[i]))
			return err
		}
		steps := []struct {
			name string
			i    int
			want error
		}{
			{"seq 1", 0, nil},
			{"duplicate", 0, esp.ErrReplay},
			{"jump to 1500", 1499, nil},
			{"reordered inside window", 1000, nil},
			{"exactly window-1 behind", 1500 - 1024, nil},
			{"window behind", 1500 - 1025, esp.ErrReplay},
			{"duplicate reordered", 1000, esp.ErrReplay},
			{"next", 1500, nil},
		}
		for _, s := range steps {
			if err := open(s.i); err != s.want {
				t.Fatalf("%s %s (seq %d): %v, want %v", c, s.name, s.i+1, err, s.want)
			}
		}
		if st := in.Stats(); st.Replay != 3 || st.Packets != 5 {
			t.Fatalf("%s stats %+v", c, st)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	out, in := pair(t, esp.AESGCM128, false)
	good := seal(t, out, ipv4(20), esp.NextHeaderIPv4)
	other, err := esp.NewInbound(esp.AESGCM128, 0x4242, key(esp.AESGCM128, 1), false, 1024)
	if err != nil {
		t.Fatal(err)
	}
	wrongKey, err := esp.NewInbound(esp.AESGCM128, out.SPI(), key(esp.AESGCM128, 2), false, 1024)
	if err != nil {
		t.Fatal(err)
	}
	esnIn, err := esp.NewInbound(esp.AESGCM128, out.SPI(), key(esp.AESGCM128, 1), true, 1024)
	if err != nil {
		t.Fatal(err)
	}
	seq0 := bytes.Clone(good)
	binary.BigEndian.PutUint32(seq0[4:], 0)
	tests := []struct {
		name string
		in   *esp.Inbound
		pkt  []byte
		want error
	}{
		{"nil", in, nil, esp.ErrShort},
		{"header only", in, good[:esp.HeaderLen], esp.ErrShort},
		{"one short of minimum", in, good[:esp.HeaderLen+2+esp.ICVLen-1], esp.ErrShort},
		{"truncated ICV", in, bytes.Clone(good[:len(good)-1]), esp.ErrAuth},
		{"extra byte", in, append(bytes.Clone(good), 0), esp.ErrAuth},
		{"wrong SPI", other, bytes.Clone(good), esp.ErrSPI},
		{"wrong key", wrongKey, bytes.Clone(good), esp.ErrAuth},
		{"ESN SA, non-ESN packet", esnIn, bytes.Clone(good), esp.ErrAuth},
		{"sequence number 0", in, seq0, esp.ErrReplay},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := tc.in.Open(tc.pkt); err != tc.want {
				t.Fatalf("Open: %v, want %v", err, tc.want)
			}
		})
	}
	for n := range esp.HeaderLen + 2 + esp.ICVLen {
		if _, _, err := in.Open(good[:n]); err != esp.ErrShort {
			t.Fatalf("Open(%d bytes): %v, want ErrShort", n, err)
		}
	}
	if _, _, err := in.Open(good); err != nil {
		t.Fatalf("good packet after errors: %v", err)
	}
}

func TestSealShortBuffer(t *testing.T) {
	out, _ := pair(t, esp.ChaCha20Poly1305, false)
	for n := range 8 {
		need := n + esp.Overhead(n)
		if need > esp.HeaderLen+n+esp.MaxTrailer {
			t.Fatalf("Overhead(%d) exceeds MaxTrailer", n)
		}
		buf := make([]byte, esp.HeaderLen+n, need-1)
		if _, err := out.Seal(buf, n, 4); err != esp.ErrShort {
			t.Fatalf("Seal(%d) with cap %d: %v, want ErrShort", n, need-1, err)
		}
		buf = make([]byte, esp.HeaderLen+n, need)
		if l, err := out.Seal(buf, n, 4); err != nil || l != need {
			t.Fatalf("Seal(%d) with cap %d: %d, %v", n, need, l, err)
		}
	}
	if _, err := out.Seal(make([]byte, 64), -1, 4); err != esp.ErrShort {
		t.Fatalf("Seal(-1): %v", err)
	}
	if st := out.Stats(); st.Short != 9 || st.Packets != 8 {
		t.Fatalf("stats %+v", st)
	}
}

func TestSeqExhausted(t *testing.T) {
	tests := []struct {
		name  string
		esn   bool
		start uint64
		last  uint64
	}{
		{"32-bit", false, math.MaxUint32 - 2, math.MaxUint32},
		{"esn", true, math.MaxUint64 - 2, math.MaxUint64},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := key(esp.AESGCM256, 9)
			out, err := esp.NewOutboundFromState(esp.State{Cipher: esp.AESGCM256, SPI: 0x777, Key: k, ESN: tc.esn, Seq: tc.start})
			if err != nil {
				t.Fatal(err)
			}
			in, err := esp.NewInboundFromState(esp.State{Cipher: esp.AESGCM256, SPI: 0x777, Key: k, ESN: tc.esn, Seq: tc.start, Window: 1024})
			if err != nil {
				t.Fatal(err)
			}
			for seq := tc.start + 1; seq <= tc.last && seq > tc.start; seq++ {
				pkt := seal(t, out, ipv4(30), 4)
				if _, _, err := in.Open(pkt); err != nil {
					t.Fatalf("seq %#x: Open: %v", seq, err)
				}
			}
			for range 3 {
				buf := make([]byte, 100)
				if _, err := out.Seal(buf, 30, 4); err != esp.ErrSeqExhausted {
					t.Fatalf("Seal after last: %v, want ErrSeqExhausted", err)
				}
			}
			if s := out.Export().Seq; s != tc.last {
				t.Fatalf("exported seq %#x, want %#x (no wrap)", s, tc.last)
			}
			if _, err := esp.NewOutboundFromState(esp.State{Cipher: esp.AESGCM256, SPI: 1 << 20, Key: k, Seq: math.MaxUint32 + 1}); !errors.Is(err, esp.ErrSeqExhausted) {
				t.Fatalf("state beyond the 32-bit space: %v", err)
			}
		})
	}
}

func TestSkipSeq(t *testing.T) {
	out, _ := pair(t, esp.AESGCM128, false)
	seal(t, out, nil, 59)
	out.SkipSeq(100)
	pkt := seal(t, out, nil, 59)
	if got := binary.BigEndian.Uint32(pkt[4:]); got != 102 {
		t.Fatalf("after SkipSeq(100) seq %d, want 102", got)
	}
	out.SkipSeq(math.MaxUint64)
	if s := out.Export().Seq; s != math.MaxUint32 {
		t.Fatalf("SkipSeq saturates at %#x, want MaxUint32", s)
	}
	if _, err := out.Seal(make([]byte, 64), 0, 59); err != esp.ErrSeqExhausted {
		t.Fatalf("Seal after saturating SkipSeq: %v", err)
	}
}

// TestESNWrap sends across the 2^32 boundary, with reordering around it,
// and checks that the receiver infers the high half.
func TestESNWrap(t *testing.T) {
	for _, c := range ciphers {
		k := key(c, 3)
		start := uint64(math.MaxUint32 - 5)
		out, err := esp.NewOutboundFromState(esp.State{Cipher: c, SPI: 0x999, Key: k, ESN: true, Seq: start})
		if err != nil {
			t.Fatal(err)
		}
		in, err := esp.NewInboundFromState(esp.State{Cipher: c, SPI: 0x999, Key: k, ESN: true, Seq: start, Window: 1024})
		if err != nil {
			t.Fatal(err)
		}
		var pkts [][]byte
		for range 12 { // seq 2^32-5 .. 2^32+6
			pkts = append(pkts, seal(t, out, ipv6(60), esp.NextHeaderIPv6))
		}
		if lo := binary.BigEndian.Uint32(pkts[5][4:]); lo != 0 {
			t.Fatalf("%s: packet 5 carries low %d, want 0 (seq 2^32)", c, lo)
		}
		order := []int{0, 1, 6, 7, 2, 5, 3, 4, 11, 8, 10, 9}
		for _, i := range order {
			if _, _, err := in.Open(bytes.Clone(pkts[i])); err != nil {
				t.Fatalf("%s: packet %d (seq %#x): %v", c, i, start+1+uint64(i), err)
			}
		}
		for _, i := range []int{0, 5, 11} {
			if _, _, err := in.Open(bytes.Clone(pkts[i])); err != esp.ErrReplay {
				t.Fatalf("%s: replay of packet %d: %v", c, i, err)
			}
		}
		if top := in.Export().Seq; top != start+12 {
			t.Fatalf("%s: top %#x, want %#x", c, top, start+12)
		}
	}
}

func TestInferSeq(t *testing.T) {
	const w = 1024
	tests := []struct {
		name string
		top  uint64
		low  uint32
		want uint64
	}{
		{"start, first packet", 0, 1, 1},
		{"start, far ahead in subspace 0", 5, 0xfffffff0, 0xfffffff0},
		{"case A in window", 0x1_00005000, 0x5000 - 100, 0x1_00005000 - 100},
		{"case A ahead", 0x1_00005000, 0x6000, 0x1_00006000},
		{"case A window bottom", 0x1_00005000, 0x5000 - (w - 1), 0x1_00005000 - (w - 1)},
		{"case A below window is next subspace", 0x1_00005000, 0x5000 - w, 0x2_00005000 - w},
		{"case A at top of subspace wraps forward", 0xffffffff, 3, 0x1_00000003},
		{"case B old packet from previous subspace", 0x1_00000010, 0xfffffff0, 0xfffffff0},
		{"case B new packet", 0x1_00000010, 0x20, 0x1_00000020},
		{"case B window bottom in previous subspace", 0x1_00000010, 0xfffffc11, 0xfffffc11},
		{"case B below window is ahead", 0x1_00000010, 0xfffffc10, 0x1_fffffc10},
		{"case B low 0", 0x1_00000010, 0, 0x1_00000000},
		{"last subspace", 0xffffffff_fffffff0, 0xfffffff8, 0xffffffff_fffffff8},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := esp.InferSeq(tc.top, w, tc.low); got != tc.want {
				t.Fatalf("InferSeq(%#x, %d, %#x) = %#x, want %#x", tc.top, w, tc.low, got, tc.want)
			}
		})
	}
}

// TestInferSeqProperty: for every top and every true sequence number inside
// [top-W+1, top+2^32-W], the inferred value is the true one (RFC 4304 App. A).
func TestInferSeqProperty(t *testing.T) {
	const w = 1024
	tops := []uint64{w, w + 1, 0x1_00000000, 0x1_00000001, 0x1_00000000 + w - 2, 0x1_00000000 + w - 1, 0x7_fffffc00, 0x5_12345678}
	offs := []int64{-(w - 1), -(w - 2), -1, 0, 1, 2, w, 1 << 20, 1<<32 - w - 1, 1<<32 - w}
	for _, top := range tops {
		for _, off := range offs {
			seq := uint64(int64(top) + off)
			if got := esp.InferSeq(top, w, uint32(seq)); got != seq {
				t.Errorf("top %#x seq %#x (offset %d): inferred %#x", top, seq, off, got)
			}
		}
	}
}

func TestStateRoundTrip(t *testing.T) {
	for _, c := range ciphers {
		out, in := pair(t, c, true)
		var pkts [][]byte
		for range 10 {
			pkts = append(pkts, seal(t, out, ipv4(50), 4))
		}
		for _, i := range []int{0, 1, 2, 3, 4, 5, 6, 7} {
			if _, _, err := in.Open(bytes.Clone(pkts[i])); err != nil {
				t.Fatal(err)
			}
		}
		os, is := out.Export(), in.Export()
		if os.Seq != 10 || is.Seq != 8 || is.Window != 1024 || os.Cipher != c || !os.ESN || os.SPI != out.SPI() || !bytes.Equal(os.Key, key(c, 1)) {
			t.Fatalf("%s: exported out %+v in %+v", c, os, is)
		}
		os.Key[0] ^= 1 // Export returns a copy
		if out.Export().Key[0] == os.Key[0] {
			t.Fatalf("%s: Export shares the key", c)
		}
		os.Key[0] ^= 1
		out2, err := esp.NewOutboundFromState(os)
		if err != nil {
			t.Fatal(err)
		}
		in2, err := esp.NewInboundFromState(is)
		if err != nil {
			t.Fatal(err)
		}
		// Restored inbound: everything up to the exported top is gone, even
		// numbers never received (conservative), newer ones are accepted.
		for _, i := range []int{7, 0} {
			if _, _, err := in2.Open(bytes.Clone(pkts[i])); err != esp.ErrReplay {
				t.Fatalf("%s: restored SA accepted old packet %d: %v", c, i, err)
			}
		}
		for _, i := range []int{9, 8} {
			if _, _, err := in2.Open(bytes.Clone(pkts[i])); err != nil {
				t.Fatalf("%s: restored SA rejects packet %d: %v", c, i, err)
			}
		}
		// Restored outbound continues after the exported sequence number.
		out2.SkipSeq(5)
		p := seal(t, out2, ipv4(50), 4)
		if got := binary.BigEndian.Uint32(p[4:]); got != 16 {
			t.Fatalf("%s: restored outbound seq %d, want 16", c, got)
		}
		if _, _, err := in2.Open(p); err != nil {
			t.Fatalf("%s: packet of restored outbound: %v", c, err)
		}
	}
}

func TestConcurrent(t *testing.T) {
	out, in := pair(t, esp.AESGCM128, false)
	const workers, per = 4, 500
	pkts := make(chan []byte, workers*per)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range per {
				pkts <- seal(t, out, ipv4(100), 4)
			}
		})
	}
	wg.Wait()
	close(pkts)
	all := make([][]byte, 0, workers*per)
	seen := map[uint32]bool{}
	for p := range pkts {
		s := binary.BigEndian.Uint32(p[4:])
		if seen[s] {
			t.Fatalf("sequence number %d used twice", s)
		}
		seen[s] = true
		all = append(all, p)
	}
	var ok, replays sync.Map
	ch := make(chan []byte)
	for range workers {
		wg.Go(func() {
			for p := range ch {
				_, _, err := in.Open(p)
				switch err {
				case nil:
					ok.Store(binary.BigEndian.Uint32(p[4:]), true)
				case esp.ErrReplay:
					replays.Store(binary.BigEndian.Uint32(p[4:]), true)
				default:
					t.Errorf("Open: %v", err)
				}
			}
		})
	}
	for _, p := range all {
		dup := bytes.Clone(p) // before p is handed over: Open decrypts in place
		ch <- p
		ch <- dup // duplicate: exactly one of the two may pass
	}
	close(ch)
	wg.Wait()
	st := in.Stats()
	if st.Packets+st.Replay != 2*workers*per || st.Packets > workers*per {
		t.Fatalf("stats %+v", st)
	}
}

func TestAllocs(t *testing.T) {
	for _, c := range ciphers {
		for _, esn := range []bool{false, true} {
			out, in := pair(t, c, esn)
			payload := ipv4(1400)
			buf := make([]byte, esp.HeaderLen+len(payload)+esp.MaxTrailer)
			pkts := make([][]byte, 201)
			for i := range pkts {
				pkts[i] = make([]byte, len(buf))
			}
			j := 0
			sealAllocs := testing.AllocsPerRun(200, func() {
				copy(buf[esp.HeaderLen:], payload)
				n, err := out.Seal(buf, len(payload), 4)
				if err != nil {
					t.Fatal(err)
				}
				pkts[j] = pkts[j][:copy(pkts[j], buf[:n])]
				j++
			})
			// Each run opens a different packet, so every one takes the full
			// decrypt path (a replay would stop before the AEAD).
			i := 0
			var openErr error
			openAllocs := testing.AllocsPerRun(200, func() {
				_, _, err := in.Open(pkts[i])
				i++
				if err != nil {
					openErr = err
				}
			})
			if openErr != nil {
				t.Fatal(openErr)
			}
			if st := in.Stats(); st.Packets != 201 {
				t.Fatalf("%s: opened %d packets, want 201", c, st.Packets)
			}
			if sealAllocs != 0 || openAllocs != 0 {
				t.Errorf("%s esn=%v: Seal %.1f allocs, Open %.1f allocs per packet, want 0", c, esn, sealAllocs, openAllocs)
			}
		}
	}
}
