package resources

import (
	"fmt"
	"log/slog"

	"github.com/havpn/havpn/internal/config"
	"github.com/havpn/havpn/internal/vip"
)

// Deps is what NewFactory needs to build every resource type.
type Deps struct {
	// Log is required.
	Log *slog.Logger
	// Addrs and Announcer are the VIP backend (vip.Netlink in the daemon).
	Addrs     vip.AddrManager
	Announcer vip.Announcer
	// VIPMetrics may be nil.
	VIPMetrics *vip.Metrics
	// GARP is the announcement burst after a VIP is added
	// (config.Cluster.GARP; zero: none).
	GARP config.GARP
	// Starters drive tunnel, ike and bgp resources, keyed by resource name
	// (config.Resource.Name). A missing one gets NotWired.
	Starters map[string]Starter
}

// NewFactory returns the Factory of the real resource types.
func NewFactory(d Deps) Factory {
	return func(r config.Resource) (Resource, error) {
		switch r.Type {
		case config.ResourceVIP:
			v, err := vip.New(vip.Config{
				Interface:        r.Interface,
				Address:          r.Address,
				AnnounceCount:    d.GARP.Count,
				AnnounceInterval: d.GARP.Interval.D(),
			}, d.Addrs, d.Announcer, d.Log, d.VIPMetrics)
			if err != nil {
				return nil, err
			}
			return NewVIP(r.Name, v), nil
		case config.ResourceScript:
			return NewScript(r.Name, r.Path, d.Log), nil
		case config.ResourceTunnel, config.ResourceIKE, config.ResourceBGP:
			if s, ok := d.Starters[r.Name]; ok && s != nil {
				return NewStarter(r.Name, s), nil
			}
			return NewStarter(r.Name, NewNotWired(r, d.Log)), nil
		}
		return nil, fmt.Errorf("%w %q", ErrUnknownType, r.Type)
	}
}
