package ctl_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/havpn/havpn/internal/ctl"
)

func startServer(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "run", "havpn.sock")
	s, err := ctl.Listen(path, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	s.Handle("echo", func(_ context.Context, args json.RawMessage) (any, error) {
		var v map[string]string
		if err := json.Unmarshal(args, &v); err != nil {
			return nil, ctl.Errorf(ctl.CodeInvalid, "bad args: %v", err)
		}
		return v, nil
	})
	s.Handle("boom", func(context.Context, json.RawMessage) (any, error) {
		return nil, errors.New("disk on fire")
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Errorf("socket %s left behind after shutdown", path)
		}
	})
	return path
}

func TestCallRoundTrip(t *testing.T) {
	path := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var got map[string]string
	if err := ctl.Call(ctx, path, "echo", map[string]string{"a": "b"}, &got); err != nil {
		t.Fatal(err)
	}
	if got["a"] != "b" {
		t.Fatalf("echo = %v", got)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		t.Errorf("socket mode %v is open to group/other", perm)
	}
}

func TestCallErrors(t *testing.T) {
	path := startServer(t)
	ctx := context.Background()
	tests := []struct {
		name, cmd string
		args      any
		code      string
	}{
		{"unknown command", "nope", nil, ctl.CodeUnknown},
		{"handler code kept", "echo", []int{1}, ctl.CodeInvalid},
		{"plain error is internal", "boom", nil, ctl.CodeInternal},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ctl.Call(ctx, path, tc.cmd, tc.args, nil)
			var ce *ctl.Error
			if !errors.As(err, &ce) || ce.Code != tc.code {
				t.Fatalf("err = %v, want code %s", err, tc.code)
			}
		})
	}
}

func TestNoDaemon(t *testing.T) {
	err := ctl.Call(context.Background(), filepath.Join(t.TempDir(), "none.sock"), "status", nil, nil)
	if err == nil || !strings.Contains(err.Error(), "no daemon answers") {
		t.Fatalf("err = %v, want a clear no-daemon message", err)
	}
}

func TestSecondServerRefused(t *testing.T) {
	path := startServer(t)
	if _, err := ctl.Listen(path, slog.New(slog.NewTextHandler(io.Discard, nil))); err == nil {
		t.Fatal("a second daemon took over a live control socket")
	}
}
