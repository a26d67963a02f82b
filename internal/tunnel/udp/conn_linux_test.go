package udp

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
)

func pair(t testing.TB, addr string, o Options) (a, b *Conn) {
	t.Helper()
	var err error
	a, err = Listen(netip.MustParseAddrPort(addr), o)
	if err != nil {
		t.Fatal(err)
	}
	b, err = Listen(netip.MustParseAddrPort(addr), o)
	if err != nil {
		a.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func newMsgs(n, size int) []Message {
	m := make([]Message, n)
	for i := range m {
		m[i].Buf = make([]byte, size)
	}
	return m
}

// readAll reads until want datagrams arrived, splitting GRO runs.
func readAll(t *testing.T, c *Conn, want int) (dgrams [][]byte, from netip.AddrPort, coalesced bool) {
	t.Helper()
	msgs := newMsgs(16, 65535)
	done := make(chan struct{})
	go func() {
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			c.Close()
		}
	}()
	defer close(done)
	for len(dgrams) < want {
		n, err := c.ReadBatch(msgs)
		if err != nil {
			t.Fatalf("after %d datagrams: %v", len(dgrams), err)
		}
		for _, m := range msgs[:n] {
			from = m.Addr
			seg := m.Segment
			if seg == 0 {
				seg = m.N
			} else {
				coalesced = true
			}
			for lo := 0; lo < m.N; lo += seg {
				dgrams = append(dgrams, bytes.Clone(m.Buf[lo:min(lo+seg, m.N)]))
			}
		}
	}
	return dgrams, from, coalesced
}

func TestBatch(t *testing.T) {
	for _, tc := range []struct {
		name string
		addr string
		o    Options
	}{
		{"v4 offloads", "127.0.0.1:0", Options{}},
		{"v4 no offloads", "127.0.0.1:0", Options{NoGSO: true, NoGRO: true}},
		{"v6 offloads", "[::1]:0", Options{}},
		{"v6 no gso small batch", "[::1]:0", Options{NoGSO: true, Batch: 8}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := pair(t, tc.addr, tc.o)
			gso, gro := a.Offloads()
			t.Logf("gso %v gro %v", gso, gro)
			// One run of 10 segments of 1000 bytes (the last 500), then
			// 3 single datagrams.
			run := make([]byte, 9500)
			for i := range run {
				run[i] = byte(i / 1000)
			}
			out := []Message{{Buf: run, Addr: b.LocalAddr(), Segment: 1000}}
			for i := range 3 {
				out = append(out, Message{Buf: bytes.Repeat([]byte{byte(100 + i)}, 200+i), Addr: b.LocalAddr()})
			}
			n, err := a.WriteBatch(out)
			if err != nil || n != len(out) {
				t.Fatalf("WriteBatch = %d, %v", n, err)
			}
			got, from, _ := readAll(t, b, 13)
			if from != a.LocalAddr() {
				t.Errorf("from %s, want %s", from, a.LocalAddr())
			}
			if len(got) != 13 {
				t.Fatalf("%d datagrams, want 13", len(got))
			}
			for i := range 10 {
				want := 1000
				if i == 9 {
					want = 500
				}
				if len(got[i]) != want || got[i][0] != byte(i) || got[i][want-1] != byte(i) {
					t.Errorf("datagram %d: len %d first %d", i, len(got[i]), got[i][0])
				}
			}
			for i := range 3 {
				if !bytes.Equal(got[10+i], out[1+i].Buf) {
					t.Errorf("single %d differs", i)
				}
			}
		})
	}
}

func TestFamilyMismatch(t *testing.T) {
	a, b := pair(t, "127.0.0.1:0", Options{})
	out := []Message{
		{Buf: []byte("x"), Addr: netip.MustParseAddrPort("[::1]:9")},
		{Buf: []byte("ok"), Addr: b.LocalAddr()},
	}
	n, err := a.WriteBatch(out)
	if !errors.Is(err, ErrFamily) || n != 2 {
		t.Fatalf("WriteBatch = %d, %v; want 2, ErrFamily", n, err)
	}
	if !out[0].Failed || out[1].Failed {
		t.Errorf("Failed = %v, %v; want true, false", out[0].Failed, out[1].Failed)
	}
	got, _, _ := readAll(t, b, 1)
	if string(got[0]) != "ok" {
		t.Fatalf("got %q", got[0])
	}
}

func TestClose(t *testing.T) {
	a, _ := pair(t, "127.0.0.1:0", Options{})
	errc := make(chan error)
	go func() {
		_, err := a.ReadBatch(newMsgs(4, 2000))
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("ReadBatch after Close = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ReadBatch not woken by Close")
	}
	if _, err := a.WriteBatch([]Message{{Buf: []byte("x"), Addr: a.LocalAddr()}}); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("WriteBatch after Close = %v", err)
	}
}

func TestListenNeedsAddress(t *testing.T) {
	if _, err := Listen(netip.MustParseAddrPort("0.0.0.0:4500"), Options{}); err == nil {
		t.Fatal("wildcard accepted")
	}
}

func TestGROSize(t *testing.T) {
	for _, tc := range []struct {
		name string
		oob  []byte
		want int
	}{
		{"empty", nil, 0},
		{"short", make([]byte, 8), 0},
		{"zero len", make([]byte, 32), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := groSize(tc.oob); got != tc.want {
				t.Fatalf("groSize = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestNoAllocs(t *testing.T) {
	a, b := pair(t, "127.0.0.1:0", Options{})
	out := []Message{{Buf: make([]byte, 1400), Addr: b.LocalAddr()}, {Buf: make([]byte, 14000), Addr: b.LocalAddr(), Segment: 1400}}
	in := newMsgs(16, 65535)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := a.WriteBatch(out); err != nil {
			t.Fatal(err)
		}
		got := 0
		for got < 11 {
			n, err := b.ReadBatch(in)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range in[:n] {
				if m.Segment > 0 {
					got += (m.N + m.Segment - 1) / m.Segment
				} else {
					got++
				}
			}
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per batch", allocs)
	}
}

func BenchmarkWriteRead(b *testing.B) {
	x, y := pair(b, "127.0.0.1:0", Options{})
	out := make([]Message, 32)
	for i := range out {
		out[i] = Message{Buf: make([]byte, 1400), Addr: y.LocalAddr()}
	}
	in := newMsgs(64, 65535)
	b.ReportAllocs()
	b.SetBytes(32 * 1400)
	for b.Loop() {
		if _, err := x.WriteBatch(out); err != nil {
			b.Fatal(err)
		}
		got := 0
		for got < 32 {
			n, err := y.ReadBatch(in)
			if err != nil {
				b.Fatal(err)
			}
			for _, m := range in[:n] {
				if m.Segment > 0 {
					got += (m.N + m.Segment - 1) / m.Segment
				} else {
					got++
				}
			}
		}
	}
}
