//go:build !linux

package udp

import "net/netip"

// Conn is not available on this system.
type Conn struct{}

// Listen returns ErrUnsupported on this system.
func Listen(laddr netip.AddrPort, o Options) (*Conn, error) { return nil, ErrUnsupported }

// ReadBatch returns ErrUnsupported.
func (c *Conn) ReadBatch(msgs []Message) (int, error) { return 0, ErrUnsupported }

// WriteBatch returns ErrUnsupported.
func (c *Conn) WriteBatch(msgs []Message) (int, error) { return 0, ErrUnsupported }

// LocalAddr returns the zero AddrPort.
func (c *Conn) LocalAddr() netip.AddrPort { return netip.AddrPort{} }

// Offloads reports false, false.
func (c *Conn) Offloads() (gso, gro bool) { return false, false }

// Close does nothing.
func (c *Conn) Close() error { return nil }
