package cluster

import (
	"errors"
	"net"
	"net/netip"
	"sync"
)

// Link is one heartbeat path as a Cluster uses it. The Linux
// implementations are UDP unicast, UDP multicast and serial
// (transport_linux.go); package clustertest has an in-memory pair.
//
// Send and Recv may be called concurrently with each other (one sender, one
// receiver); Close may be called at any time, more than once.
type Link interface {
	// Send transmits one heartbeat message without blocking. An error
	// means the message was not handed to the OS; it is counted and not
	// retried (the next heartbeat follows within a keepalive).
	Send(msg []byte) error
	// Recv blocks until a message arrives, copies it into b and returns its
	// length and, for UDP links, its source address (invalid otherwise). A
	// message longer than b is truncated to len(b). After Close, Recv
	// returns an error wrapping net.ErrClosed.
	Recv(b []byte) (n int, from netip.Addr, err error)
	// Close releases the link and unblocks Recv.
	Close() error
}

// LinkKind is optionally implemented by a Link to name its kind in status
// ("unicast", "multicast", "serial").
type LinkKind interface {
	Kind() string
}

// errSkipped is returned by a Link's Send that left a message out on
// purpose (a serial line still busy with the previous frame); it is
// counted neither as sent nor as an error.
var errSkipped = errors.New("heartbeat skipped: line busy")

// dropReporter is implemented by links that discard messages themselves
// (a serial link resynchronising past a frame that does not authenticate),
// so that those drops are counted too.
type dropReporter interface {
	setDropFunc(func(DropReason))
}

// deadLink stands in for a configured link that is not open: its device
// was missing when Run started, or went away. Sends fail with the reason;
// Run's reopener replaces it when the link can be opened again.
type deadLink struct {
	err    error
	closed chan struct{}
	once   sync.Once
}

func newDeadLink(err error) *deadLink { return &deadLink{err: err, closed: make(chan struct{})} }

func (d *deadLink) Kind() string          { return "closed" }
func (d *deadLink) Send(msg []byte) error { return d.err }

func (d *deadLink) Recv(b []byte) (int, netip.Addr, error) {
	<-d.closed
	return 0, netip.Addr{}, net.ErrClosed
}

func (d *deadLink) Close() error {
	d.once.Do(func() { close(d.closed) })
	return nil
}

func (d *deadLink) fd() int { return -1 }

func (d *deadLink) recvNonblock(b []byte) (int, netip.Addr, bool, error) {
	return 0, netip.Addr{}, false, nil
}
