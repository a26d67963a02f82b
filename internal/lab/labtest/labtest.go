// Package labtest holds helpers for tests that need root and network
// namespaces.
package labtest

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"testing"

	"github.com/havpn/havpn/internal/netnsutil"
)

// RequireRootEnv is the environment variable that turns a skip for want of
// root into a failure. CI sets it.
const RequireRootEnv = "HAVPN_REQUIRE_ROOT"

// RequireRoot skips tb when not running as root, or fails it when
// HAVPN_REQUIRE_ROOT=1, so that a demanded test never skips silently.
func RequireRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv(RequireRootEnv) == "1" {
		tb.Fatalf("test needs root and %s=1 demands it", RequireRootEnv)
	}
	tb.Skip("test needs root (set HAVPN_REQUIRE_ROOT=1 to make this a failure)")
}

// RequireCommand skips tb when a command is missing, or fails it when
// HAVPN_REQUIRE_ROOT=1 (CI installs every test dependency).
func RequireCommand(tb testing.TB, name string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(tb, "test needs %s (install it: make test-deps)", name)
	}
	return p
}

// Missing skips tb for want of something the machine lacks (a command, a
// user, a device), or fails it when HAVPN_REQUIRE_ROOT=1: CI provides
// everything, so there a missing piece is an error, never a silent skip.
func Missing(tb testing.TB, format string, args ...any) {
	tb.Helper()
	if os.Getenv(RequireRootEnv) == "1" {
		tb.Fatalf(format, args...)
	}
	tb.Skipf(format, args...)
}

// Prefix returns a namespace prefix unique to this test run, e.g. "t3f9a-",
// so that tests can run in parallel without touching each other's names.
func Prefix(tb testing.TB) string {
	tb.Helper()
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return "t" + hex.EncodeToString(b) + "-"
}

// NewNetNS creates a named namespace with loopback up and removes it when
// the test ends, also when it fails.
func NewNetNS(tb testing.TB, name string) string {
	tb.Helper()
	RequireRoot(tb)
	if err := netnsutil.Create(name); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := netnsutil.Delete(name); err != nil {
			tb.Error(err)
		}
	})
	h, err := netnsutil.Handle(name)
	if err != nil {
		tb.Fatal(err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		tb.Fatal(err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		tb.Fatal(err)
	}
	return name
}
