//go:build !linux

package vip

import "net/netip"

// Netlink is the Linux backend; elsewhere every method fails with
// ErrUnsupported.
type Netlink struct{}

// NewNetlink fails with ErrUnsupported outside Linux.
func NewNetlink(netns string) (*Netlink, error) { return nil, ErrUnsupported }

// Close does nothing.
func (n *Netlink) Close() error { return nil }

// ReplaceAddr fails with ErrUnsupported.
func (n *Netlink) ReplaceAddr(string, netip.Prefix, uint32, uint32) error { return ErrUnsupported }

// DelAddr fails with ErrUnsupported.
func (n *Netlink) DelAddr(string, netip.Prefix) error { return ErrUnsupported }

// HasAddr fails with ErrUnsupported.
func (n *Netlink) HasAddr(string, netip.Prefix) (bool, error) { return false, ErrUnsupported }

// Open fails with ErrUnsupported.
func (n *Netlink) Open(string, netip.Addr) (Sender, error) { return nil, ErrUnsupported }
