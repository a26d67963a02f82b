// Package netnsutil runs code inside named network namespaces.
//
// Namespaces are per OS thread on Linux, so every function here locks the
// calling goroutine to its thread for the duration and restores the original
// namespace before unlocking. A thread whose namespace could not be restored
// is left locked, which makes the Go runtime discard it instead of reusing it
// in the wrong namespace.
package netnsutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Dir is where named namespaces are bind-mounted, as iproute2 does.
const Dir = "/var/run/netns"

// Create makes a named namespace (visible to `ip netns`) and returns without
// moving the caller into it.
func Create(name string) error {
	if _, err := os.Stat(filepath.Join(Dir, name)); err == nil {
		return fmt.Errorf("creating namespace %s: already exists", name)
	}
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("creating namespace %s: reading current namespace: %w", name, err)
	}
	defer orig.Close()
	ns, err := netns.NewNamed(name)
	if err != nil {
		restore(orig)
		return fmt.Errorf("creating namespace %s: %w", name, err)
	}
	ns.Close()
	restore(orig)
	return nil
}

// Delete removes a named namespace; a missing one is not an error.
func Delete(name string) error {
	if _, err := os.Stat(filepath.Join(Dir, name)); os.IsNotExist(err) {
		return nil
	}
	if err := netns.DeleteNamed(name); err != nil {
		return fmt.Errorf("deleting namespace %s: %w", name, err)
	}
	return nil
}

// Exists reports whether a named namespace exists.
func Exists(name string) bool {
	_, err := os.Stat(filepath.Join(Dir, name))
	return err == nil
}

// Do runs fn with the calling thread inside the named namespace. Sockets
// opened by fn stay in that namespace after Do returns; goroutines started
// by fn do not inherit it.
func Do(name string, fn func() error) error {
	ns, err := netns.GetFromName(name)
	if err != nil {
		return fmt.Errorf("opening namespace %s: %w", name, err)
	}
	defer ns.Close()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("reading current namespace: %w", err)
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("entering namespace %s: %w", name, err)
	}
	ferr := fn()
	restore(orig)
	return ferr
}

// restore moves the thread back and unlocks it, or keeps it locked (so the
// runtime kills it) when that fails.
func restore(orig netns.NsHandle) {
	if err := netns.Set(orig); err != nil {
		return
	}
	runtime.UnlockOSThread()
}

// Handle returns a netlink handle bound to the named namespace. The caller
// closes it.
func Handle(name string) (*netlink.Handle, error) {
	ns, err := netns.GetFromName(name)
	if err != nil {
		return nil, fmt.Errorf("opening namespace %s: %w", name, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("netlink handle in %s: %w", name, err)
	}
	return h, nil
}

// Start starts cmd with its process inside the named namespace. The child
// inherits the namespace of the forking thread, which Do has set.
func Start(name string, cmd *exec.Cmd) error {
	return Do(name, cmd.Start)
}
