package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/havpn/havpn/internal/cluster"
	"github.com/havpn/havpn/internal/linkmon"
	"github.com/havpn/havpn/internal/resources"
	"golang.org/x/sync/errgroup"
)

// buildCluster makes the heartbeat cluster and the link monitor for a
// clustered node. The cluster decides; the daemon acts on its events.
func (d *Daemon) buildCluster(p *parts) error {
	cfg := p.cfg
	cl, err := cluster.New(cfg, cluster.Options{Log: d.log, Registerer: d.reg})
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	p.cluster = cl
	if cfg.Cluster.LockMemory {
		// A heartbeat loop that pages in under memory pressure misses its
		// deadlines; the cluster's own thread goes real-time by itself.
		if err := cluster.LockMemory(); err != nil {
			d.log.Warn("locking memory (cluster.lock_memory)", "err", err)
		}
	}
	if len(cfg.Cluster.Monitor) > 0 {
		lm, err := linkmon.New(cfg.Cluster.Monitor, linkmon.Options{Log: d.log, Registerer: d.reg})
		if err != nil {
			return fmt.Errorf("link monitor: %w", err)
		}
		p.linkmon = lm
	}
	return nil
}

// forwardCarrier feeds carrier changes of monitored interfaces to the
// cluster (the seed's MII monitoring).
func forwardCarrier(ctx context.Context, lm *linkmon.Monitor, cl *cluster.Cluster) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-lm.Events():
			if !ok {
				return nil
			}
			cl.SetCarrier(ev.Iface, ev.Present && ev.Carrier)
		}
	}
}

// followRole acts on the cluster's decisions: start the resource group on
// active (in the background, so that a release can cancel it), stop it on
// standby, announce the VIPs again on Reannounce. A group that fails to
// start has rolled itself back; the node then hands over.
func (d *Daemon) followRole(ctx context.Context, p *parts) error {
	var starting sync.WaitGroup
	defer starting.Wait()
	for {
		var ev cluster.RoleEvent
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-p.cluster.Events():
			if !ok {
				return nil
			}
			ev = e
		}
		d.noteTransition(ev)
		if p.sync != nil {
			p.sync.SetSending(ev.Role == cluster.RoleActive)
		}
		switch {
		case ev.Role == cluster.RoleActive && ev.Reannounce:
			d.reannounce(ctx, p.group)
		case ev.Role == cluster.RoleActive:
			starting.Add(1)
			go func() {
				defer starting.Done()
				if err := d.becomeActive(ctx, ev.Reason); err != nil && ctx.Err() == nil {
					d.log.Error("resource group failed; handing over", "err", err)
					if herr := p.cluster.Standby(); herr != nil {
						d.log.Error("handing over after a failed start", "err", herr)
					}
				}
			}()
		default:
			if err := d.release(ctx, ev.Reason); err != nil {
				d.log.Error("releasing the resource group", "err", err)
			}
		}
	}
}

func (d *Daemon) reannounce(ctx context.Context, g *resources.Group) {
	for name, v := range groupVIPs(g) {
		if err := v.Reannounce(ctx); err != nil {
			d.log.Warn("announcing the VIP again", "resource", name, "err", err)
		}
	}
}

// noteTransition records the cluster's decision time for status.
func (d *Daemon) noteTransition(ev cluster.RoleEvent) {
	d.log.Info("cluster decision", "role", ev.Role.String(), "reason", ev.Reason,
		"quiet", ev.Quiet, "detected", ev.Detected, "decided", ev.At)
}

// runCluster starts the cluster, the link monitor and the role follower
// under their own context, so that drain can stop them before it releases
// the resources (a decision arriving mid-drain would start them again).
func (d *Daemon) runCluster(serveCtx context.Context, p *parts) {
	ctx, cancel := context.WithCancel(serveCtx)
	g, gctx := errgroup.WithContext(ctx)
	p.stopCluster, p.clusterDone = cancel, g
	g.Go(func() error { return p.cluster.Run(gctx) })
	g.Go(func() error { return d.followRole(gctx, p) })
	if p.sync != nil {
		g.Go(func() error { return p.sync.Run(gctx) })
	}
	if p.linkmon != nil {
		g.Go(func() error { return p.linkmon.Run(gctx) })
		g.Go(func() error { return forwardCarrier(gctx, p.linkmon, p.cluster) })
	}
}

// handoverWait bounds how long a stopping active node waits for its peer
// to take over before it releases anyway.
const handoverWait = time.Second

// stopCluster hands the active role to a healthy peer (so that it takes
// over now rather than after the deadtime), then stops the cluster.
func (d *Daemon) stopCluster(ctx context.Context) error {
	p := d.parts
	if p.cluster == nil || p.stopCluster == nil {
		return nil
	}
	if p.cluster.Role() == cluster.RoleActive {
		if err := p.cluster.Standby(); err != nil {
			d.log.Warn("no handover before stopping: the peer will take over after the deadtime", "err", err)
		} else {
			wctx, cancel := context.WithTimeout(ctx, handoverWait)
			for p.cluster.Role() == cluster.RoleActive && wctx.Err() == nil {
				time.Sleep(5 * time.Millisecond)
			}
			cancel()
		}
	}
	p.stopCluster()
	if err := p.clusterDone.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("cluster: %w", err)
	}
	return nil
}
