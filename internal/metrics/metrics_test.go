package metrics_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/havpn/havpn/internal/metrics"
)

func TestServeBuildInfo(t *testing.T) {
	reg := metrics.NewRegistry("v9.9.9")
	s, err := metrics.Listen("127.0.0.1:0", reg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	resp, err := http.Get("http://" + s.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(b), `havpn_build_info{version="v9.9.9"} 1`) {
		t.Fatalf("build info missing from /metrics:\n%.500s", b)
	}
}

func TestListenBadAddress(t *testing.T) {
	_, err := metrics.Listen("not-an-address", metrics.NewRegistry("x"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || !strings.Contains(err.Error(), "not-an-address") {
		t.Fatalf("err = %v, want one naming the address", err)
	}
}
