package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
)

// FuzzDispatch feeds arbitrary bytes as a request: the server must always
// answer with a well-formed response and never panic.
func FuzzDispatch(f *testing.F) {
	f.Add([]byte(`{"version":1,"command":"status"}`))
	f.Add([]byte(`{"version":2,"command":"status"}`))
	f.Add([]byte(`{"version":1,"command":"echo","args":{"a":1}}`))
	f.Add([]byte(`{`))
	f.Add([]byte{0xff, 0x00})
	dir := f.TempDir()
	s, err := Listen(filepath.Join(dir, "f.sock"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		f.Fatal(err)
	}
	defer s.ln.Close()
	s.Handle("status", func(context.Context, json.RawMessage) (any, error) { return "ok", nil })
	s.Handle("echo", func(_ context.Context, a json.RawMessage) (any, error) { return a, nil })
	f.Fuzz(func(t *testing.T, in []byte) {
		a, b := net.Pipe()
		go func() { a.Write(in); a.Close() }()
		resp := s.dispatch(context.Background(), b)
		if (resp.Error == nil) == (resp.Data == nil) {
			t.Fatalf("response must carry exactly one of error and data: %+v", resp)
		}
		if resp.Error != nil && resp.Error.Code == "" {
			t.Fatal("error without code")
		}
		var buf bytes.Buffer
		if err := json.NewEncoder(&buf).Encode(resp); err != nil {
			t.Fatal(err)
		}
	})
}
