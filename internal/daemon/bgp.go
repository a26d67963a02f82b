package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"

	"github.com/havpn/havpn/internal/bgp"
	"github.com/havpn/havpn/internal/config"
	"github.com/havpn/havpn/internal/ctl"
	"github.com/havpn/havpn/internal/fib"
	"github.com/havpn/havpn/internal/resources"
	"github.com/havpn/havpn/internal/statesync"
)

// buildBGP makes the BGP speaker when the config has a bgp section. It is
// a resource (started after the tunnels and IKE, whose tunnel carries its
// sessions) unless bgp.always_on, when Run starts it at once. A standby
// that takes over starts it with the routes the old active had installed
// (state sync), so that forwarding does not wait for the sessions.
func (d *Daemon) buildBGP(p *parts) error {
	if p.cfg.BGP == nil {
		return nil
	}
	s, err := bgp.New(p.cfg.BGP, bgp.Options{
		Log: d.log, Registerer: d.reg, Inherited: p.inheritedRoutes,
		HandOver: p.cfg.Cluster != nil, // the peer takes over: neighbors keep our routes
	})
	if err != nil {
		return err
	}
	p.bgp = s
	return nil
}

// bgpStarters maps each bgp resource to the speaker.
func (p *parts) bgpStarters(starters map[string]resources.Starter) {
	for _, r := range p.cfg.Resources {
		if r.Type == config.ResourceBGP && p.bgp != nil {
			starters[r.Name] = p.bgp
		}
	}
}

// inheritedRoutes are the routes the peer had installed while active, for
// the speaker to put in the kernel when this node takes over.
func (p *parts) inheritedRoutes() []fib.Route {
	if p.sync == nil {
		return nil
	}
	rs, _ := p.sync.Routes()
	out := make([]fib.Route, 0, len(rs))
	for _, r := range rs {
		hops := make([]fib.NextHop, len(r.NextHops))
		for i, h := range r.NextHops {
			hops[i] = fib.NextHop{Gateway: h}
		}
		out = append(out, fib.Route{Prefix: r.Prefix, NextHops: hops})
	}
	return out
}

// syncRoutes are the routes this node has installed, for the standby.
func (p *parts) syncRoutes() []statesync.Route {
	if p.bgp == nil || !p.bgp.Running() {
		return nil
	}
	rs := p.bgp.FIBRoutes()
	out := make([]statesync.Route, 0, min(len(rs), statesync.MaxRoutes))
	for _, r := range rs[:min(len(rs), statesync.MaxRoutes)] {
		hops := make([]netip.Addr, 0, len(r.NextHops))
		for _, h := range r.NextHops {
			hops = append(hops, h.Gateway)
		}
		out = append(out, statesync.Route{Prefix: r.Prefix, NextHops: hops})
	}
	return out
}

// RoutesReply answers `havpn routes`.
type RoutesReply struct {
	// Running is false where BGP is configured but not running (a
	// standby); Routes is then empty and Synced lists what this node
	// would install at takeover.
	Running bool              `json:"running"`
	Routes  []bgp.Route       `json:"routes"`
	FIB     fib.Stats         `json:"fib"`
	Synced  []statesync.Route `json:"synced,omitempty"`
}

// NeighborsReply answers `havpn neighbors`.
type NeighborsReply struct {
	Running   bool           `json:"running"`
	Neighbors []bgp.Neighbor `json:"neighbors"`
}

func (d *Daemon) handleRoutes(context.Context, json.RawMessage) (any, error) {
	s, err := d.speaker("routes")
	if err != nil {
		return nil, err
	}
	r := RoutesReply{Running: s.Running(), Routes: []bgp.Route{}, FIB: s.FIBStats()}
	rs, err := s.Routes()
	switch {
	case errors.Is(err, bgp.ErrNotRunning):
		if p := d.getParts(); p.sync != nil {
			r.Synced, _ = p.sync.Routes()
		}
	case err != nil:
		return nil, ctl.Errorf(ctl.CodeInternal, "routes: %v", err)
	default:
		r.Routes = rs
	}
	return r, nil
}

func (d *Daemon) handleNeighbors(context.Context, json.RawMessage) (any, error) {
	s, err := d.speaker("neighbors")
	if err != nil {
		return nil, err
	}
	return NeighborsReply{Running: s.Running(), Neighbors: s.Neighbors()}, nil
}

func (d *Daemon) speaker(what string) (*bgp.Speaker, error) {
	p := d.getParts()
	if p == nil || p.bgp == nil {
		return nil, ctl.Errorf(ctl.CodeUnavailable, "%s: no BGP on this node (no bgp section in %s)", what, d.Config().Path)
	}
	return p.bgp, nil
}

// startAlwaysOn starts a speaker that runs whatever the role.
func (d *Daemon) startAlwaysOn(ctx context.Context, p *parts) {
	if p.bgp == nil || !p.cfg.BGP.AlwaysOn {
		return
	}
	if err := p.bgp.Start(ctx); err != nil {
		d.log.Error("starting bgp (always_on)", "err", err)
	}
}
