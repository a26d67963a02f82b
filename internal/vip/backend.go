package vip

import (
	"io"
	"net/netip"
)

// AddrManager adds, refreshes, removes and queries interface addresses.
// Netlink implements it with rtnetlink; viptest.Fake records calls as text.
// Implementations must be safe for concurrent use.
type AddrManager interface {
	// ReplaceAddr adds p to iface, or updates it when present, with the given
	// valid and preferred lifetimes in seconds (both >= 1). IPv6 addresses
	// are added without duplicate address detection so that they are usable
	// (and announceable) at once. An address already present is not an
	// error: its lifetimes are reset.
	ReplaceAddr(iface string, p netip.Prefix, validSec, preferredSec uint32) error
	// DelAddr removes p from iface. An address or an interface that does not
	// exist is not an error.
	DelAddr(iface string, p netip.Prefix) error
	// HasAddr reports whether p (address and prefix length) is on iface.
	HasAddr(iface string, p netip.Prefix) (bool, error)
}

// Announcer opens senders of gratuitous ARP (IPv4) or unsolicited Neighbor
// Advertisements (IPv6). Implementations must be safe for concurrent use.
type Announcer interface {
	// Open prepares announcements of addr on iface: it resolves the
	// interface and opens the socket, so that each Send is one write.
	// The address must already be on the interface.
	Open(iface string, addr netip.Addr) (Sender, error)
}

// Sender sends one announcement per Send. A Sender is used by one goroutine
// at a time; Close releases its socket.
type Sender interface {
	Send() error
	io.Closer
}
