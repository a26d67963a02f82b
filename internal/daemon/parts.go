package daemon

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync/atomic"
	"time"

	"github.com/havpn/havpn/internal/bgp"
	"github.com/havpn/havpn/internal/cluster"
	"github.com/havpn/havpn/internal/config"
	"github.com/havpn/havpn/internal/ike"
	"github.com/havpn/havpn/internal/linkmon"
	"github.com/havpn/havpn/internal/resources"
	"github.com/havpn/havpn/internal/statesync"
	"github.com/havpn/havpn/internal/vip"
	"golang.org/x/sync/errgroup"
)

// parts are the components built from the config, owned by Run.
type parts struct {
	cfg     *config.Config
	vipNL   *vip.Netlink
	group   *resources.Group
	cluster *cluster.Cluster           // nil on a standalone node
	linkmon *linkmon.Monitor           // nil when nothing is monitored
	tunnels map[string]*tunnelStarter  // by resource name
	sync    *statesync.Syncer          // nil without state sync
	ikes    map[string]*ikeStarter     // by resource name
	ike     atomic.Pointer[ike.Daemon] // the running IKE daemon, for the dataplane
	bgp     *bgp.Speaker               // nil without a bgp section

	stopCluster context.CancelFunc // ends the cluster's goroutines
	clusterDone *errgroup.Group
}

// buildParts makes the resource group (VIPs, scripts, and stand-ins for
// parts not wired yet).
func (d *Daemon) buildParts(cfg *config.Config) (*parts, error) {
	nl, err := vip.NewNetlink("")
	if err != nil {
		return nil, fmt.Errorf("vip backend: %w", err)
	}
	p, err := d.buildPartsWith(cfg, nl)
	if err != nil {
		return nil, errors.Join(err, p.close())
	}
	return p, nil
}

func (d *Daemon) buildPartsWith(cfg *config.Config, nl *vip.Netlink) (*parts, error) {
	vm, err := vip.NewMetrics(d.reg)
	if err != nil {
		return &parts{vipNL: nl}, err
	}
	garp := config.GARP{Count: 5, Interval: config.Duration(20 * time.Millisecond)}
	if cfg.Cluster != nil {
		garp = cfg.Cluster.GARP
	}
	p := &parts{cfg: cfg, vipNL: nl, tunnels: d.tunnelStarters(cfg)}
	if err := d.buildBGP(p); err != nil {
		return p, err
	}
	starters := map[string]resources.Starter{}
	for name, ts := range p.tunnels {
		ts.startSeq, ts.onIKE = p.outboundSeq, p.handleIKE
		starters[name] = ts
	}
	if p.ikes, err = d.ikeStarters(cfg, p); err != nil {
		return p, err
	}
	for name, is := range p.ikes {
		starters[name] = is
	}
	p.bgpStarters(starters)
	p.group, err = resources.NewGroup(cfg.Resources, resources.NewFactory(resources.Deps{
		Log: d.log, Addrs: nl, Announcer: nl, VIPMetrics: vm, GARP: garp, Starters: starters,
	}), resources.Options{Log: d.log, Registerer: d.reg})
	if err != nil {
		return p, fmt.Errorf("resource group: %w", err)
	}
	if cfg.Cluster != nil {
		if err := errors.Join(d.buildCluster(p), d.buildSync(p)); err != nil {
			return p, err
		}
	}
	return p, nil
}

// close releases what the parts hold after the group is stopped. It is
// safe on parts that were only partly built.
func (p *parts) close() error {
	var errs []error
	if p.bgp != nil {
		errs = append(errs, p.bgp.Close())
	}
	return errors.Join(append(errs, p.vipNL.Close())...)
}

// becomeActive starts the resource group in order; a failure has already
// been rolled back by the group.
func (d *Daemon) becomeActive(ctx context.Context, reason string) error {
	d.setRole("active", reason)
	if err := d.parts.group.Start(ctx); err != nil {
		d.setRole("failed", "resource group failed to start: "+err.Error())
		return err
	}
	return nil
}

// release stops the resource group in reverse order, after deleting the
// VIPs at once: the peer may hold them already (a thawed or handing-over
// node), and the other steps (BGP's handover, IKE, the tunnel) can take a
// second, which would make a dual owner of the addresses meanwhile.
func (d *Daemon) release(ctx context.Context, reason string) error {
	for name, v := range groupVIPs(d.parts.group) {
		if err := v.Release(ctx); err != nil {
			d.log.Warn("deleting the VIP ahead of the release", "resource", name, "err", err)
		}
	}
	err := d.parts.group.Stop(ctx)
	d.setRole("standby", reason)
	return err
}

// groupVIPs lists the group's VIPs by resource name.
func groupVIPs(g *resources.Group) map[string]*vip.VIP {
	out := map[string]*vip.VIP{}
	for _, st := range g.Snapshot() {
		if r, ok := g.Resource(st.Name).(*resources.VIP); ok {
			out[st.Name] = r.VIP()
		}
	}
	return out
}

func (d *Daemon) setRole(role, reason string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.role, d.roleReason, d.roleSince = role, reason, time.Now()
	d.log.Info("role", "role", role, "reason", reason)
}

// checkRestartOnly refuses changes to sections that are built once at
// start: applying them live is not implemented yet, and half-applying them
// would be worse.
func checkRestartOnly(old, next *config.Config) []error {
	var errs []error
	for _, f := range []struct {
		name string
		a, b any
	}{
		{"cluster", old.Cluster, next.Cluster},
		{"resources", old.Resources, next.Resources},
		{"tunnels", old.Tunnels, next.Tunnels},
		{"ike", old.IKE, next.IKE},
		{"bgp", old.BGP, next.BGP},
		{"statesync", old.StateSync, next.StateSync},
	} {
		if !reflect.DeepEqual(f.a, f.b) {
			errs = append(errs, fmt.Errorf("%s: changing it needs a restart (live reload of this section is not implemented yet)", f.name))
		}
	}
	return errs
}
