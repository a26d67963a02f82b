package statesync

import (
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"
)

func TestSyncOverLoopback(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := New(Options{Log: log, Node: 1, Key: testKey, Listen: netip.MustParseAddrPort("127.0.0.1:0"),
		Peer: netip.MustParseAddrPort("127.0.0.1:9"), Interval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	bAddr := netip.MustParseAddrPort("127.0.0.1:0")
	b, err := New(Options{Log: log, Node: 2, Key: testKey, Listen: bAddr,
		Peer: a.conn.LocalAddr().(interface{ AddrPort() netip.AddrPort }).AddrPort(), Interval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	a.o.Peer = b.conn.LocalAddr().(interface{ AddrPort() netip.AddrPort }).AddrPort()
	seq := uint64(100)
	a.o.Source = func() []Entry { seq++; return []Entry{{"gre-site2", 0x1201, seq}} }
	b.o.Source = func() []Entry { return nil }
	route := Route{netip.MustParsePrefix("192.168.2.0/24"), []netip.Addr{netip.MustParseAddr("172.16.0.2")}}
	a.o.Routes = func() []Route { return []Route{route} }
	ctx := t.Context()
	go a.Run(ctx)
	go b.Run(ctx)

	time.Sleep(50 * time.Millisecond)
	if _, ok := b.Last("gre-site2", 0x1201); ok {
		t.Fatal("standby heard counters from a peer that is not sending")
	}
	a.SetSending(true)
	deadline := time.Now().Add(2 * time.Second)
	for {
		if v, ok := b.Last("gre-site2", 0x1201); ok && v.Seq > 101 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no update within 2s: %+v", b.Status())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if rs, at := b.Routes(); len(rs) != 1 || rs[0].Prefix != route.Prefix || rs[0].NextHops[0] != route.NextHops[0] || at.IsZero() {
		t.Errorf("standby's routes %v (at %v), want %v", rs, at, route)
	}
	// A replayed older message changes nothing.
	old, _ := Marshal(Message{Node: 1, Epoch: a.epoch, Seq: 1, Entries: []Entry{{"gre-site2", 0x1201, 1}}}, testKey)
	b.conn.WriteToUDPAddrPort(old, b.conn.LocalAddr().(interface{ AddrPort() netip.AddrPort }).AddrPort())
	time.Sleep(30 * time.Millisecond)
	if v, _ := b.Last("gre-site2", 0x1201); v.Seq <= 1 {
		t.Errorf("replayed message accepted: seq %d", v.Seq)
	}
}

// TestNewStandbyGetsStateAtOnce: a standby that starts next to a sending
// peer has the state long before the peer's next periodic update (it says
// hello, the peer answers at once).
func TestNewStandbyGetsStateAtOnce(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	any0 := netip.MustParseAddrPort("127.0.0.1:0")
	a, err := New(Options{Log: log, Node: 1, Key: testKey, Listen: any0, Peer: netip.MustParseAddrPort("127.0.0.1:9"), Interval: time.Hour,
		Source: func() []Entry { return []Entry{{"gre-site2", 0x1201, 7}} }})
	if err != nil {
		t.Fatal(err)
	}
	addr := func(s *Syncer) netip.AddrPort { return s.conn.LocalAddr().(*net.UDPAddr).AddrPort() }
	b, err := New(Options{Log: log, Node: 2, Key: testKey, Listen: any0, Peer: addr(a), Interval: time.Hour,
		Source: func() []Entry { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	a.o.Peer = addr(b)
	a.SetSending(true)
	go a.Run(t.Context())
	// b was not running yet: a's first update is lost.
	time.Sleep(20 * time.Millisecond)
	buf := make([]byte, 2048)
	for b.conn.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); ; {
		if _, _, err := b.conn.ReadFromUDPAddrPort(buf); err != nil {
			break
		}
	}
	b.conn.SetReadDeadline(time.Time{})
	go b.Run(t.Context())
	deadline := time.Now().Add(2 * time.Second)
	for {
		if v, ok := b.Last("gre-site2", 0x1201); ok && v.Seq == 7 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("new standby has no state 2s after start (interval 1h): %+v", b.Status())
		}
		time.Sleep(5 * time.Millisecond)
	}
}
