// Package bgp is havpn's embedded BGP speaker: GoBGP v4 as a library, with
// best paths installed into the kernel by package fib.
//
// A Speaker is built from config.BGP (New) and then either driven as a
// resource (Start on takeover, Stop on release) or run for the daemon's
// lifetime (Run, for always_on). Lifecycle:
//
//	stopped --Start--> running --Stop--> stopped --Close--> closed
//
// Start and Stop are idempotent and may be repeated; every Start builds a
// new GoBGP server.
//
// What Start does, in order:
//   - installs the routes the previous active node had (Options.Inherited,
//     from state sync) and, if there were any, restarts gracefully: the
//     OPEN carries the Restart State and Forwarding State bits, and route
//     selection waits for the neighbors' End-of-RIB (at most 10s). With
//     the neighbor keeping our routes as stale meanwhile, traffic in both
//     directions survives a takeover while the new session comes up;
//   - adopts the kernel routes of our protocol left by an earlier run (they
//     keep forwarding; those not learned again are swept once every
//     neighbor sent End-of-RIB, or every neighbor has been established and
//     no best path changed for 3s, or after Options.StaleTime);
//   - starts GoBGP (asn, router id, listen port, multipath = fib.multipath)
//     with one global import and one global export policy that implement
//     each neighbor's import/export prefix list (first match wins, no match
//     denies) and next-hop-self (GoBGP has per-peer policies only for
//     route-server clients, so statements are conditioned on a neighbor set);
//   - watches best-path changes: each prefix's best path (or equal-cost set
//     with multipath) goes to the fib.Reconciler, batched by a single
//     goroutine; a withdraw, a lost session or a locally originated best
//     path removes the kernel route;
//   - adds the neighbors (remote AS, passive, hold time/keepalive,
//     TCP-MD5 password from password_file, IPv4 and IPv6 unicast, and
//     with graceful_restart the RFC 4724 capability listing both families:
//     we keep a restarting neighbor's routes, and it keeps ours);
//   - announces the networks, and the kernel routes of the redistribute
//     sources read through a RouteSource (connected = proto kernel routes
//     without gateway, static = proto static, kernel = proto boot, ra,
//     dhcp and unspec; never our own protocol), each through its prefix
//     list; host routes of addresses on the box or of connected routes
//     (VIPs, tunnel peers) and default routes are redistributed only when
//     a permit rule names exactly that prefix; link-local and multicast
//     prefixes never are. Kernel changes are followed (debounced).
//
// While running, a neighbor whose link goes down (carrier lost, link set
// down or deleted: an address of that link covers the neighbor's address)
// has its session reset at once, so its routes leave the kernel in
// milliseconds instead of after the hold time (like FRR's
// fast-external-failover). A silent peer on a live link is still detected
// by the hold timer only (no BFD).
//
// Stop withdraws everything announced (in a cluster, Options.HandOver,
// it does not: graceful-restart neighbors keep our routes for the node
// taking over, which inherits ours), shuts the sessions down (Cease
// NOTIFICATION), stops GoBGP and deletes every route it installed.
//
// Routes and Neighbors return plain data for `havpn routes|neighbors`;
// havpn_bgp_* metrics are collected per neighbor at scrape time.
//
// GoBGP opens its listener on its server goroutine and dials from per-peer
// goroutines, so a Speaker uses the network namespace of the process, not
// of the calling thread: to run one in a namespace, run the process there
// (package bgptest's helper does that for tests).
//
// Limits: after a session went down, GoBGP waits a fixed 5s (its idle hold
// time) before it connects again, so re-establishing takes about 6s, and
// its first connection attempt comes 1.5-2s after start (minimum connect
// retry 2s). GoBGP sends End-of-RIB only to graceful-restart neighbors, so
// with such peers the stale sweep relies on the quiet period. IPv6 prefixes
// need an IPv6 session (no IPv4 next hops for IPv6 routes, RFC 5549).
// GoBGP's multipath switch and best-path options are package-level
// globals, so all speakers in one process share fib.multipath (the daemon
// has one); a hold time of 0 (no keepalives) is sent as GoBGP's default
// 90s; next hops must be directly reachable (no recursive resolution).
package bgp
