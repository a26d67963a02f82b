package main

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/havpn/havpn/internal/daemon"
)

// routesTable renders `havpn routes` like `gobgp global rib`: best paths
// marked "*>", and whether the kernel route goes via this path.
func routesTable(raw json.RawMessage, t *table) error {
	var r daemon.RoutesReply
	if err := json.Unmarshal(raw, &r); err != nil {
		return err
	}
	if !r.Running {
		t.row("BGP is not running on this node (standby).")
		if len(r.Synced) == 0 {
			t.row("No routes handed over by the active yet.")
			return nil
		}
		t.row("Routes the active handed over, installed at takeover:")
		t.row("")
		t.row("PREFIX", "NEXT HOPS")
		for _, s := range r.Synced {
			t.row(s.Prefix, joinAddrs(s.NextHops))
		}
		return nil
	}
	t.row("", "PREFIX", "NEXT HOP", "PEER", "AS PATH", "ORIGIN", "LOCPRF", "AGE", "KERNEL")
	now := time.Now()
	for _, rt := range r.Routes {
		mark, hop, peer, age, kernel := "", "-", "local", "-", "-"
		if rt.Best {
			mark = "*>"
		}
		if rt.Stale {
			mark += " S"
		}
		if rt.NextHop.IsValid() {
			hop = rt.NextHop.String()
		}
		if rt.Peer.IsValid() {
			peer = rt.Peer.String()
		}
		if !rt.Since.IsZero() {
			age = now.Sub(rt.Since).Round(time.Second).String()
		}
		if rt.Installed {
			kernel = "installed"
		}
		lp := "-"
		if rt.LocalPref != 0 {
			lp = fmt.Sprint(rt.LocalPref)
		}
		t.row(mark, rt.Prefix, hop, peer, asPath(rt.ASPath), rt.Origin, lp, age, kernel)
	}
	t.row("")
	t.row(fmt.Sprintf("Kernel: %d installed, %d stale (of an earlier run or handed over), %d failed", r.FIB.Installed, r.FIB.Stale, r.FIB.Failed))
	return nil
}

// neighborsTable renders `havpn neighbors` like FRR's `show bgp summary`.
func neighborsTable(raw json.RawMessage, t *table) error {
	var r daemon.NeighborsReply
	if err := json.Unmarshal(raw, &r); err != nil {
		return err
	}
	if !r.Running {
		t.row("BGP is not running on this node (standby).")
	}
	t.row("NEIGHBOR", "AS", "TYPE", "STATE", "FOR", "ROUTER ID", "HOLD", "PFX RCVD", "PFX SENT", "UPDATES IN/OUT", "LAST ERROR")
	now := time.Now()
	for _, n := range r.Neighbors {
		since, rid, hold := "-", "-", "-"
		if !n.Since.IsZero() {
			since = now.Sub(n.Since).Round(time.Second).String()
		}
		if n.RouterID.IsValid() {
			rid = n.RouterID.String()
		}
		if n.HoldTime != 0 {
			hold = n.HoldTime.String()
		}
		t.row(n.Address, n.RemoteAS, n.Type, stateName(n.State), since, rid, hold,
			n.PrefixesReceived, n.PrefixesAdvertised, fmt.Sprintf("%d/%d", n.UpdatesReceived, n.UpdatesSent), orDash(n.LastError))
	}
	return nil
}

// stateName writes an FSM state as RFC 4271 and FRR spell it.
func stateName(s string) string {
	switch s {
	case "opensent":
		return "OpenSent"
	case "openconfirm":
		return "OpenConfirm"
	case "":
		return "-"
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func asPath(as []uint32) string {
	if len(as) == 0 {
		return "-"
	}
	parts := make([]string, len(as))
	for i, a := range as {
		parts[i] = fmt.Sprint(a)
	}
	return strings.Join(parts, " ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func joinAddrs(as []netip.Addr) string {
	parts := make([]string, len(as))
	for i, a := range as {
		parts[i] = a.String()
	}
	return strings.Join(parts, ", ")
}
