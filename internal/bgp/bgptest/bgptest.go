// Package bgptest runs a bgp.Speaker in a child process inside a network
// namespace, for tests and benchmarks that need it in a namespace other
// than their own.
//
// GoBGP opens its listener on its server goroutine and dials from per-peer
// goroutines, so a speaker cannot be confined to a namespace from one
// locked thread (netnsutil.Do); the whole process has to live there. The
// program under test re-executes itself: its TestMain (or main) calls Main
// first, which turns the process into the helper when EnvConfig is set.
//
// The helper starts the speaker with the netlink FIB of its namespace and
// answers one-line commands on stdin with one JSON line on stdout:
//
//	neighbors, routes, fib   -> {"neighbors": [...]} / {"routes": [...]} / {"fib": {...}}
//	stop, start              -> {} after Speaker.Stop / Start
//	quit                     -> {} after Close; then it exits 0
//
// Errors come back as {"error": "..."}. The helper also exits (after
// Close) when stdin closes, so a test that dies does not leave it behind.
package bgptest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	"github.com/havpn/havpn/internal/bgp"
	"github.com/havpn/havpn/internal/config"
	"github.com/havpn/havpn/internal/fib"
	"github.com/havpn/havpn/internal/netnsutil"
)

// EnvConfig names the environment variable that holds the path of the
// helper's JSON config (a config.BGP); when set, Main runs the helper.
const EnvConfig = "HAVPN_BGPTEST_CONFIG"

// EnvLogLevel optionally sets the helper's log level (debug, info, warn).
const EnvLogLevel = "HAVPN_BGPTEST_LOG"

// EnvMemProfile optionally names a file (".PID" appended) the helper
// writes a heap profile to when told to quit, before it stops the speaker.
const EnvMemProfile = "HAVPN_BGPTEST_MEMPROFILE"

// EnvCPUProfile optionally names a file the helper writes a CPU profile of
// its whole life to (with ".PID" appended).
const EnvCPUProfile = "HAVPN_BGPTEST_CPUPROFILE"

