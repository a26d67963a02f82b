//go:build !linux

package fib

import (
	"context"
	"net/netip"
)

// NetlinkOptions configure NewNetlink.
type NetlinkOptions struct {
	// NetNS names the network namespace whose routing table to use.
	NetNS string
}

// Netlink is the Linux Kernel; on other systems NewNetlink fails.
type Netlink struct{}

// NewNetlink returns ErrUnsupported on this OS.
func NewNetlink(NetlinkOptions) (*Netlink, error) { return nil, ErrUnsupported }

// Close does nothing.
func (*Netlink) Close() error { return nil }

// Routes implements Kernel.
func (*Netlink) Routes(uint32, uint8) ([]Route, error) { return nil, ErrUnsupported }

// Apply implements Kernel.
func (*Netlink) Apply(ops []Op) []error {
	errs := make([]error, len(ops))
	for i := range errs {
		errs[i] = ErrUnsupported
	}
	return errs
}

// Connected implements Kernel.
func (*Netlink) Connected(uint32) (map[netip.Prefix]struct{}, error) { return nil, ErrUnsupported }

// Watch implements Kernel.
func (*Netlink) Watch(context.Context, func()) error { return ErrUnsupported }

// Addrs returns ErrUnsupported.
func (*Netlink) Addrs() ([]netip.Prefix, error) { return nil, ErrUnsupported }

// WatchRoutes returns ErrUnsupported.
func (*Netlink) WatchRoutes(context.Context, uint8, func()) error { return ErrUnsupported }

// WatchLinkDown returns ErrUnsupported.
func (*Netlink) WatchLinkDown(context.Context, func([]netip.Prefix)) error { return ErrUnsupported }

var _ Kernel = (*Netlink)(nil)
