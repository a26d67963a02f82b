//go:build !linux

package tun

// Create is not available on this system: it returns ErrUnsupported.
func Create(c Config) (Device, error) {
	return nil, ErrUnsupported
}
