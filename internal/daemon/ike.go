package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/havpn/havpn/internal/config"
	"github.com/havpn/havpn/internal/ike"
	"github.com/havpn/havpn/internal/tunnel"
	"github.com/havpn/havpn/internal/tunnel/esp"
	"github.com/prometheus/client_golang/prometheus"
)

// ikeStarter runs the IKE daemon as a resource: after the VIPs (it binds
// the WAN VIP on port 500) and the tunnels (whose shared socket owns the
// NAT-T port and hands IKE packets over), before BGP.
type ikeStarter struct {
	d   *Daemon
	p   *parts
	cfg ike.Config

	mu     sync.Mutex // guards the fields below
	daemon *ike.Daemon
	cancel context.CancelFunc
	done   chan error
}

// ikeStarters makes the Starter of each ike resource, keyed by resource
// name; the config is checked now, so that a bad certificate fails at start
// rather than at takeover.
func (d *Daemon) ikeStarters(cfg *config.Config, p *parts) (map[string]*ikeStarter, error) {
	out := map[string]*ikeStarter{}
	if cfg.IKE == nil {
		return out, nil
	}
	ic, err := ike.FromConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("ike: %w", err)
	}
	for _, r := range cfg.Resources {
		if r.Type == config.ResourceIKE {
			out[r.Name] = &ikeStarter{d: d, p: p, cfg: ic}
		}
	}
	return out, nil
}

func (s *ikeStarter) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.daemon != nil {
		return nil
	}
	reg := prometheus.NewRegistry()
	var addrs []netip.Addr
	for _, t := range s.p.cfg.Tunnels {
		if t.Keying == config.KeyingIKE {
			addrs = append(addrs, t.Local)
		}
	}
	dm, err := ike.NewDaemon(s.cfg, ike.DaemonOptions{
		Installer: ikeInstaller{s.p}, Log: s.d.log, Registerer: reg,
		ListenAddrs: addrs, SendNAT: s.p.sendNAT,
	})
	if err != nil {
		return fmt.Errorf("ike: %w", err)
	}
	s.d.setGatherer("ike", reg)
	rctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- dm.Run(rctx) }()
	s.daemon, s.cancel, s.done = dm, cancel, done
	s.p.ike.Store(dm)
	return nil
}

func (s *ikeStarter) Stop(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.daemon == nil {
		return nil
	}
	s.p.ike.Store(nil)
	s.cancel()
	var err error
	select {
	case rerr := <-s.done:
		if rerr != nil && !errors.Is(rerr, context.Canceled) {
			err = fmt.Errorf("ike: %w", rerr)
		}
	case <-ctx.Done():
		err = fmt.Errorf("ike did not stop: %w", ctx.Err())
	}
	s.daemon = nil
	return err
}

// sas lists the IKE SAs, nil when IKE is not running here.
func (s *ikeStarter) sas(ctx context.Context) ([]ike.SAInfo, error) {
	s.mu.Lock()
	dm := s.daemon
	s.mu.Unlock()
	if dm == nil {
		return nil, nil
	}
	return dm.SAs(ctx)
}

// handleIKE passes an IKE packet the dataplane got on the NAT-T port to
// the IKE daemon, if one runs.
func (p *parts) handleIKE(pkt []byte, from, to netip.AddrPort) {
	if dm := p.ike.Load(); dm != nil {
		dm.HandlePacket(pkt, from, to)
	}
}

// sendNAT sends an IKE packet from the NAT-T port through the tunnel whose
// socket has that local address.
func (p *parts) sendNAT(payload []byte, local, remote netip.AddrPort) error {
	for _, ts := range p.tunnels {
		if m := ts.manager(); m != nil && ts.cfg.Local == local.Addr().Unmap() {
			return m.SendUDP(payload, local, remote)
		}
	}
	return fmt.Errorf("no running tunnel owns %s", local)
}

// ikeInstaller adapts the IKE daemon's SA seam to the tunnels.
type ikeInstaller struct{ p *parts }

func (a ikeInstaller) manager(name string) (*tunnel.Manager, error) {
	for _, ts := range a.p.tunnels {
		if ts.cfg.Name == name {
			if m := ts.manager(); m != nil {
				return m, nil
			}
			return nil, fmt.Errorf("tunnel %s is not running", name)
		}
	}
	return nil, fmt.Errorf("no tunnel resource for %s", name)
}

func (a ikeInstaller) InstallChild(c ike.Child) error {
	m, err := a.manager(c.Tunnel)
	if err != nil {
		return err
	}
	in, err := childSA(c.In)
	if err != nil {
		return err
	}
	out, err := childSA(c.Out)
	if err != nil {
		return err
	}
	out.Pair, out.Local, out.Remote = c.In.SPI, c.Local, c.Remote
	if err := m.InstallInbound(c.Tunnel, in); err != nil {
		return err
	}
	if err := m.InstallOutbound(c.Tunnel, out, c.Activate); err != nil {
		return errors.Join(err, m.RemoveInbound(c.Tunnel, in.SPI))
	}
	return nil
}

func (a ikeInstaller) ActivateOutbound(name string, spi uint32) error {
	m, err := a.manager(name)
	if err != nil {
		return err
	}
	return m.ActivateOutbound(name, spi)
}

func (a ikeInstaller) RemoveChild(name string, in, out uint32) error {
	m, err := a.manager(name)
	if err != nil {
		return err
	}
	return m.RemoveChild(name, in, out)
}

func childSA(k ike.ChildKeys) (tunnel.SA, error) {
	c, err := esp.ParseCipher(k.Cipher)
	if err != nil {
		return tunnel.SA{}, err
	}
	return tunnel.SA{State: esp.State{Cipher: c, SPI: k.SPI, Key: k.Key, ESN: k.ESN}}, nil
}
