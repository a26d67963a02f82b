// Package cluster is the heartbeat cluster of havpn (issue 5, the seed's
// Heartbeat): keepalives over every configured link at once, membership,
// and the election of exactly one active node. It decides and emits role
// events; it has no side effects on the system (no addresses, no routes,
// no scripts): the daemon acts on the events.
//
// # Parts
//
//   - heartbeat.go: the wire format (version 1), an authenticated
//     (HMAC-SHA256) fixed-layout message with strict length checks; Codec
//     marshals and unmarshals without allocating. frame.go: the framing of
//     the same message on a serial line (sync bytes, length; the receiver
//     resynchronises byte by byte). Both have fuzz targets.
//   - election.go: Machine, the election as a pure state machine. Inputs
//     carry their time (heartbeat received on a link, tick, carrier, ping
//     result, operator standby/takeover, maintenance); outputs are role
//     changes with reasons, warnings and notices. Its doc lists every rule.
//     Tested on a simulated clock with two Machines exchanging heartbeats
//     (sim_test.go, election_test.go) and with hand-made messages.
//   - cluster.go: Cluster, which runs a Machine: New, Run, Events,
//     Standby, Takeover, SetCarrier, SetMaintenance, Status, metrics
//     (havpn_cluster_*).
//   - transport_linux.go: UDP unicast and multicast links, each socket bound
//     to its interface (SO_BINDTODEVICE) and sent with SO_PRIORITY 6 and
//     DSCP CS6; serial links (raw tty, 8N1, paced by the baud rate).
//     ping_linux.go: ICMP echo to the ping nodes (raw socket, or the
//     unprivileged ICMP socket when raw is not allowed).
//   - package clustertest: in-memory links (Wire) for tests of Cluster
//     and its users.
//
// # The heartbeat thread
//
// Run starts one goroutine locked to its OS thread that owns the Machine
// and everything the protocol needs. With real links it polls them itself:
// it sleeps in ppoll(2) on the link sockets and an eventfd, for at most
// 5 ms at a time, reads every waiting heartbeat, ticks when a keepalive is
// due and sends; with cluster.realtime the thread runs SCHED_FIFO
// (RealtimePriority). The per-heartbeat path does not allocate and takes no
// lock that an ordinary goroutine holds: methods pass closures to the
// thread and wait; log lines and events leave through a queue drained by
// another goroutine. So a loaded machine delays a heartbeat only as much
// as it delays a real-time thread's wake-up (measured: ppoll overshoot
// under four busy loops on two cores, 500 wake-ups, at most 3.8 ms
// SCHED_FIFO against 126 ms without). Links that cannot be polled
// (clustertest) and a non-real Clock use a portable loop with Go timers
// and receiver goroutines.
//
// Limits of running in Go: when the thread wakes it needs one of the Go
// runtime's Ps; an ordinary thread that holds a P while the kernel has
// descheduled it can delay that. The netns tests, which run two Clusters
// in one process on a machine shared by other test runs, raise GOMAXPROCS
// for that reason; a daemon should leave spare Ps too (GOMAXPROCS above
// the number of busy goroutines). A stall of the whole node (SIGSTOP, a VM
// pause, a stall of deadtime or more) is detected and handled by the
// Machine's stall rule (quiet release).
//
// # Config hash
//
// The hash carried in heartbeats is, by default, SharedConfigHash: the
// hash of the configuration without the per-node fields. config.Config.Hash
// itself always differs between two members (node name, node id, peers).
//
// # Not done here
//
// With all heartbeat links cut, ping nodes decide only which node may be
// active on its own; both nodes reach the ping node, so both become
// active (each sees the other dead). A heartbeat link over the WAN (a
// unicast link to the peer's WAN address) keeps them in touch in that
// case. The operator's standby/takeover preference is not persistent: it
// is forgotten on restart.
package cluster
