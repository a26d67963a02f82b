package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
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
	if err := killIn(nss, syscall.SIGTERM, 2*time.Second); err != nil {
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

// labNodeRE matches the node part of a lab namespace name: inet and, for
// any number of sites, s<N>gw<M>, s<N>host and s<N>sw.
var labNodeRE = regexp.MustCompile(`^(inet|s[0-9]+(gw[0-9]+|host|sw))$`)

// namespacesWithPrefix lists the existing namespaces of the lab with this
// prefix: every name in the namespace directory that is prefix+node for a
// lab node name (labNodeRE), and any the state file recorded. Exact node
// names only, so labs whose prefixes share a beginning (p- and p-x-) do not
// touch each other.
func namespacesWithPrefix(prefix string) []string {
	seen := map[string]bool{}
	if ents, err := os.ReadDir(netnsutil.Dir); err == nil {
		for _, e := range ents {
			if rest, ok := strings.CutPrefix(e.Name(), prefix); ok && labNodeRE.MatchString(rest) {
				seen[e.Name()] = true
			}
		}
	}
	if b, err := os.ReadFile(statePath(prefix)); err == nil {
		var st State
		if json.Unmarshal(b, &st) == nil {
			for _, ns := range st.Namespaces {
				rest, ok := strings.CutPrefix(ns, prefix)
				if ok && labNodeRE.MatchString(rest) && netnsutil.Exists(ns) {
					seen[ns] = true
				}
			}
		}
	}
	out := make([]string, 0, len(seen))
	for ns := range seen {
		out = append(out, ns)
	}
	slices.Sort(out)
	return out
}

// killIn stops every process whose network namespace is one of nss. With
// sig SIGTERM it sends SIGCONT first (a frozen process cannot die of
// SIGTERM) and SIGKILLs what is still there after grace; with SIGKILL it
// kills at once, as a power cut does.
func killIn(nss []string, sig syscall.Signal, grace time.Duration) error {
	pids, err := pidsIn(nss)
	if err != nil || len(pids) == 0 {
		return err
	}
	if sig != syscall.SIGKILL {
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGCONT)
			syscall.Kill(pid, sig)
		}
		deadline := time.Now().Add(grace)
		for time.Now().Before(deadline) {
			if left, _ := pidsIn(nss); len(left) == 0 {
				return nil
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	left, err := pidsIn(nss)
	for _, pid := range left {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	for range 200 {
		if left, _ = pidsIn(nss); len(left) == 0 {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("processes still in the lab's namespaces after SIGKILL: %v", left)
}

// nsID identifies a namespace: the device and inode of its nsfs file.
type nsID struct{ dev, ino uint64 }

// pidsIn lists processes living in any of the named namespaces, found by
// comparing /proc/PID/ns/net with the namespaces' bind mounts. The calling
// process is never listed.
func pidsIn(nss []string) ([]int, error) {
	ids := map[nsID]bool{}
	for _, ns := range nss {
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(netnsutil.Dir, ns), &st); err == nil {
			ids[nsID{st.Dev, st.Ino}] = true
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("listing processes: %w", err)
	}
	self := os.Getpid()
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat(filepath.Join("/proc", e.Name(), "ns/net"), &st) != nil {
			continue
		}
		if ids[nsID{st.Dev, st.Ino}] && !isZombie(pid) {
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
