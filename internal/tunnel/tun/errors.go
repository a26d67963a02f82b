package tun

import "errors"

var (
	// ErrUnsupported is returned by Create on systems without a TUN
	// implementation; use tuntest there.
	ErrUnsupported = errors.New("tun devices are not supported on this system")
	// ErrConfig means a Config value is invalid; fix the configuration.
	ErrConfig = errors.New("invalid tun config")
)
