package lab

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/havpn/havpn/internal/netnsutil"
)

// Down removes everything a lab with this prefix made: its processes,
// namespaces (and with them every link) and state directory. It needs no
// state file, and a second call does nothing.
func Down(prefix string) error {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if err := requireRoot(); err != nil {
		return err
	}
	if err := checkPrefix(prefix); err != nil {
		return err
	}
	nss := namespacesWithPrefix(prefix)
	var errs []error
	if err := killIn(nss, 2*time.Second); err != nil {
		errs = append(errs, err)
	}
	for _, ns := range nss {
		if err := netnsutil.Delete(ns); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(Dir(prefix)); err != nil {
		errs = append(errs, fmt.Errorf("removing lab state: %w", err))
	}
	return errors.Join(errs...)
}

// namespacesWithPrefix lists existing namespaces named prefix+node for a
// lab node: exact names only, so labs whose prefixes share a beginning do
// not touch each other.
func namespacesWithPrefix(prefix string) []string {
	var out []string
	for _, n := range Topology() {
		if netnsutil.Exists(prefix + n.Name) {
			out = append(out, prefix+n.Name)
		}
	}
	return out
}

// killIn stops every process whose network namespace is one of nss:
// SIGCONT (a frozen one cannot die of SIGTERM) and SIGTERM, then SIGKILL
// for what is still there after grace.
func killIn(nss []string, grace time.Duration) error {
	pids, err := pidsIn(nss)
	if err != nil || len(pids) == 0 {
		return err
	}
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGCONT)
		syscall.Kill(pid, syscall.SIGTERM)
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if left, _ := pidsIn(nss); len(left) == 0 {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	left, err := pidsIn(nss)
	for _, pid := range left {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	for i := 0; i < 100; i++ {
		if left, _ := pidsIn(nss); len(left) == 0 {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("processes still in the lab's namespaces after SIGKILL: %v", left)
}

// pidsIn lists processes living in any of the named namespaces, found by
// comparing /proc/PID/ns/net with the namespaces' inodes.
func pidsIn(nss []string) ([]int, error) {
	inodes := map[uint64]bool{}
	for _, ns := range nss {
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(netnsutil.Dir, ns), &st); err == nil {
			inodes[st.Ino] = true
		}
	}
	if len(inodes) == 0 {
		return nil, nil
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat(filepath.Join("/proc", e.Name(), "ns/net"), &st) != nil {
			continue
		}
		if inodes[st.Ino] && !isZombie(pid) {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// isZombie reports a process that has exited but not been reaped: it holds
// nothing, and killing it again is pointless.
func isZombie(pid int) bool { return procStateChar(pid) == 'Z' }

// isStopped reports a process stopped by SIGSTOP.
func isStopped(pid int) bool { return procStateChar(pid) == 'T' }

// procStateChar is the state letter of /proc/PID/stat ('Z' when gone).
func procStateChar(pid int) byte {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 'Z'
	}
	// The state follows the command name in parentheses.
	for i := len(b) - 1; i > 0; i-- {
		if b[i] == ')' && i+2 < len(b) {
			return b[i+2]
		}
	}
	return '?'
}
