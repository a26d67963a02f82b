package lab

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// loopbackStream starts a stream over 127.0.0.1 in the test's own
// namespace: no root needed.
func loopbackStream(t *testing.T, o StreamOptions) *RunningStream {
	t.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	o.Addr = netip.MustParseAddr("127.0.0.1")
	o.Port = ln.Addr().(*net.TCPAddr).Port
	if err := o.defaults(); err != nil {
		t.Fatal(err)
	}
	dial := func(to netip.AddrPort) (net.Conn, error) { return net.Dial("tcp", to.String()) }
	s, err := startStream(context.Background(), ln, dial, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop() })
	return s
}

// TestStreamLoopback: a stream nothing happens to survives with every
// byte accounted for; one whose receiving end is reset does not.
func TestStreamLoopback(t *testing.T) {
	for _, tc := range []struct {
		name     string
		abort    bool
		survived bool
		why      string
	}{
		{name: "quiet", survived: true},
		{name: "receiver reset", abort: true, why: "sender: writing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := loopbackStream(t, StreamOptions{From: "a", To: "b", Drain: 2 * time.Second})
			time.Sleep(200 * time.Millisecond)
			if tc.abort {
				s.Abort()
				time.Sleep(100 * time.Millisecond)
			}
			r := s.Stop()
			t.Logf("%+v", r)
			if r.Survived != tc.survived || !strings.Contains(r.Why, tc.why) {
				t.Fatalf("survived %v (%q), want %v (%q)", r.Survived, r.Why, tc.survived, tc.why)
			}
			if r.ChunksSent < 20 || r.BytesSent != int64(r.ChunksSent)*64 {
				t.Errorf("sent %d chunks, %d bytes in 200 ms at 1 ms", r.ChunksSent, r.BytesSent)
			}
			if tc.survived && (r.BytesReceived != r.BytesSent || r.ChunksReceived != r.ChunksSent) {
				t.Errorf("received %d chunks %d bytes of %d %d", r.ChunksReceived, r.BytesReceived, r.ChunksSent, r.BytesSent)
			}
			if again := s.Stop(); again != r {
				t.Error("a second Stop returned another result")
			}
		})
	}
}

// TestStreamRecvAccounting checks the receiver's order, damage and stall
// checks on made-up reads.
func TestStreamRecvAccounting(t *testing.T) {
	const size = 20
	chunk := func(seq uint64, at time.Duration) []byte {
		b := make([]byte, size)
		fillChunk(b, seq, at)
		return b
	}
	cat := func(bs ...[]byte) []byte {
		var out []byte
		for _, b := range bs {
			out = append(out, b...)
		}
		return out
	}
	damaged := chunk(1, 0)
	damaged[size-1]++
	type read struct {
		b  []byte
		at time.Duration
	}
	ms := time.Millisecond
	for _, tc := range []struct {
		name   string
		reads  []read
		chunks int
		bad    string
		stall  time.Duration
		from   time.Duration
		delay  time.Duration
	}{
		{name: "in order", reads: []read{{chunk(0, 0), ms}, {chunk(1, ms), 2 * ms}}, chunks: 2, stall: ms, delay: ms},
		{name: "split across reads", reads: []read{{cat(chunk(0, 0), chunk(1, ms)[:5]), 3 * ms}, {chunk(1, ms)[5:], 4 * ms}},
			chunks: 2, stall: 3 * ms, delay: 3 * ms},
		{name: "gap", reads: []read{{chunk(0, 0), ms}, {chunk(2, 2*ms), 3 * ms}}, chunks: 2, bad: "chunk 2 arrived where 1 was due",
			stall: 2 * ms, from: ms, delay: ms},
		{name: "damaged", reads: []read{{cat(chunk(0, 0), damaged), ms}}, chunks: 2, bad: "chunk 1 damaged", stall: ms, delay: ms},
		{name: "stall", reads: []read{{chunk(0, 0), ms}, {chunk(1, ms), 2 * ms}, {chunk(2, 2*ms), 900 * ms}},
			chunks: 3, stall: 898 * ms, from: 2 * ms, delay: 898 * ms},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := streamRecv{chunk: size}
			var n int64
			for _, rd := range tc.reads {
				r.consume(rd.b, rd.at)
				n += int64(len(rd.b))
			}
			var bad string
			if r.bad != nil {
				bad = r.bad.Error()
			}
			if r.chunks != tc.chunks || r.bytes != n || bad != tc.bad {
				t.Errorf("chunks %d bytes %d bad %q, want %d %d %q", r.chunks, r.bytes, bad, tc.chunks, n, tc.bad)
			}
			if r.stall != tc.stall || r.stallStart != tc.from || r.maxDelay != tc.delay {
				t.Errorf("stall %v from %v, max delay %v; want %v from %v, %v", r.stall, r.stallStart, r.maxDelay, tc.stall, tc.from, tc.delay)
			}
		})
	}
}

