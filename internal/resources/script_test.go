package resources_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/havpn/havpn/internal/resources"
)

func testdata(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestScriptLSBCodes(t *testing.T) {
	tests := []struct {
		action    string
		code      int
		wantState resources.State // status only
		wantErr   bool
	}{
		{action: "start", code: 0},
		{action: "start", code: 1, wantErr: true},
		{action: "start", code: 7, wantErr: true},
		{action: "stop", code: 0},
		{action: "stop", code: 7}, // not running: a stop that has nothing to do
		{action: "stop", code: 1, wantErr: true},
		{action: "status", code: 0, wantState: resources.StateRunning},
		{action: "status", code: 1, wantState: resources.StateFailed},
		{action: "status", code: 2, wantState: resources.StateFailed},
		{action: "status", code: 3, wantState: resources.StateStopped},
		{action: "status", code: 4, wantState: resources.StateUnknown, wantErr: true},
		{action: "status", code: 150, wantState: resources.StateUnknown, wantErr: true},
	}
	s := resources.NewScript("x", testdata(t, "exitcode.sh"), discard())
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s exits %d", tc.action, tc.code), func(t *testing.T) {
			t.Setenv("HAVPN_TEST_EXIT", strconv.Itoa(tc.code))
			var err error
			switch tc.action {
			case "start":
				err = s.Start(t.Context())
			case "stop":
				err = s.Stop(t.Context())
			case "status":
				var st resources.State
				st, err = s.Status(t.Context())
				if st != tc.wantState {
					t.Errorf("state = %s, want %s", st, tc.wantState)
				}
			}
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error: %v", err, tc.wantErr)
			}
			if err != nil {
				se, ok := errors.AsType[*resources.ScriptError](err)
				if !ok || se.Code != tc.code || se.Action != tc.action {
					t.Fatalf("err = %#v, want a ScriptError with code %d", err, tc.code)
				}
				if !strings.Contains(se.Output, "action "+tc.action) {
					t.Errorf("output %q lacks the script's stderr", se.Output)
				}
			}
		})
	}
}

func TestScriptService(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("HAVPN_TEST_DIR", dir)
	s := resources.NewScript("svc", testdata(t, "svc.sh"), discard())
	check := func(want resources.State) {
		t.Helper()
		st, err := s.Status(t.Context())
		if err != nil || st != want {
			t.Fatalf("status = %s, %v; want %s", st, err, want)
		}
	}
	check(resources.StateStopped)
	for range 2 { // LSB: start of a running service succeeds
		if err := s.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	check(resources.StateRunning)
	if err := s.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	check(resources.StateStopped)
	calls, err := os.ReadFile(filepath.Join(dir, "calls"))
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "calls", "svc status\nsvc start\nsvc start\nsvc status\nsvc stop\nsvc status\n", string(calls))
}

func TestScriptTimeoutKillsProcessGroup(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("HAVPN_TEST_DIR", dir)
	s := resources.NewScript("hang", testdata(t, "hang.sh"), discard())
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := s.Start(ctx)
	took := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Start error = %v, want DeadlineExceeded", err)
	}
	if took > 2*time.Second {
		t.Errorf("Start returned %s after a 300ms deadline", took)
	}
	b, err := os.ReadFile(filepath.Join(dir, "child.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("child %d of the timed-out script still runs", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) S ...: the state follows the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func TestScriptMissing(t *testing.T) {
	s := resources.NewScript("nope", filepath.Join(t.TempDir(), "nope.sh"), discard())
	if err := s.Start(t.Context()); err == nil {
		t.Fatal("starting a missing script succeeded")
	}
	if st, err := s.Status(t.Context()); err == nil || st != resources.StateUnknown {
		t.Fatalf("status of a missing script = %s, %v; want unknown and an error", st, err)
	}
}
