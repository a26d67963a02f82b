package cluster

import (
	"context"
	"net/netip"
	"time"
)

// Pinger probes the ping nodes (ICMP echo on Linux: ping_linux.go).
type Pinger interface {
	// Probe sends one echo request to every target and reports, per target,
	// whether its reply arrived within timeout (or before ctx ends).
	Probe(ctx context.Context, targets []netip.Addr, timeout time.Duration) ([]bool, error)
	// Close releases the sockets.
	Close() error
}

// Ping defaults: one probe per interval; a node is unreachable after
// pingMisses probes in a row went unanswered, reachable again after one
// answer.
const (
	DefaultPingInterval = 200 * time.Millisecond
	pingMisses          = 3
)

// pingTracker turns probe results into reachability with hysteresis.
type pingTracker struct {
	misses []int
}

func newPingTracker(n int) *pingTracker {
	t := &pingTracker{misses: make([]int, n)}
	for i := range t.misses {
		t.misses[i] = pingMisses // unreachable until the first answer
	}
	return t
}

// update records one probe round and returns how many targets are
// reachable.
func (t *pingTracker) update(answered []bool) int {
	n := 0
	for i := range t.misses {
		if i < len(answered) && answered[i] {
			t.misses[i] = 0
		} else if t.misses[i] < pingMisses {
			t.misses[i]++
		}
		if t.misses[i] < pingMisses {
			n++
		}
	}
	return n
}

func (t *pingTracker) reachable(i int) bool { return t.misses[i] < pingMisses }
