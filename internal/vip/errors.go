package vip

import "errors"

var (
	// ErrInvalidConfig means a Config cannot work (no interface, an invalid
	// address, a refresh interval not below the lifetime). Fix the
	// configuration; retrying does not help.
	ErrInvalidConfig = errors.New("invalid vip config")

	// ErrUnsupported is returned by the netlink backend on platforms other
	// than Linux.
	ErrUnsupported = errors.New("vip: not supported on this platform")
)
