// Package clustertest has an in-memory heartbeat link for tests of
// cluster.Cluster and of its users: two Clusters in one process, joined by
// Wires that a test can cut and restore.
package clustertest

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/havpn/havpn/internal/cluster"
)

// Wire is a cable between two Ends: what one End sends, the other
// receives, unless the wire is cut. Each direction buffers 64 messages;
// more are lost, as on a real link.
type Wire struct {
	A, B *End
	down atomic.Bool
}

// NewWire returns a connected wire.
func NewWire() *Wire {
	w := &Wire{}
	w.A = &End{w: w, in: make(chan []byte, 64), closed: make(chan struct{})}
	w.B = &End{w: w, in: make(chan []byte, 64), closed: make(chan struct{})}
	w.A.peer.Store(w.B)
	w.B.peer.Store(w.A)
	return w
}

// ReplaceA gives side A a fresh End (for a node restarted after its
// Cluster closed the old one) and returns it.
func (w *Wire) ReplaceA() *End {
	e := &End{w: w, in: make(chan []byte, 64), closed: make(chan struct{})}
	e.peer.Store(w.B)
	w.B.peer.Store(e)
	w.A = e
	return e
}

// ReplaceB is ReplaceA for side B.
func (w *Wire) ReplaceB() *End {
	e := &End{w: w, in: make(chan []byte, 64), closed: make(chan struct{})}
	e.peer.Store(w.A)
	w.A.peer.Store(e)
	w.B = e
	return e
}

// SetUp cuts (false) or restores (true) the wire. Messages sent while it
// is cut are lost silently, like a pulled cable without carrier loss.
func (w *Wire) SetUp(up bool) { w.down.Store(!up) }

// End is one side of a Wire; it implements cluster.Link.
type End struct {
	w      *Wire
	peer   atomic.Pointer[End]
	in     chan []byte
	closed chan struct{}
	once   sync.Once
	// Lost counts messages lost to a cut wire or a full buffer.
	Lost atomic.Uint64
}

var _ cluster.Link = (*End)(nil)

// Kind names the link kind in cluster status.
func (e *End) Kind() string { return "pipe" }

// Send passes a copy of b to the other end.
func (e *End) Send(b []byte) error {
	select {
	case <-e.closed:
		return net.ErrClosed
	default:
	}
	if e.w.down.Load() {
		e.Lost.Add(1)
		return nil
	}
	select {
	case e.peer.Load().in <- append([]byte(nil), b...):
	default:
		e.Lost.Add(1)
	}
	return nil
}

// Inject delivers b to this end as if the other end had sent it (for
// forged or garbage messages).
func (e *End) Inject(b []byte) {
	select {
	case e.in <- append([]byte(nil), b...):
	default:
	}
}

// Recv waits for a message; it returns net.ErrClosed after Close.
func (e *End) Recv(b []byte) (int, netip.Addr, error) {
	select {
	case m := <-e.in:
		return copy(b, m), netip.Addr{}, nil
	case <-e.closed:
		return 0, netip.Addr{}, net.ErrClosed
	}
}

// Close closes this end; idempotent.
func (e *End) Close() error {
	e.once.Do(func() { close(e.closed) })
	return nil
}
