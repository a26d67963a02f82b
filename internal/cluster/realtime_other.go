//go:build !linux

package cluster

import "errors"

// RealtimePriority is the SCHED_FIFO priority of the heartbeat thread.
const RealtimePriority = 10

// SetRealtime is only implemented on Linux.
func SetRealtime(priority int) error {
	return errors.New("real-time scheduling is only implemented on Linux")
}

// LockMemory is only implemented on Linux.
func LockMemory() error { return errors.New("locking memory is only implemented on Linux") }
