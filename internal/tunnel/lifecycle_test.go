package tunnel

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/havpn/havpn/internal/config"
	"github.com/havpn/havpn/internal/tunnel/tun"
	"github.com/havpn/havpn/internal/tunnel/tun/tuntest"
)

func newSolo(t *testing.T) *Manager {
	t.Helper()
	cfg := tunnelCfg(pairOpts{keepalive: config.TunnelKeepalive{Interval: config.Duration(10 * time.Millisecond), Dead: config.Duration(50 * time.Millisecond)}}, true)
	m, err := New([]config.Tunnel{cfg}, Options{
		CreateTUN: func(c tun.Config) (tun.Device, error) { return tuntest.New(c.Name, 8, 8), nil },
		ListenUDP: newFakeNet().listen,
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestLifecycle: Run until cancel, Close idempotent, no goroutine left,
// Run after Close refused.
func TestLifecycle(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Run("cancel", func(t *testing.T) {
		m := newSolo(t)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- m.Run(ctx) }()
		time.Sleep(50 * time.Millisecond)
		if err := m.Run(ctx); err == nil {
			t.Error("second Run accepted")
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("close while running", func(t *testing.T) {
		m := newSolo(t)
		done := make(chan error, 1)
		go func() { done <- m.Run(context.Background()) }()
		time.Sleep(50 * time.Millisecond)
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return after Close")
		}
		<-m.Done()
	})
	t.Run("close before run", func(t *testing.T) {
		m := newSolo(t)
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		if err := m.Run(context.Background()); !errors.Is(err, ErrClosed) {
			t.Fatalf("Run after Close = %v", err)
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines left (had %d):\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}
