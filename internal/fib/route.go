package fib

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// NextHop is one gateway of a route. Link is the outgoing interface index,
// 0 to let the kernel find it from the gateway (which must then be directly
// reachable).
type NextHop struct {
	Gateway netip.Addr `json:"gateway"`
	Link    int        `json:"link,omitzero"`
}

// String renders n as "via GW" or "via GW dev #LINK".
func (n NextHop) String() string {
	if n.Link != 0 {
		return fmt.Sprintf("via %s dev #%d", n.Gateway, n.Link)
	}
	return "via " + n.Gateway.String()
}

func compareNextHop(a, b NextHop) int {
	if c := a.Gateway.Compare(b.Gateway); c != 0 {
		return c
	}
	return cmp.Compare(a.Link, b.Link)
}

// SortNextHops sorts hops in place by gateway then link and drops
// duplicates, returning the shortened slice. Equal sets of next hops are
// equal slices after SortNextHops.
func SortNextHops(hops []NextHop) []NextHop {
	slices.SortFunc(hops, compareNextHop)
	return slices.Compact(hops)
}

// Route is one kernel route of ours: a prefix, its next hops (several for
// ECMP) and where it lives.
type Route struct {
	Prefix   netip.Prefix `json:"prefix"`
	NextHops []NextHop    `json:"next_hops"`
	Table    uint32       `json:"table"`
	Protocol uint8        `json:"protocol"`
	Metric   uint32       `json:"metric"`
}

// String renders r like `ip route`, in a stable form used by golden tests:
// "10.1.0.0/24 table 254 proto 186 metric 20 via 172.16.0.2".
func (r Route) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s table %d proto %d metric %d", r.Prefix, r.Table, r.Protocol, r.Metric)
	if len(r.NextHops) == 1 {
		b.WriteString(" " + r.NextHops[0].String())
	} else {
		for _, h := range r.NextHops {
			b.WriteString(" nexthop " + h.String())
		}
	}
	return b.String()
}

// sameNextHops reports whether a and b, both sorted, are equal.
func sameNextHops(a, b []NextHop) bool {
	return slices.Equal(a, b)
}

// OpKind is what an Op does.
type OpKind uint8

// Op kinds.
const (
	// OpReplace creates the route or replaces the one with the same prefix,
	// table, protocol and metric (RTM_NEWROUTE, NLM_F_CREATE|NLM_F_REPLACE).
	OpReplace OpKind = iota + 1
	// OpDelete removes the route with the same prefix, table, protocol and
	// metric, whatever its next hops (RTM_DELROUTE).
	OpDelete
)

// String names the kind: "replace" or "delete".
func (k OpKind) String() string {
	switch k {
	case OpReplace:
		return "replace"
	case OpDelete:
		return "delete"
	}
	return fmt.Sprintf("op(%d)", uint8(k))
}

// Op is one kernel route change.
type Op struct {
	Kind  OpKind
	Route Route
}

// String renders o as one line: "replace <route>" or "delete <prefix> table
// T proto P metric M" (a delete names no next hops).
func (o Op) String() string {
	if o.Kind == OpDelete {
		r := o.Route
		return fmt.Sprintf("delete %s table %d proto %d metric %d", r.Prefix, r.Table, r.Protocol, r.Metric)
	}
	return o.Kind.String() + " " + o.Route.String()
}

// comparePrefix orders prefixes by address, then length.
func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return cmp.Compare(a.Bits(), b.Bits())
}

// SortRoutes sorts routes by prefix (address, then length), then table,
// then metric.
func SortRoutes(rs []Route) {
	slices.SortFunc(rs, func(a, b Route) int {
		if c := comparePrefix(a.Prefix, b.Prefix); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Table, b.Table); c != 0 {
			return c
		}
		return cmp.Compare(a.Metric, b.Metric)
	})
}
