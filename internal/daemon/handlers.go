package daemon

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"time"

	"github.com/havpn/havpn/internal/buildinfo"
	"github.com/havpn/havpn/internal/cluster"
	"github.com/havpn/havpn/internal/ctl"
	"github.com/havpn/havpn/internal/ike"
	"github.com/havpn/havpn/internal/resources"
	"github.com/havpn/havpn/internal/statesync"
	"github.com/havpn/havpn/internal/tunnel"
)

// Status is the reply to `havpn status`.
type Status struct {
	Node      string    `json:"node"`
	Site      string    `json:"site"`
	Version   string    `json:"version"`
	PID       int       `json:"pid"`
	Started   time.Time `json:"started"`
	Uptime    string    `json:"uptime"`
	Role      string    `json:"role"`
	Reason    string    `json:"reason"`
	RoleSince time.Time `json:"role_since"`
	// Cluster is the heartbeat cluster's view; absent on a standalone node.
	Cluster *cluster.Status `json:"cluster,omitempty"`
	// StateSync is what the standby copy holds; absent without it.
	StateSync *statesync.Status  `json:"statesync,omitempty"`
	Config    ConfigStatus       `json:"config"`
	Resources []resources.Status `json:"resources"`
	// LastTransition is the resource group's last start or stop, step by
	// step with durations.
	LastTransition resources.Timeline `json:"last_transition"`
}

// ConfigStatus describes the running config.
type ConfigStatus struct {
	Path       string    `json:"path"`
	Hash       string    `json:"hash"`
	LoadedAt   time.Time `json:"loaded_at"`
	Reloads    int       `json:"reloads"`
	LastReload string    `json:"last_reload,omitempty"`
}

// ActionReply answers state-changing commands.
type ActionReply struct {
	Message string `json:"message"`
}

func (d *Daemon) registerHandlers(srv *ctl.Server) {
	srv.Handle(ctl.CmdStatus, func(context.Context, json.RawMessage) (any, error) { return d.Status(), nil })
	srv.Handle(ctl.CmdReload, func(context.Context, json.RawMessage) (any, error) {
		if err := d.Reload(); err != nil {
			return nil, ctl.Errorf(ctl.CodeInvalid, "reload rejected, running config kept:\n%v", err)
		}
		return ActionReply{"config reloaded, hash " + d.Config().Hash()}, nil
	})
	srv.Handle(ctl.CmdLogLevel, d.handleLogLevel)
	srv.Handle(ctl.CmdStandby, d.clusterAction("standby", (*cluster.Cluster).Standby))
	srv.Handle(ctl.CmdTakeover, d.clusterAction("takeover", (*cluster.Cluster).Takeover))
	srv.Handle(ctl.CmdTunnels, d.handleTunnels)
	srv.Handle(ctl.CmdSAs, d.handleSAs)
	srv.Handle(ctl.CmdRoutes, d.handleRoutes)
	srv.Handle(ctl.CmdNeighbors, d.handleNeighbors)
}

// clusterAction runs an operator request on the cluster; a refusal (peer
// not healthy, maintenance) is CodeRefused, which the CLI exits 4 on.
func (d *Daemon) clusterAction(what string, op func(*cluster.Cluster) error) ctl.Handler {
	return func(context.Context, json.RawMessage) (any, error) {
		p := d.getParts()
		if p == nil || p.cluster == nil {
			return nil, ctl.Errorf(ctl.CodeUnavailable, "%s: this node has no cluster configured", what)
		}
		if err := op(p.cluster); err != nil {
			return nil, ctl.Errorf(ctl.CodeRefused, "%s refused: %v", what, err)
		}
		return ActionReply{what + ": done, role now " + p.cluster.Role().String()}, nil
	}
}

// TunnelsReply answers `havpn tunnels`.
type TunnelsReply struct {
	Tunnels []tunnel.Status `json:"tunnels"`
}

func (d *Daemon) handleTunnels(context.Context, json.RawMessage) (any, error) {
	p := d.getParts()
	r := TunnelsReply{Tunnels: []tunnel.Status{}}
	if p == nil {
		return r, nil
	}
	for _, name := range sortedNames(p.tunnels) {
		r.Tunnels = append(r.Tunnels, p.tunnels[name].status()...)
	}
	return r, nil
}

// SAsReply answers `havpn sas`.
type SAsReply struct {
	// Running is false on a node where IKE is configured but not running
	// (a standby).
	Running bool         `json:"running"`
	SAs     []ike.SAInfo `json:"sas"`
}

func (d *Daemon) handleSAs(ctx context.Context, _ json.RawMessage) (any, error) {
	p := d.getParts()
	if p == nil || len(p.ikes) == 0 {
		return nil, ctl.Errorf(ctl.CodeUnavailable, "sas: no IKE on this node (no ike resource configured)")
	}
	r := SAsReply{SAs: []ike.SAInfo{}}
	for _, name := range sortedNames(p.ikes) {
		sas, err := p.ikes[name].sas(ctx)
		if err != nil {
			return nil, ctl.Errorf(ctl.CodeInternal, "sas: %v", err)
		}
		if sas != nil {
			r.Running = true
		}
		r.SAs = append(r.SAs, sas...)
	}
	return r, nil
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func (d *Daemon) getParts() *parts {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.parts
}

func (d *Daemon) handleLogLevel(_ context.Context, args json.RawMessage) (any, error) {
	var a struct {
		Level string `json:"level"`
	}
	if err := json.Unmarshal(args, &a); err != nil {
		return nil, ctl.Errorf(ctl.CodeBadRequest, "log-level arguments: %v", err)
	}
	lvl, err := parseLevel(a.Level)
	if err != nil {
		return nil, ctl.Errorf(ctl.CodeInvalid, "%v", err)
	}
	d.level.Set(lvl)
	d.log.Info("log level changed", "level", lvl.String())
	return ActionReply{"log level set to " + lvl.String()}, nil
}

// Status returns a snapshot of the daemon.
func (d *Daemon) Status() Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := Status{
		Node:      d.cfg.Node.Name,
		Site:      d.cfg.Node.Site,
		Version:   buildinfo.String(),
		PID:       os.Getpid(),
		Started:   d.started,
		Uptime:    time.Since(d.started).Round(time.Second).String(),
		Role:      d.role,
		Reason:    d.roleReason,
		RoleSince: d.roleSince,
		Config: ConfigStatus{
			Path: d.cfg.Path, Hash: d.cfg.Hash(), LoadedAt: d.loadedAt,
			Reloads: d.reloads, LastReload: d.lastReload,
		},
	}
	if d.parts != nil {
		st.Resources = d.parts.group.Snapshot()
		st.LastTransition = d.parts.group.Timeline()
		if d.parts.cluster != nil {
			cs := d.parts.cluster.Status()
			st.Cluster = &cs
		}
		if d.parts.sync != nil {
			ss := d.parts.sync.Status()
			st.StateSync = &ss
		}
	}
	return st
}
