//go:build !linux

package linkmon

import (
	"context"
	"errors"
)

// Monitor is only implemented on Linux.
type Monitor struct{}

// New fails outside Linux.
func New(ifaces []string, opts Options) (*Monitor, error) {
	return nil, errors.New("link monitor: not supported on this platform")
}

// Events returns nil outside Linux.
func (m *Monitor) Events() <-chan Event { return nil }

// State reports nothing outside Linux.
func (m *Monitor) State(iface string) (Event, bool) { return Event{}, false }

// States reports nothing outside Linux.
func (m *Monitor) States() []Event { return nil }

// Run fails outside Linux.
func (m *Monitor) Run(ctx context.Context) error {
	return errors.New("link monitor: not supported on this platform")
}
