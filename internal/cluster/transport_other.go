//go:build !linux

package cluster

import (
	"errors"

	"github.com/havpn/havpn/internal/config"
)

func openLink(l config.Link, port uint16, key []byte) (Link, error) {
	return nil, errors.New("heartbeat links are only implemented on Linux")
}
