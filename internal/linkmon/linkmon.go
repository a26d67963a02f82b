package linkmon

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// OperNotPresent is the OperState of an interface that does not exist (or
// left the namespace).
const OperNotPresent = "not-present"

// Event is the state of one monitored interface after a change.
type Event struct {
	Iface string `json:"iface"`
	// Index is the kernel ifindex (0 when absent).
	Index int `json:"index,omitempty"`
	// Present is false when the interface does not exist.
	Present bool `json:"present"`
	// Carrier is the IFF_LOWER_UP flag: link layer up (cable in, peer up).
	Carrier bool `json:"carrier"`
	// AdminUp is the IFF_UP flag (`ip link set up`).
	AdminUp bool `json:"admin_up"`
	// OperState is the RFC 2863 operational state as netlink names it:
	// "up", "down", "lower-layer-down", "dormant", "testing", "unknown",
	// or "not-present".
	OperState string `json:"oper_state"`
	// At is when the monitor saw the change.
	At time.Time `json:"at"`
}

func (e Event) same(o Event) bool {
	return e.Index == o.Index && e.Present == o.Present && e.Carrier == o.Carrier &&
		e.AdminUp == o.AdminUp && e.OperState == o.OperState
}

// Options configure a Monitor.
type Options struct {
	// NetNS is the named network namespace to watch; "" is the process's.
	NetNS string
	// Log receives subscription problems; required.
	Log *slog.Logger
	// Registerer gets the havpn_linkmon_* collectors; nil: no metrics.
	Registerer prometheus.Registerer
	// Poll is how often the monitored interfaces are also read directly
	// (RTM_GETLINK), as a bound on detection latency when the kernel batches
	// its notifications (see the package doc). 0 means DefaultPoll; a
	// negative value disables polling.
	Poll time.Duration
}

// DefaultPoll is the default Options.Poll.
const DefaultPoll = 20 * time.Millisecond
