package linkmon_test

import (
	"context"
	"log/slog"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/havpn/havpn/internal/lab/labtest"
	"github.com/havpn/havpn/internal/linkmon"
	"github.com/havpn/havpn/internal/netnsutil"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// lab is a monitored namespace "a" and a switch namespace "b" holding the
// peers of a's veths, so that setting a peer down is a cable pull.
type lab struct {
	a, b   string
	ha, hb *netlink.Handle
}

func newLab(t *testing.T) *lab {
	t.Helper()
	labtest.RequireRoot(t)
	pfx := labtest.Prefix(t)
	l := &lab{a: labtest.NewNetNS(t, pfx+"a"), b: labtest.NewNetNS(t, pfx+"b")}
	var err error
	if l.ha, err = netnsutil.Handle(l.a); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.ha.Close)
	if l.hb, err = netnsutil.Handle(l.b); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.hb.Close)
	return l
}

// cable adds veth name (in a) <-> name+"p" (in b), both up.
func (l *lab) cable(t *testing.T, name string) {
	t.Helper()
	nsb, err := netns.GetFromName(l.b)
	if err != nil {
		t.Fatal(err)
	}
	defer nsb.Close()
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "p", PeerNamespace: netlink.NsFd(int(nsb))}
	if err := l.ha.LinkAdd(v); err != nil {
		t.Fatalf("adding veth %s: %v", name, err)
	}
	l.set(t, l.ha, name, true)
	l.set(t, l.hb, name+"p", true)
}

func (l *lab) set(t *testing.T, h *netlink.Handle, name string, up bool) {
	t.Helper()
	link, err := h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	if up {
		err = h.LinkSetUp(link)
	} else {
		err = h.LinkSetDown(link)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// next waits for the first event on iface that satisfies cond.
func next(t *testing.T, ev <-chan linkmon.Event, iface string, within time.Duration, what string, cond func(linkmon.Event) bool) linkmon.Event {
	t.Helper()
	timeout := time.After(within)
	for {
		select {
		case e, ok := <-ev:
			if !ok {
				t.Fatalf("events closed while waiting for %s %s", iface, what)
			}
			t.Logf("event %+v", e)
			if e.Iface == iface && cond(e) {
				return e
			}
		case <-timeout:
			t.Fatalf("no %s event for %s within %s", what, iface, within)
		}
	}
}

func TestMonitorCarrier(t *testing.T) {
	tests := []struct {
		name string
		// pad shifts mon0's ifindex away from its peer's, which makes the
		// kernel report its carrier changes as urgent (at once).
		pad  bool
		poll time.Duration
		max  time.Duration
	}{
		{name: "urgent veth, notifications only", pad: true, poll: -1, max: 50 * time.Millisecond},
		{name: "same ifindex as peer, bounded by the poll", pad: false, poll: 10 * time.Millisecond, max: 60 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { testCarrier(t, tc.pad, tc.poll, tc.max) })
	}
}

func testCarrier(t *testing.T, pad bool, poll, maxLatency time.Duration) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		// Run and the netlink receiver it started must be gone.
		deadline := time.Now().Add(time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				t.Errorf("%d goroutines after the monitor stopped, %d before", runtime.NumGoroutine(), before)
				return
			}
			time.Sleep(time.Millisecond)
		}
	})
	l := newLab(t)
	if pad {
		v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "pad0"}, PeerName: "pad1"}
		if err := l.ha.LinkAdd(v); err != nil {
			t.Fatal(err)
		}
	}
	l.cable(t, "mon0")
	reg := prometheus.NewRegistry()
	m, err := linkmon.New([]string{"mon0", "late0"}, linkmon.Options{
		NetNS: l.a, Log: slog.New(slog.NewTextHandler(os.Stderr, nil)), Registerer: reg, Poll: poll})
	if err != nil {
		t.Fatal(err)
	}
	ev := m.Events()
	// Initial state, one event per interface, before Run.
	for range 2 {
		select {
		case e := <-ev:
			switch e.Iface {
			case "mon0":
				if !e.Present || !e.AdminUp {
					t.Errorf("initial mon0 = %+v, want present and up", e)
				}
			case "late0":
				if e.Present || e.Carrier || e.OperState != linkmon.OperNotPresent {
					t.Errorf("initial late0 = %+v, want not present", e)
				}
			}
		default:
			t.Fatal("initial state not reported")
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	runErr := make(chan error, 1)
	go func() { runErr <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-runErr; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	if s, _ := m.State("mon0"); !s.Carrier {
		next(t, ev, "mon0", 2*time.Second, "carrier up", func(e linkmon.Event) bool { return e.Carrier })
	}

	// Let the first subscription's dump go by, so that it cannot pass for
	// a notification.
	time.Sleep(50 * time.Millisecond)
	for i := range 3 {
		start := time.Now()
		l.set(t, l.hb, "mon0p", false)
		e := next(t, ev, "mon0", time.Second, "carrier lost", func(e linkmon.Event) bool { return !e.Carrier })
		lat := e.At.Sub(start)
		t.Logf("round %d: carrier loss seen after %s (oper %s)", i, lat, e.OperState)
		if lat > maxLatency {
			t.Errorf("carrier loss seen after %s, want a few ms", lat)
		}
		if s, _ := m.State("mon0"); s.Carrier {
			t.Error("State(mon0) still has carrier")
		}
		if got := carrierGauge(t, reg, "mon0"); got != 0 {
			t.Errorf("carrier gauge = %v, want 0", got)
		}
		start = time.Now()
		l.set(t, l.hb, "mon0p", true)
		e = next(t, ev, "mon0", time.Second, "carrier back", func(e linkmon.Event) bool { return e.Carrier })
		t.Logf("round %d: carrier back seen after %s", i, e.At.Sub(start))
		if e.At.Sub(start) > maxLatency {
			t.Errorf("carrier return seen after %s, want a few ms", e.At.Sub(start))
		}
	}

	// An interface that did not exist appears, then goes away.
	l.cable(t, "late0")
	next(t, ev, "late0", time.Second, "present with carrier", func(e linkmon.Event) bool { return e.Present && e.Carrier })
	link, err := l.ha.LinkByName("late0")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.ha.LinkDel(link); err != nil {
		t.Fatal(err)
	}
	next(t, ev, "late0", time.Second, "gone", func(e linkmon.Event) bool { return !e.Present })
	if s, ok := m.State("late0"); !ok || s.Present {
		t.Errorf("State(late0) = %+v, %v; want monitored and absent", s, ok)
	}
	if _, ok := m.State("other0"); ok {
		t.Error("State reports an unmonitored interface")
	}

	cancel()
	if err := <-runErr; err != nil {
		t.Fatalf("Run: %v", err)
	}
	runErr <- nil // for the cleanup
	for range ev {
	}
	if err := m.Run(context.Background()); err != linkmon.ErrAlreadyRunning {
		t.Fatalf("second Run = %v, want ErrAlreadyRunning", err)
	}
}

func carrierGauge(t *testing.T, g prometheus.Gatherer, iface string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "havpn_linkmon_carrier" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == iface {
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no havpn_linkmon_carrier{iface=%q}", iface)
	return 0
}
