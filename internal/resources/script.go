package resources

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// LSB init script exit codes (Linux Standard Base Core 5.0, "Init Script
// Actions"). For status: 0 running, 1 dead with a pid file, 2 dead with a
// lock file, 3 not running, 4 unknown. For the other actions: 0 success,
// 1 generic error, 2 bad arguments, 3 unimplemented, 4 no privilege,
// 5 not installed, 6 not configured, 7 not running.
const (
	LSBOK            = 0
	LSBDeadPidFile   = 1
	LSBDeadLockFile  = 2
	LSBNotRunning    = 3 // status
	LSBStatusUnknown = 4 // status
	LSBStopped       = 7 // other actions: program is not running
)

// scriptWaitDelay bounds how long a finished script's stray children may
// keep its output pipe open.
const scriptWaitDelay = 200 * time.Millisecond

// scriptOutputMax is how much of a script's output an error keeps (the tail).
const scriptOutputMax = 2048

// ScriptError is a script that ran and exited with a failing code.
type ScriptError struct {
	Path   string
	Action string
	Code   int    // exit code; -1 when killed by a signal
	Output string // tail of stdout+stderr
}

func (e *ScriptError) Error() string {
	s := fmt.Sprintf("running %s %s: exit code %d", e.Path, e.Action, e.Code)
	if e.Output != "" {
		s += ": " + e.Output
	}
	return s
}

// Script is an LSB init script resource, run as `path start|stop|status`
// (the seed's /etc/rc.d/init.d scripts called by Heartbeat). Each run gets
// its own process group; when the step's deadline passes the whole group is
// killed with SIGKILL. Start succeeds on exit 0; Stop on 0 or 7 (not
// running); Status maps 0 to running, 3 to stopped, 1 and 2 to failed and
// anything else to unknown with an error.
type Script struct {
	name string
	path string
	log  *slog.Logger
}

// NewScript returns the script resource called name, running path. Scripts
// run with / as working directory, so a relative path is made absolute
// against the current directory here.
func NewScript(name, path string, log *slog.Logger) *Script {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	return &Script{name: name, path: path, log: log.With("component", "resources", "resource", name)}
}

// Name implements Resource.
func (s *Script) Name() string { return s.name }

// Start implements Resource.
func (s *Script) Start(ctx context.Context) error {
	code, out, err := s.run(ctx, "start")
	if err != nil {
		return err
	}
	if code != LSBOK {
		return &ScriptError{Path: s.path, Action: "start", Code: code, Output: out}
	}
	return nil
}

// Stop implements Resource.
func (s *Script) Stop(ctx context.Context) error {
	code, out, err := s.run(ctx, "stop")
	if err != nil {
		return err
	}
	if code != LSBOK && code != LSBStopped {
		return &ScriptError{Path: s.path, Action: "stop", Code: code, Output: out}
	}
	return nil
}

// Status implements Resource.
func (s *Script) Status(ctx context.Context) (State, error) {
	code, out, err := s.run(ctx, "status")
	if err != nil {
		return StateUnknown, err
	}
	switch code {
	case LSBOK:
		return StateRunning, nil
	case LSBNotRunning:
		return StateStopped, nil
	case LSBDeadPidFile, LSBDeadLockFile:
		return StateFailed, nil
	}
	return StateUnknown, &ScriptError{Path: s.path, Action: "status", Code: code, Output: out}
}

// run executes the script with action and returns its exit code and the
// tail of its output. err is set only when the script could not run or ran
// out of time (then it wraps ctx.Err()).
func (s *Script) run(ctx context.Context, action string) (int, string, error) {
	var out tail
	cmd := exec.CommandContext(ctx, s.path, action)
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// The script and everything it started, not just the script.
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = scriptWaitDelay
	err := cmd.Run()
	if ctx.Err() != nil {
		return -1, out.String(), fmt.Errorf("running %s %s: killed: %w", s.path, action, ctx.Err())
	}
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		return ee.ExitCode(), out.String(), nil
	}
	if err != nil && !errors.Is(err, exec.ErrWaitDelay) {
		return -1, out.String(), fmt.Errorf("running %s %s: %w", s.path, action, err)
	}
	s.log.Debug("script ran", "action", action, "output", out.String())
	return cmd.ProcessState.ExitCode(), out.String(), nil
}

// tail keeps the last scriptOutputMax bytes written to it.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - scriptOutputMax; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}
