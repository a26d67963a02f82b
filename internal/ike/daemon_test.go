package ike

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// syncInstaller is a recInstaller safe for the daemon's goroutine and the
// test's.
type syncInstaller struct {
	mu     sync.Mutex
	rec    *recInstaller
	notify chan struct{} // optional: poked after every change
}

func (s *syncInstaller) poke() {
	if s.notify != nil {
		select {
		case s.notify <- struct{}{}:
		default:
		}
	}
}

func (s *syncInstaller) InstallChild(c Child) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.poke()
	return s.rec.InstallChild(c)
}

func (s *syncInstaller) ActivateOutbound(t string, out uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rec.ActivateOutbound(t, out)
}

func (s *syncInstaller) RemoveChild(t string, in, out uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.poke()
	return s.rec.RemoveChild(t, in, out)
}

func (s *syncInstaller) snapshot() map[uint32]Child {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[uint32]Child{}
	for k, v := range s.rec.installed {
		m[k] = v
	}
	return m
}

// TestDaemonsOverLoopback runs two daemons over real UDP sockets on two
// loopback addresses (no root needed: unprivileged ports).
func TestDaemonsOverLoopback(t *testing.T) {
	la, lb := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	ca := pskConfig(la, lb, "@a.example.net", "@b.example.net", true)
	cb := pskConfig(lb, la, "@b.example.net", "@a.example.net", false)
	for _, c := range []*Config{&ca, &cb} {
		c.Port, c.NATPort = 25500, 25501
	}
	ia, ib := &syncInstaller{rec: newRecInstaller()}, &syncInstaller{rec: newRecInstaller()}
	da, err := NewDaemon(ca, DaemonOptions{Installer: ia, ListenAddrs: []netip.Addr{la}, Log: testLogger(t, "a")})
	if err != nil {
		t.Fatal(err)
	}
	db, err := NewDaemon(cb, DaemonOptions{Installer: ib, ListenAddrs: []netip.Addr{lb}, Log: testLogger(t, "b")})
	if err != nil {
		t.Fatal(err)
	}
	ctxA, cancelA := context.WithCancel(context.Background())
	ctxB, cancelB := context.WithCancel(context.Background())
	defer cancelA()
	defer cancelB()
	errs := make(chan error, 2)
	go func() { errs <- db.Run(ctxB) }()
	go func() { errs <- da.Run(ctxA) }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		sas, err := da.SAs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(sas) == 1 && sas[0].State == "ESTABLISHED" && len(ib.snapshot()) == 1 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("not established: %+v", sas)
		case <-time.After(20 * time.Millisecond):
		}
	}
	a, b := ia.snapshot(), ib.snapshot()
	for in, c := range a {
		pc, ok := b[c.Out.SPI]
		if !ok || pc.Out.SPI != in || string(pc.In.Key) != string(c.Out.Key) {
			t.Fatalf("children do not match:\n%+v\n%+v", a, b)
		}
		if c.Remote != netip.AddrPortFrom(lb, 25501) || pc.Remote != netip.AddrPortFrom(la, 25501) {
			t.Fatalf("child endpoints %s / %s, want the NAT-T port", c.Remote, pc.Remote)
		}
	}
	// Stopping A deletes the SA on B too.
	cancelA()
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	for len(ib.snapshot()) != 0 {
		select {
		case <-ctx.Done():
			t.Fatal("B kept its child SA after A shut down")
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancelB()
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	if _, err := da.SAs(context.Background()); err != ErrClosed {
		t.Fatalf("SAs after Run returned: %v", err)
	}
}

func TestDaemonExternalNATPort(t *testing.T) {
	// The dataplane owns the NAT-T port: IKE on it goes through
	// HandlePacket and SendNAT. Loop two daemons' NAT-T traffic directly.
	la, lb := netip.MustParseAddr("127.0.0.3"), netip.MustParseAddr("127.0.0.4")
	ca := pskConfig(la, lb, "@a.example.net", "@b.example.net", true)
	cb := pskConfig(lb, la, "@b.example.net", "@a.example.net", false)
	for _, c := range []*Config{&ca, &cb} {
		c.Port, c.NATPort = 25510, 25511
	}
	var da, db *Daemon
	route := func(to netip.Addr) *Daemon {
		if to == la {
			return da
		}
		return db
	}
	sendNAT := func(payload []byte, local, remote netip.AddrPort) error {
		if len(payload) > 1 && (payload[0]|payload[1]|payload[2]|payload[3]) != 0 {
			t.Errorf("IKE on the NAT-T port without the non-ESP marker")
		}
		route(remote.Addr()).HandlePacket(payload, local, remote)
		return nil
	}
	var err error
	ia, ib := &syncInstaller{rec: newRecInstaller()}, &syncInstaller{rec: newRecInstaller()}
	if da, err = NewDaemon(ca, DaemonOptions{Installer: ia, ListenAddrs: []netip.Addr{la}, SendNAT: sendNAT}); err != nil {
		t.Fatal(err)
	}
	if db, err = NewDaemon(cb, DaemonOptions{Installer: ib, ListenAddrs: []netip.Addr{lb}, SendNAT: sendNAT}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, d := range []*Daemon{da, db} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := d.Run(ctx); err != nil {
				t.Error(err)
			}
		}()
	}
	defer func() { cancel(); wg.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for len(ia.snapshot()) != 1 || len(ib.snapshot()) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("not established through the external NAT-T port")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
