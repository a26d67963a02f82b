package main

import (
	"encoding/json"

	"github.com/havpn/havpn/internal/daemon"
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
	return nil
}
