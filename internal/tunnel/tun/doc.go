// Package tun is havpn's TUN device seam: a point-to-point layer-3
// interface per tunnel with batched reads and writes.
//
// On Linux, Create makes the interface with golang.zx2c4.com/wireguard/tun,
// which opens it with IFF_VNET_HDR and turns on the kernel offloads
// (TUN_F_CSUM, TSO4/6 and, from Linux 6.2, USO4/6): a Read may return a
// TCP or UDP super-packet from the kernel split into up to BatchSize()
// MTU-sized packets, and a Write coalesces runs of packets of one flow back
// into super-packets (GRO) before they reach the kernel. The interface is
// then configured through netlink (vishvananda/netlink) in the network
// namespace of the calling thread: MTU, multicast on, transmit queue
// length, the inner address with its point-to-point peer, and up.
//
// Package tuntest has an in-memory Device for tests.
//
// Not done: IPv6 link-local addresses on the interface (a TUN has no
// hardware address, so the kernel makes none; OSPFv3 would need one), and
// a second address family on one interface.
package tun