// Main runs the helper and exits when EnvConfig is set, and returns at
// once otherwise. Call it first in TestMain or main.
func Main() {
	path := os.Getenv(EnvConfig)
	if path == "" {
		return
	}
	if err := runHelper(path, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bgptest helper:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

type reply struct {
	Neighbors []bgp.Neighbor `json:"neighbors,omitempty"`
	Routes    []bgp.Route    `json:"routes,omitempty"`
	FIB       *fib.Stats     `json:"fib,omitempty"`
	Error     string         `json:"error,omitempty"`
}

func runHelper(path string, in io.Reader, out io.Writer) error {
	if p := os.Getenv(EnvCPUProfile); p != "" {
		f, err := os.Create(fmt.Sprintf("%s.%d", p, os.Getpid()))
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var cfg config.BGP
	if err := json.Unmarshal(b, &cfg); err != nil {
		return fmt.Errorf("decoding %s: %w", path, err)
	}
	lvl := slog.LevelWarn
	switch os.Getenv(EnvLogLevel) {
	case "debug":
		lvl = slog.LevelDebug
	case "info":
		lvl = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
	gobgpLvl := new(slog.LevelVar)
	gobgpLvl.Set(max(lvl, slog.LevelWarn))
	if lvl == slog.LevelDebug {
		gobgpLvl.Set(slog.LevelInfo)
	}
	s, err := bgp.New(&cfg, bgp.Options{Log: log, GoBGPLevel: gobgpLvl, ConnectRetry: time.Second, Debounce: 20 * time.Millisecond})
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.Start(context.Background()); err != nil {
		return err
	}
	enc := json.NewEncoder(out)
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		var r reply
		var err error
		switch cmd := strings.TrimSpace(sc.Text()); cmd {
		case "neighbors":
			r.Neighbors = s.Neighbors()
		case "routes":
			r.Routes, err = s.Routes()
		case "fib":
			st := s.FIBStats()
			r.FIB = &st
		case "stop":
			err = s.Stop(context.Background())
		case "start":
			err = s.Start(context.Background())
		case "quit":
			if p := os.Getenv(EnvMemProfile); p != "" {
				if f, err := os.Create(fmt.Sprintf("%s.%d", p, os.Getpid())); err == nil {
					runtime.GC()
					pprof.WriteHeapProfile(f)
					f.Close()
				}
			}
			err = s.Close()
			if err != nil {
				r.Error = err.Error()
			}
			return enc.Encode(r)
		default:
			err = fmt.Errorf("unknown command %q", cmd)
		}
		if err != nil {
			r.Error = err.Error()
		}
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return s.Close()
}

// Helper is a running helper process. Its methods are safe for concurrent
// use (commands are serialized).
type Helper struct {
	cmd *exec.Cmd
	dir string
	mu  sync.Mutex // serializes commands
	in  io.WriteCloser
	out *bufio.Reader
}

// Start writes cfg to a file in dir and starts the current executable with
// args (e.g. "-test.run=^$" for a test binary) as the helper inside the
// named namespace. The helper's log goes to logw (nil discards).
func Start(ns string, cfg *config.BGP, dir string, args []string, logw io.Writer) (*Helper, error) {
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encoding helper config: %w", err)
	}
	path := filepath.Join(dir, "bgp-helper-"+ns+".json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, args...)
	// GoBGP v4.8.0 itself races (table.Path.MarkStale against
	// GetBestPathList in its graceful-restart path, both inside the
	// library); a race build of the helper would exit 66 on it. Our own
	// code's races are still caught by the tests in this process.
	cmd.Env = append(os.Environ(), EnvConfig+"="+path, "GORACE=exitcode=0")
	cmd.Stderr = logw
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	outp, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := netnsutil.Start(ns, cmd); err != nil {
		return nil, fmt.Errorf("starting bgp helper in %s: %w", ns, err)
	}
	h := &Helper{cmd: cmd, dir: dir, in: in, out: bufio.NewReaderSize(outp, 1<<20)}
	return h, nil
}

// Pid returns the helper's process id.
func (h *Helper) Pid() int { return h.cmd.Process.Pid }

func (h *Helper) call(cmd string) (reply, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var r reply
	if _, err := io.WriteString(h.in, cmd+"\n"); err != nil {
		return r, fmt.Errorf("bgp helper %s: %w", cmd, err)
	}
	line, err := h.out.ReadBytes('\n')
	if err != nil {
		return r, fmt.Errorf("bgp helper %s: %w", cmd, err)
	}
	if err := json.Unmarshal(line, &r); err != nil {
		return r, fmt.Errorf("bgp helper %s: decoding %q: %w", cmd, line, err)
	}
	if r.Error != "" {
		return r, fmt.Errorf("bgp helper %s: %s", cmd, r.Error)
	}
	return r, nil
}

// Neighbors returns the helper's Speaker.Neighbors.
func (h *Helper) Neighbors() ([]bgp.Neighbor, error) {
	r, err := h.call("neighbors")
	return r.Neighbors, err
}

// Routes returns the helper's Speaker.Routes.
func (h *Helper) Routes() ([]bgp.Route, error) {
	r, err := h.call("routes")
	return r.Routes, err
}

// FIBStats returns the helper's Speaker.FIBStats.
func (h *Helper) FIBStats() (fib.Stats, error) {
	r, err := h.call("fib")
	if r.FIB == nil {
		return fib.Stats{}, err
	}
	return *r.FIB, err
}

// StopSpeaker calls Speaker.Stop in the helper (withdraw, sessions down,
// kernel routes removed).
func (h *Helper) StopSpeaker() error { _, err := h.call("stop"); return err }

// StartSpeaker calls Speaker.Start in the helper.
func (h *Helper) StartSpeaker() error { _, err := h.call("start"); return err }

// Close asks the helper to close the speaker and exit, and kills it when it
// has not exited within 10s. It is idempotent.
func (h *Helper) Close() error {
	if h.cmd.ProcessState != nil {
		return nil
	}
	_, qerr := h.call("quit")
	h.in.Close()
	wait := make(chan error, 1)
	go func() { wait <- h.cmd.Wait() }()
	select {
	case err := <-wait:
		return errors.Join(qerr, err)
	case <-time.After(10 * time.Second):
		h.cmd.Process.Kill()
		<-wait
		return errors.Join(qerr, errors.New("bgp helper did not exit; killed"))
	}
}
