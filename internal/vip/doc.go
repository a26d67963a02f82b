// Package vip claims and releases virtual IP addresses: it adds the address
// to an interface, announces it to the link (IPv4 gratuitous ARP, RFC 5227
// §2.3 "ARP Announcement"; IPv6 unsolicited Neighbor Advertisement, RFC 4861
// §7.2.6), keeps it alive while held and removes it on release.
//
// # Self-expiring addresses
//
// A VIP is never added with an infinite lifetime. It is added with
// valid_lft = preferred_lft = Lifetime seconds (default 1, the smallest the
// kernel accepts: address lifetimes count in whole seconds) and a goroutine
// re-asserts it every Refresh (default 300 ms) with RTM_NEWADDR|NLM_F_REPLACE,
// which resets the kernel's timestamp. If the daemon dies without releasing
// (SIGKILL, a crash, a freeze longer than the lifetime) the kernel removes the
// address by itself: no lasting dual owner (the known keepalived failure).
//
// The exact bound, from the kernel's lifetime worker (net/ipv4/devinet.c
// check_lifetime, net/ipv6/addrconf.c addrconf_verify_rtnl): an address whose
// last refresh happened at t0 is deleted at the first worker run where
// now - t0 >= Lifetime - HZ/50, and a refresh always reschedules that worker
// for t0 + Lifetime, rounded up to the next whole second when that is less
// than HZ/4 away. With the defaults the VIP is therefore gone between
// t0 + 0.98 s and t0 + 1.25 s; since a kill happens after the last refresh it
// outlives its daemon by at most 1.25 s (measured in the netns test: about
// 1 s). One corner case stretches this to t0 + 2 s: the worker never runs
// more often than once per second, so if an unrelated address change in the
// same kernel triggers a run just before t0 + 0.98 s, the next run is one
// second later. The converse risk: a refresher that stalls for longer than
// about Lifetime - Refresh (700 ms with the defaults) lets the active node's
// own VIP expire; the next refresh adds it back but does not re-announce it.
//
// # Seams
//
// The package does no netlink or socket work itself; it drives two small
// interfaces it defines: AddrManager (add/refresh, delete, query an address)
// and Announcer (open a sender of GARP/NA for one address). Netlink (Linux)
// implements both, optionally inside a named network namespace; package
// viptest has a fake that records every operation as text.
//
// # Concurrency
//
// A *VIP is safe for concurrent use. Acquire and Release are serialised; the
// refresh and announcement goroutines belong to the VIP and Release waits for
// them before it deletes the address.
package vip
