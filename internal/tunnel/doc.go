// Package tunnel is havpn's userspace dataplane: per configured tunnel a TUN
// interface whose packets travel GRE-in-ESP (or IP-in-ESP) in UDP to the
// peer gateway, and back.
//
// Outbound (send.go), per tunnel, one goroutine:
//
//	TUN read batch (offloads: TSO super-packets arrive split)
//	-> size check (PMTU: ICMP "fragmentation needed" / "packet too big"
//	   with the tunnel MTU written back into the TUN, pmtu.go)
//	-> GRE header (RFC 2784, key per RFC 2890 when configured; mode gre,
//	   ESP next header 47) or nothing (mode ip, next header 4 or 41)
//	-> ESP Seal (package esp), spread over the worker pool
//	-> runs of equal-sized packets coalesced for UDP GSO
//	-> sendmmsg on the shared UDP socket (RFC 3948 encapsulation).
//
// Inbound (receive.go), per UDP socket, one goroutine:
//
//	recvmmsg batch (UDP GRO runs split into datagrams)
//	-> RFC 3948 classification: NAT-keepalive (counted, dropped), IKE
//	   behind the non-ESP marker (Options.IKE), ESP
//	-> SPI lookup in the manager's inbound SA table (lock-free)
//	-> ESP Open (ICV, anti-replay, padding), spread over the worker pool
//	-> next header: 59 = keepalive (liveness only), 47 = GRE (key and
//	   protocol checked), 4/41 = IP (mode ip)
//	-> inner packet checked (version, length) and written to the tunnel's
//	   TUN in batches (the TUN coalesces TCP flows back, GRO).
//
// Parallel crypto keeps order: a batch is cut into contiguous chunks, the
// chunks are sealed or opened on the workers at once, and the batch is sent
// (or written) in its original order only after every chunk is done
// (fork-join per batch). A flow's packets therefore never overtake each
// other; the ESP sequence numbers of one batch may be taken out of order,
// which the peer's replay window (>= 1024) absorbs.
//
// Every packet that is dropped is counted by reason, per tunnel and per
// direction (metrics.go: Prometheus havpn_tunnel_* and Status). Packets that
// cannot be attributed to a tunnel (an unknown SPI from an unknown sender,
// garbage on the port) are counted per socket.
//
// SAs (sa.go): InstallInbound, then InstallOutbound for the same child
// (an outbound SA names its inbound pair, which must exist); activating a
// new outbound SA replaces the old one at once and keeps the old one's
// inbound SA for a grace period (make-before-break, default 30 s), so
// packets the peer sent under the old keys still arrive. ExportSAs gives
// the table as plain data (esp.State) for state sync. Manual keys from the
// config are installed this way by New. The IKE daemon's SAInstaller maps
// onto InstallChild (InstallInbound+InstallOutbound, undone on failure),
// ActivateOutbound and RemoveChild; this package does not import ike.
//
// Liveness (liveness.go): every keepalive interval a tunnel that sent
// nothing since the last tick sends an ESP dummy packet (RFC 4303 §2.6:
// next header 59, no payload), which the receiver discards after the ICV
// and replay checks. Any authenticated packet from the peer, data or dummy,
// is a sign of life: the tunnel is Up from the first one and Down after
// keepalive.dead without one. Subscribe delivers the changes.
//
// The per-packet path does not allocate, log, or take a context; the
// buffers of a batch are allocated once per loop (64 KiB each, because of
// the offloads).
//
// Not done yet: adding or removing tunnels on a running Manager (config
// reload needs a new Manager), IP fragmentation of too-big inner IPv4
// packets without DF (they are sent, and the kernel fragments the outer UDP
// datagram), GRE sequence number ordering, several address families on
// one TUN.
package tunnel
