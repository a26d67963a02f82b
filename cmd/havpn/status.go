package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/havpn/havpn/internal/cluster"
	"github.com/havpn/havpn/internal/daemon"
	"github.com/havpn/havpn/internal/ike"
)

// statusTable renders `havpn status` in the style of crm_mon: who we are,
// our role and why, then the config in use.
func statusTable(raw json.RawMessage, t *table) error {
	var s daemon.Status
	if err := json.Unmarshal(raw, &s); err != nil {
		return err
	}
	t.row("Node:", s.Node, "site "+s.Site, "pid", s.PID, "up", s.Uptime)
	t.row("Role:", s.Role, s.Reason)
	t.row("Version:", s.Version)
	t.row("Config:", s.Config.Path, "hash "+s.Config.Hash, "reloads", s.Config.Reloads)
	if s.Config.LastReload != "" {
		t.row("Last reload:", s.Config.LastReload)
	}
	if c := s.Cluster; c != nil {
		clusterRows(t, c)
	}
	t.row("")
	t.row("RESOURCE", "TYPE", "STATE", "SINCE", "ERROR")
	for _, r := range s.Resources {
		t.row(r.Name, r.Type, r.State, since(r.Since), r.Error)
	}
	if tl := s.LastTransition; tl.Op != "" {
		t.row("")
		t.row(fmt.Sprintf("Last transition: %s at %s, %s, took %s", tl.Op, tl.Started.Format(time.TimeOnly), tl.Result, tl.Duration))
		for _, st := range tl.Steps {
			t.row("  "+st.Op, st.Resource, st.Result, st.Duration, st.Error)
		}
	}
	return nil
}

func since(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return time.Since(t).Round(time.Millisecond).String() + " ago"
}

// sasTable prints the IKE SAs like swanctl --list-sas.
func sasTable(raw json.RawMessage, t *table) error {
	var r daemon.SAsReply
	if err := json.Unmarshal(raw, &r); err != nil {
		return err
	}
	if !r.Running {
		t.row("IKE is not running on this node (standby)")
		return nil
	}
	var b strings.Builder
	if err := ike.WriteSAs(&b, r.SAs, time.Now()); err != nil {
		return err
	}
	for _, line := range strings.Split(strings.TrimRight(b.String(), "\n"), "\n") {
		t.row(line)
	}
	return nil
}

// clusterRows shows the peers and each link's last heard time, crm_mon
// style, and the cluster's last decision with its timeline.
func clusterRows(t *table, c *cluster.Status) {
	elig := "eligible"
	if !c.Eligible {
		elig = "not eligible: " + strings.Join(c.NotEligible, ", ")
	}
	t.row("Cluster:", fmt.Sprintf("node %d, priority %d, %s", c.NodeID, c.Priority, elig))
	t.row("")
	t.row("PEER", "STATE", "ROLE", "LINK", "LAST HEARD", "WARNINGS")
	for _, p := range c.Peers {
		state := p.State
		if p.Why != "" {
			state += " (" + p.Why + ")"
		}
		if len(p.Links) == 0 {
			t.row(p.Name, state, p.Role, "-", "-", "-")
		}
		for i, l := range p.Links {
			name, st, role := "", "", ""
			if i == 0 {
				name, st, role = p.Name, state, p.Role.String()
			}
			heard := "never"
			if !l.LastHeard.IsZero() {
				heard = l.LastHeardAgo.String() + " ago"
			}
			t.row(name, st, role, l.Link, heard, l.Warnings)
		}
	}
	if tr := c.LastTransition; tr != nil {
		t.row("")
		t.row(fmt.Sprintf("Last role change: %s -> %s: %s", tr.From, tr.To, tr.Reason))
		t.row(fmt.Sprintf("  detected %s, decided +%s, emitted +%s", tr.Detected.Format("15:04:05.000"),
			tr.At.Sub(tr.Detected), tr.Emitted.Sub(tr.Detected)))
	}
}
