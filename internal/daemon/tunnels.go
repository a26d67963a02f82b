package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/havpn/havpn/internal/config"
	"github.com/havpn/havpn/internal/statesync"
	"github.com/havpn/havpn/internal/tunnel"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netlink"
)

// tunnelStarter runs one configured tunnel as a resource: its dataplane is
// built at Start, when the VIPs before it in the group are up (the tunnel's
// socket binds the WAN VIP), and closed at Stop.
type tunnelStarter struct {
	cfg config.Tunnel
	d   *Daemon
	// startSeq is where manual outbound SAs start (state sync); nil = 1.
	startSeq func(tunnel string, spi uint32) uint64
	// onIKE takes IKE packets arriving on the tunnel's NAT-T socket.
	onIKE func(pkt []byte, from, to netip.AddrPort)

	mu  sync.Mutex // guards m and run
	m   *tunnel.Manager
	run chan error
}

// tunnelStarters makes a Starter per tunnel resource, keyed by resource
// name as resources.Deps wants.
func (d *Daemon) tunnelStarters(cfg *config.Config) map[string]*tunnelStarter {
	byName := map[string]config.Tunnel{}
	for _, t := range cfg.Tunnels {
		byName[t.Name] = t
	}
	out := map[string]*tunnelStarter{}
	for _, r := range cfg.Resources {
		if r.Type == config.ResourceTunnel {
			out[r.Name] = &tunnelStarter{cfg: byName[r.Tunnel], d: d}
		}
	}
	return out
}

func (s *tunnelStarter) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m != nil {
		return nil
	}
	reg := prometheus.NewRegistry()
	m, err := tunnel.New([]config.Tunnel{s.cfg}, tunnel.Options{Log: s.d.log, Registerer: reg, OutboundSeq: s.startSeq, IKE: s.onIKE})
	if err != nil {
		return fmt.Errorf("tunnel %s: %w", s.cfg.Name, err)
	}
	s.swapRegistry(reg)
	if err := addRoutes(s.cfg); err != nil {
		return errors.Join(err, m.Close())
	}
	run := make(chan error, 1)
	go func() { run <- m.Run(context.Background()) }()
	s.m, s.run = m, run
	return nil
}

// swapRegistry exposes the running Manager's metrics on /metrics in place
// of the previous run's (a Manager registers its collectors once).
func (s *tunnelStarter) swapRegistry(reg *prometheus.Registry) {
	s.d.setGatherer("tunnel/"+s.cfg.Name, reg)
}

func (s *tunnelStarter) Stop(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		return nil
	}
	err := s.m.Close()
	select {
	case rerr := <-s.run:
		if rerr != nil && !errors.Is(rerr, context.Canceled) {
			err = errors.Join(err, rerr)
		}
	case <-ctx.Done():
		err = errors.Join(err, fmt.Errorf("tunnel %s did not stop: %w", s.cfg.Name, ctx.Err()))
	}
	s.m = nil
	return err
}

// status is the tunnel's state, or a stopped placeholder.
func (s *tunnelStarter) status() []tunnel.Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		return []tunnel.Status{{Name: s.cfg.Name, Mode: string(s.cfg.Mode), State: "stopped", MTU: s.cfg.MTU}}
	}
	return s.m.Status()
}

// routeProtocol marks the routes havpn installs (RTPROT, shown by ip route as
// "proto 186").
const routeProtocol = 186

// addRoutes installs the tunnel's static routes through its interface; they
// go away with the interface when the tunnel stops.
func addRoutes(t config.Tunnel) error {
	if len(t.Routes) == 0 {
		return nil
	}
	link, err := netlink.LinkByName(t.Name)
	if err != nil {
		return fmt.Errorf("tunnel %s: finding its interface: %w", t.Name, err)
	}
	for _, p := range t.Routes {
		r := &netlink.Route{
			LinkIndex: link.Attrs().Index,
			Dst:       &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())},
			Scope:     netlink.SCOPE_LINK,
			Protocol:  routeProtocol,
		}
		if err := netlink.RouteReplace(r); err != nil {
			return fmt.Errorf("tunnel %s: route %s: %w", t.Name, p, err)
		}
	}
	return nil
}

// outboundSeqs are the sending SAs' counters, for state sync.
func (s *tunnelStarter) outboundSeqs() []statesync.Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		return nil
	}
	var out []statesync.Entry
	for _, sa := range s.m.ExportSAs() {
		if !sa.Inbound && sa.Active {
			out = append(out, statesync.Entry{Tunnel: sa.Tunnel, SPI: sa.SA.SPI, Seq: sa.SA.Seq})
		}
	}
	return out
}

// manager is the running dataplane, or nil.
func (s *tunnelStarter) manager() *tunnel.Manager {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m
}
