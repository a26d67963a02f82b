//go:build linux

package cluster

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// RealtimePriority is the SCHED_FIFO priority of the heartbeat thread when
// cluster.realtime is set: above every SCHED_OTHER thread, below the
// kernel's own real-time threads (priority 50 for threaded IRQs).
const RealtimePriority = 10

// SetRealtime gives the calling OS thread SCHED_FIFO at priority. Call it
// from a goroutine locked to its thread (runtime.LockOSThread) that never
// unlocks, so the thread dies with the goroutine. It needs CAP_SYS_NICE
// (or an RLIMIT_RTPRIO allowance).
func SetRealtime(priority int) error {
	attr := unix.SchedAttr{Policy: unix.SCHED_FIFO, Priority: uint32(priority)}
	if err := unix.SchedSetAttr(0, &attr, 0); err != nil {
		return fmt.Errorf("setting SCHED_FIFO priority %d on the heartbeat thread: %w", priority, err)
	}
	return nil
}

// LockMemory locks the process's current and future pages into RAM
// (mlockall MCL_CURRENT|MCL_FUTURE), so that the heartbeat never waits for
// a page-in. It needs CAP_IPC_LOCK or a large enough RLIMIT_MEMLOCK. The
// daemon calls it once at start when cluster.lock_memory is set.
func LockMemory() error {
	if err := unix.Mlockall(unix.MCL_CURRENT | unix.MCL_FUTURE); err != nil {
		return fmt.Errorf("locking memory (mlockall): %w", err)
	}
	return nil
}
