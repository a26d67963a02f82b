package tunnel

import (
	"testing"
	"time"

	"github.com/havpn/havpn/internal/config"
)

func TestLiveness(t *testing.T) {
	ka := config.TunnelKeepalive{Interval: config.Duration(20 * time.Millisecond), Dead: config.Duration(300 * time.Millisecond)}
	a, b := newPair(t, pairOpts{keepalive: ka})
	events, cancel := a.m.Subscribe(4)
	defer cancel()
	next := func(want bool) {
		t.Helper()
		select {
		case e := <-events:
			if e.Up != want || e.Tunnel != "gre-a" {
				t.Fatalf("event %+v, want up=%v", e, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no event up=%v", want)
		}
	}
	// Keepalives alone bring both sides up.
	next(true)
	waitFor(t, "b up", func() bool { return b.m.Tunnel("gre-b").Up() })
	if st := a.m.Status()[0]; st.KeepalivesSent == 0 || st.KeepalivesReceived == 0 {
		t.Fatalf("status %s sent %d received %d", st.State, st.KeepalivesSent, st.KeepalivesReceived)
	}
	// b goes silent: a goes down (after any flaps a loaded machine caused).
	b.m.Close()
	deadline := time.After(5 * time.Second)
	for down := false; !down; {
		select {
		case e := <-events:
			down = !e.Up && !a.m.Tunnel("gre-a").Up()
		case <-deadline:
			t.Fatal("no down event after the peer stopped")
		}
	}
	if a.m.Tunnel("gre-a").Up() || a.m.Status()[0].State != "down" {
		t.Fatal("still up")
	}
}

func TestLivenessTick(t *testing.T) {
	a, _ := newPair(t, pairOpts{})
	tn := a.m.Tunnel("gre-a")
	t0 := time.Unix(1000, 0)
	steps := []struct {
		name string
		at   time.Duration
		seen bool
		up   bool
	}{
		{"silent start stays down", 0, false, false},
		{"first packet", 100 * time.Millisecond, true, true},
		{"silent within dead", 500 * time.Millisecond, false, true},
		{"silent for dead", 600 * time.Millisecond, false, false},
		{"back", 700 * time.Millisecond, true, true},
	}
	for _, s := range steps {
		tn.rxSeen.Store(s.seen)
		tn.tick(t0.Add(s.at), 500*time.Millisecond)
		if tn.Up() != s.up {
			t.Fatalf("%s: up=%v", s.name, tn.Up())
		}
	}
	if n := tn.c.stateChanges.Load(); n != 3 {
		t.Errorf("%d state changes, want 3", n)
	}
}

func TestSubscribeSlowReader(t *testing.T) {
	a, _ := newPair(t, pairOpts{})
	ch, cancel := a.m.Subscribe(1)
	defer cancel()
	a.m.publish(Event{Tunnel: "x", Up: true})
	a.m.publish(Event{Tunnel: "x", Up: false})
	if e := <-ch; e.Up {
		t.Fatal("slow subscriber got the old event, not the newest")
	}
}
