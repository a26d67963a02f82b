package resources

import (
	"context"

	"github.com/havpn/havpn/internal/vip"
)

// VIP is a vip resource: Start acquires the address (add, refresh, announce),
// Stop releases it.
type VIP struct {
	name string
	v    *vip.VIP
}

// NewVIP wraps v as the resource called name.
func NewVIP(name string, v *vip.VIP) *VIP { return &VIP{name: name, v: v} }

// Name implements Resource.
func (r *VIP) Name() string { return r.name }

// VIP returns the wrapped VIP, for status.
func (r *VIP) VIP() *vip.VIP { return r.v }

// Start implements Resource.
func (r *VIP) Start(ctx context.Context) error { return r.v.Acquire(ctx) }

// Stop implements Resource.
func (r *VIP) Stop(ctx context.Context) error { return r.v.Release(ctx) }

// Status reports what the kernel has: running when the address is on the
// interface (even if this process does not hold it: a leftover is a dual
// owner in the making), stopped when it is not.
func (r *VIP) Status(ctx context.Context) (State, error) {
	ok, err := r.v.Present()
	switch {
	case err != nil:
		return StateUnknown, err
	case ok:
		return StateRunning, nil
	}
	return StateStopped, nil
}
