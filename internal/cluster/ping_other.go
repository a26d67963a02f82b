//go:build !linux

package cluster

import (
	"errors"
	"net/netip"
)

func newPinger(targets []netip.Addr) (Pinger, error) {
	return nil, errors.New("ping nodes are only implemented on Linux")
}
