package fib

import (
	"context"
	"net/netip"
)

// Kernel is the seam between a Reconciler and the OS routing table. The
// Linux implementation is NewNetlink; fibtest.Kernel is an in-memory fake.
// A Reconciler calls Routes, Apply and Connected from one goroutine at a time;
// Watch runs concurrently with them.
type Kernel interface {
	// Routes lists every route of protocol proto in table, whatever its
	// metric.
	Routes(table uint32, proto uint8) ([]Route, error)
	// Apply performs ops in order. It returns nil when all succeeded, else
	// a slice of len(ops) with a nil entry for each op that succeeded. A
	// failed op does not stop the following ones. A delete of a route that
	// does not exist fails with an error matching ErrNoRoute.
	Apply(ops []Op) []error
	// Connected returns the connected prefixes: the destinations of proto
	// kernel, scope link routes in the main table and in table, and for
	// every address on the box its network prefix and its host prefix.
	Connected(table uint32) (map[netip.Prefix]struct{}, error)
	// Watch calls changed (which must not block) whenever the connected
	// prefixes may have changed (addresses, links, proto kernel routes),
	// until ctx is done; it then returns nil. It returns an error only when
	// it cannot watch at all.
	Watch(ctx context.Context, changed func()) error
}