// TestStreamVerdict: what makes a stream not survive.
func TestStreamVerdict(t *testing.T) {
	for _, tc := range []struct {
		name string
		tx   streamSend
		rx   streamRecv
		want string
	}{
		{name: "survived", tx: streamSend{bytes: 10}, rx: streamRecv{bytes: 10, eof: true}},
		{name: "bytes missing", tx: streamSend{bytes: 10}, rx: streamRecv{bytes: 6, eof: true}, want: "6 of 10 bytes received"},
		{name: "no close", tx: streamSend{bytes: 10}, rx: streamRecv{bytes: 10}, want: "10 of 10 bytes received"},
		{name: "sender error", tx: streamSend{bytes: 10, err: net.ErrClosed}, rx: streamRecv{bytes: 10, eof: true}, want: "sender: "},
		{name: "out of order", tx: streamSend{bytes: 10}, rx: streamRecv{bytes: 10, eof: true, bad: net.ErrClosed}, want: "receiver: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := verdict(&tc.tx, &tc.rx)
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("verdict %q, want %q", got, tc.want)
			}
		})
	}
}

// TestStreamInLab runs a stream from s1host to s1gw1's LAN address in the
// lab (no daemons): it survives nothing happening and a 1.5 s cable pull
// on the receiver (reporting the stall), and does not survive when the
// cable is still out as it is stopped.
func TestStreamInLab(t *testing.T) {
	l := upForTest(t)
	ctx := context.Background()
	o := StreamOptions{From: "s1host", To: "s1gw1", Addr: netip.MustParseAddr("192.168.1.2")}
	for _, tc := range []struct {
		name     string
		cut      time.Duration // cable out for this long; 0: not pulled
		plug     bool          // put it back before Stop
		drain    time.Duration
		survived bool
		minStall float64
	}{
		{name: "quiet", survived: true},
		{name: "cable out 1.5s", cut: 1500 * time.Millisecond, plug: true, survived: true, minStall: 1400},
		{name: "cable still out", cut: 500 * time.Millisecond, drain: time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := o
			o.Drain = tc.drain
			s, err := l.StartStream(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(300 * time.Millisecond)
			if tc.cut > 0 {
				pullCable(t, l, tc.cut, tc.plug)
			}
			time.Sleep(300 * time.Millisecond)
			r := s.Stop()
			t.Logf("%+v", r)
			if r.Survived != tc.survived {
				t.Fatalf("survived %v (%s), want %v", r.Survived, r.Why, tc.survived)
			}
			if r.Survived && (r.BytesReceived != r.BytesSent || r.BytesSent == 0) {
				t.Errorf("survived with %d of %d bytes", r.BytesReceived, r.BytesSent)
			}
			if !r.Survived && r.BytesReceived >= r.BytesSent {
				t.Errorf("not survived (%s) yet %d of %d bytes came", r.Why, r.BytesReceived, r.BytesSent)
			}
			if r.LongestStallMS < tc.minStall {
				t.Errorf("longest stall %.1f ms, want at least %.0f", r.LongestStallMS, tc.minStall)
			}
		})
	}
}

// pullCable unplugs s1gw1's lan0 for d, then plugs it back if plug (or
// when the test ends).
func pullCable(t *testing.T, l *Lab, d time.Duration, plug bool) {
	t.Helper()
	if err := l.Unplug("s1gw1", "lan0"); err != nil {
		t.Fatal(err)
	}
	plugBack := func() {
		if err := l.Plug("s1gw1", "lan0"); err != nil {
			t.Error(err)
		}
	}
	time.Sleep(d)
	if !plug {
		t.Cleanup(plugBack)
		return
	}
	plugBack()
}
