// Package fib installs BGP best paths into the kernel forwarding table.
//
// A Reconciler keeps the kernel's routes of havpn's route protocol number
// (config fib.protocol, default 186) in one table (fib.table) equal to the
// routes it was told to install, through a small Kernel seam:
//
//   - Update replaces a prefix's route when its next hops change (ECMP with
//     several next hops when fib.multipath is on) and deletes it on
//     withdraw;
//   - Adopt, at start, lists the routes of our protocol left by an earlier
//     run: duplicates are removed at once, the others are kept (traffic keeps
//     flowing across a daemon restart) but marked stale, and Sweep removes
//     the stale ones that were not learned again (call it once BGP has
//     converged);
//   - a connected prefix (a proto kernel / scope link route of exactly that
//     prefix in the main or our table, or an address on the box whose
//     network or host prefix is exactly it) is never installed, and a route
//     of ours for a prefix that becomes connected is removed; routes are
//     installed with a metric (default 20, like FRR) above the kernel's 0 for
//     IPv4 connected routes, so that even before we notice, the connected
//     route wins;
//   - Flush removes every route it installed (BGP stopped or released).
//
// The Linux Kernel (NewNetlink) writes routes in batches over one netlink
// socket: many RTM_NEWROUTE/RTM_DELROUTE messages per sendmsg, each with
// NLM_F_ACK, then the acks are read back and matched by sequence number.
// That installs 100k routes in well under a second where one RouteReplace
// call per route takes seconds. Dumps use a vishvananda/netlink handle with
// strict checking on, so the kernel filters by table and protocol.
//
// fibtest.Kernel is an in-memory fake that records every operation as text,
// for golden tests of code that drives a Reconciler.
//
// Not done: recursive next-hop resolution (a next hop that is not directly
// reachable makes the kernel refuse the route with "Nexthop has invalid
// gateway"; the prefix is kept as failed and retried on the next connected
// change); IPv4 routes with IPv6 next hops (RTA_VIA).
package fib
