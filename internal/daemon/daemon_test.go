package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/havpn/havpn/internal/config"
	"github.com/havpn/havpn/internal/ctl"
)

// fakeNotifier records what the daemon tells the service manager.
type fakeNotifier struct {
	mu     sync.Mutex
	states []string
	iv     time.Duration
}

func (f *fakeNotifier) Notify(s string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.states = append(f.states, s)
	return nil
}

func (f *fakeNotifier) WatchdogInterval() time.Duration { return f.iv }

func (f *fakeNotifier) saw(prefix string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.states {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

func writeConfig(t *testing.T, dir, body string) string {
	t.Helper()
	p := filepath.Join(dir, "havpn.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func minimalConfig(dir, level string) string {
	return fmt.Sprintf(`version: 1
node:
  name: gw1
  site: site1
log:
  level: %s
control:
  socket: %s
metrics:
  listen: 127.0.0.1:0
`, level, filepath.Join(dir, "havpn.sock"))
}

// startDaemon runs a daemon from the config at path until the test ends.
func startDaemon(t *testing.T, path string, n Notifier) (*Daemon, context.CancelFunc, <-chan error) {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("loading %s: %v", path, err)
	}
	lvl := new(slog.LevelVar)
	d, err := New(cfg, Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Level: lvl, Notify: n})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	stopped := make(chan struct{})
	go func() { done <- d.Run(ctx); close(stopped) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-stopped:
		case <-time.After(10 * time.Second):
			t.Error("daemon did not stop within 10s")
		}
	})
	select {
	case <-d.Ready():
	case err := <-done:
		t.Fatalf("daemon stopped before ready: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("daemon not ready within 5s")
	}
	return d, cancel, done
}

func TestStatusMetricsReloadStop(t *testing.T) {
	dir := t.TempDir()
	path := writeConfig(t, dir, minimalConfig(dir, "info"))
	n := &fakeNotifier{}
	d, cancel, done := startDaemon(t, path, n)
	sock := filepath.Join(dir, "havpn.sock")
	ctx := context.Background()

	var st Status
	if err := ctl.Call(ctx, sock, ctl.CmdStatus, nil, &st); err != nil {
		t.Fatalf("status: %v", err)
	}
	if st.Node != "gw1" || st.Site != "site1" || st.PID != os.Getpid() || st.Config.Hash == "" {
		t.Errorf("status = %+v", st)
	}
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("control socket mode: %v %v, want no group/other access", fi.Mode(), err)
	}
	if !n.saw("READY=1") {
		t.Errorf("no READY=1 sent: %q", n.states)
	}

	resp, err := http.Get("http://" + d.MetricsAddr().String() + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "havpn_build_info") {
		t.Errorf("metrics lack havpn_build_info:\n%.500s", body)
	}

	// A good reload changes the log level; a broken one is rejected whole.
	writeConfig(t, dir, minimalConfig(dir, "debug"))
	if err := ctl.Call(ctx, sock, ctl.CmdReload, nil, nil); err != nil {
		t.Fatalf("reload of a valid config: %v", err)
	}
	if got := d.level.Level(); got != slog.LevelDebug {
		t.Errorf("level after reload = %v, want debug", got)
	}
	hash := d.Config().Hash()
	writeConfig(t, dir, minimalConfig(dir, "debug")+"bogus_field: 1\n")
	err = ctl.Call(ctx, sock, ctl.CmdReload, nil, nil)
	var ce *ctl.Error
	if !errors.As(err, &ce) || ce.Code != ctl.CodeInvalid || !strings.Contains(ce.Message, "bogus_field") {
		t.Fatalf("broken reload: err = %v, want code invalid naming bogus_field", err)
	}
	if d.Config().Hash() != hash {
		t.Error("broken reload changed the running config")
	}
	if err := ctl.Call(ctx, sock, ctl.CmdStatus, nil, &st); err != nil || !strings.HasPrefix(st.Config.LastReload, "rejected") {
		t.Errorf("status after broken reload: %v, last_reload %q", err, st.Config.LastReload)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run returned %v after cancel, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("daemon did not stop")
	}
	if !n.saw("STOPPING=1") {
		t.Errorf("no STOPPING=1 sent: %q", n.states)
	}
}

func TestReloadRefusesRestartOnlyChanges(t *testing.T) {
	dir := t.TempDir()
	path := writeConfig(t, dir, minimalConfig(dir, "info"))
	d, _, _ := startDaemon(t, path, &fakeNotifier{})
	writeConfig(t, dir, strings.Replace(minimalConfig(dir, "info"), "name: gw1", "name: gw9", 1))
	err := d.Reload()
	if err == nil || !strings.Contains(err.Error(), "node.name") {
		t.Fatalf("Reload = %v, want node.name needs a restart", err)
	}
	if d.Config().Node.Name != "gw1" {
		t.Error("rejected reload changed node.name")
	}
}

func TestWatchdogPings(t *testing.T) {
	dir := t.TempDir()
	path := writeConfig(t, dir, minimalConfig(dir, "info"))
	n := &fakeNotifier{iv: 40 * time.Millisecond}
	startDaemon(t, path, n)
	deadline := time.Now().Add(5 * time.Second)
	for !n.saw("WATCHDOG=1") {
		if time.Now().After(deadline) {
			t.Fatal("no WATCHDOG=1 within 5s with a 40ms watchdog")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
