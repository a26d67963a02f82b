package cluster

import (
	"time"

	"github.com/havpn/havpn/internal/config"
)

// Status is a snapshot of one node's cluster state, plain data for
// `havpn status` (text and JSON) and the control socket. Durations are
// config.Duration (JSON "35ms"); times are wall clock.
type Status struct {
	Node        string    `json:"node"`
	NodeID      uint8     `json:"node_id"`
	Role        Role      `json:"role"`
	RoleSince   time.Time `json:"role_since"`
	Priority    uint8     `json:"priority"`
	Eligible    bool      `json:"eligible"`
	NotEligible []string  `json:"not_eligible,omitempty"` // why not (maintenance, carrier, ping)
	Maintenance bool      `json:"maintenance"`
	// Preference is the operator's: "standby" (after havpn standby),
	// "takeover" (after havpn takeover) or "".
	Preference      string `json:"preference,omitempty"`
	TakeoverPending bool   `json:"takeover_pending,omitempty"`
	HandingOverTo   string `json:"handing_over_to,omitempty"`
	Yielding        bool   `json:"yielding,omitempty"`

	Carrier       []CarrierStatus `json:"carrier,omitempty"`
	PingNodes     int             `json:"ping_nodes"`
	PingReachable int             `json:"ping_reachable"`
	PingTargets   []PingTarget    `json:"ping_targets,omitempty"`
	ConfigHash    string          `json:"config_hash"`

	Epoch   uint64      `json:"epoch"`
	Started time.Time   `json:"started"`
	Timers  TimerStatus `json:"timers"`

	Peers []PeerStatus `json:"peers"`
	Links []LinkStatus `json:"links"`

	LastTransition *TransitionStatus `json:"last_transition,omitempty"`
	Transitions    uint64            `json:"transitions"`
	Stalls         uint64            `json:"stalls"`
	LateTimers     uint64            `json:"late_timers"`
	Drops          map[string]uint64 `json:"drops"`
}

// TimerStatus repeats the heartbeat timers.
type TimerStatus struct {
	Keepalive config.Duration `json:"keepalive"`
	Warntime  config.Duration `json:"warntime"`
	Deadtime  config.Duration `json:"deadtime"`
	Initdead  config.Duration `json:"initdead"`
}

// CarrierStatus is the carrier of one monitored interface.
type CarrierStatus struct {
	Iface string `json:"iface"`
	Up    bool   `json:"up"`
}

// PeerStatus is what this node knows of one peer.
type PeerStatus struct {
	Name   string `json:"name"`
	NodeID uint8  `json:"node_id"`
	// State is "alive", "dead" or "unknown" (not heard since start,
	// initdead not over).
	State string `json:"state"`
	// Why explains a dead state ("silent on all links for 152ms", "left").
	Why      string `json:"why,omitempty"`
	Role     Role   `json:"role"`
	Priority uint8  `json:"priority"`
	// Eligible: a healthy handover target (alive, eligible, same config
	// hash, hears us, reaches a ping node if configured).
	Eligible      bool             `json:"eligible"`
	NotEligible   []string         `json:"not_eligible,omitempty"`
	HearsUs       bool             `json:"hears_us"`
	ConfigHash    string           `json:"config_hash,omitempty"`
	PingReachable int              `json:"ping_reachable"`
	Flags         []string         `json:"flags,omitempty"`
	LastHeard     time.Time        `json:"last_heard,omitzero"`
	LastHeardAgo  config.Duration  `json:"last_heard_ago,omitempty"`
	Epoch         uint64           `json:"epoch,omitempty"`
	Seq           uint64           `json:"seq,omitempty"`
	Restarts      uint64           `json:"restarts,omitempty"`
	Links         []PeerLinkStatus `json:"links"`
}

// PeerLinkStatus is one peer as heard on one link.
type PeerLinkStatus struct {
	Link string `json:"link"`
	// Up: heard within warntime.
	Up           bool            `json:"up"`
	LastHeard    time.Time       `json:"last_heard,omitzero"`
	LastHeardAgo config.Duration `json:"last_heard_ago,omitempty"`
	// Warning is set while the peer is alive but silent on this link.
	Warning  bool   `json:"warning,omitempty"`
	Warnings uint64 `json:"warnings"` // times it went silent for warntime
}

// LinkStatus is this node's side of one heartbeat link.
type LinkStatus struct {
	Name string `json:"name"`
	Kind string `json:"kind"` // unicast, multicast, serial, or the test's
	// Open is false while the link could not be opened (its device is
	// missing); it is retried every second.
	Open       bool   `json:"open"`
	Sent       uint64 `json:"sent"`
	SendErrors uint64 `json:"send_errors"`
	Received   uint64 `json:"received"`
	LastError  string `json:"last_error,omitempty"`
}

// TransitionStatus is the last role change with its timeline.
type TransitionStatus struct {
	Transition
	// Detected is when the input that led to the change was observed (the
	// tick that found the peer dead, the heartbeat received, the carrier
	// event); At (in Transition) when the decision was taken; Emitted when
	// the RoleEvent was handed to the event queue.
	Detected time.Time `json:"detected"`
	Emitted  time.Time `json:"emitted,omitzero"`
}

func roundDur(d time.Duration) config.Duration {
	if d < time.Second {
		return config.Duration(d.Round(100 * time.Microsecond))
	}
	return config.Duration(d.Round(time.Millisecond))
}

var flagNames = [...]string{"maintenance", "eligible", "carrier_ok", "takeover_request", "preferred", "standby_preference", "yield", "leaving"}

func flagList(f Flags) []string {
	var s []string
	for i, n := range flagNames {
		if f&(1<<i) != 0 {
			s = append(s, n)
		}
	}
	return s
}

// Status fills the election part of a Status at now: role, eligibility,
// peers and their links, the last transition (Detected = At). The caller
// adds epoch, links, drops and late timers.
func (m *Machine) Status(now time.Time) Status {
	if now.Before(m.now) {
		now = m.now
	}
	t := m.p.Timers
	s := Status{
		Node:          m.p.Self.Name,
		NodeID:        m.p.Self.NodeID,
		Role:          m.role,
		RoleSince:     m.since,
		Priority:      m.p.Self.Priority,
		Eligible:      m.eligible(),
		Maintenance:   m.maint,
		PingNodes:     m.p.PingNodes,
		PingReachable: m.ping,
		ConfigHash:    m.p.ConfigHash.String(),
		Started:       m.start,
		Timers: TimerStatus{
			Keepalive: config.Duration(t.Keepalive), Warntime: config.Duration(t.Warntime),
			Deadtime: config.Duration(t.Deadtime), Initdead: config.Duration(t.Initdead),
		},
		TakeoverPending: m.takeoverReq,
		Yielding:        m.yielding(now),
		Transitions:     m.transitions,
		Stalls:          m.stalls,
	}
	if w := m.whyNotEligible(); w != "" {
		s.NotEligible = append(s.NotEligible, w)
	}
	if !m.pingOK() {
		s.NotEligible = append(s.NotEligible, "no ping node reachable")
	}
	switch {
	case m.pref > 0:
		s.Preference = "takeover"
	case m.pref < 0:
		s.Preference = "standby"
	}
	if m.handoverTo != 0 {
		s.HandingOverTo = m.name(m.handoverTo)
	}
	for i, iface := range m.p.Monitor {
		s.Carrier = append(s.Carrier, CarrierStatus{Iface: iface, Up: m.carrier[i]})
	}
	for _, p := range m.peers {
		ps := PeerStatus{Name: p.Name, NodeID: p.NodeID, State: p.state.String(), Why: p.why,
			Epoch: p.epoch, Seq: p.maxSeq, Restarts: p.restarts}
		if p.hasMsg {
			ps.Role = p.msg.Role
			ps.Priority = p.msg.Priority
			ps.HearsUs = p.msg.Hears(m.p.Self.NodeID)
			ps.ConfigHash = p.msg.ConfigHash.String()
			ps.PingReachable = int(p.msg.PingReachable)
			ps.Flags = flagList(p.msg.Flags)
		}
		ps.NotEligible = m.peerProblems(p)
		ps.Eligible = len(ps.NotEligible) == 0
		if !p.lastHeard.IsZero() {
			ps.LastHeard = p.lastHeard
			ps.LastHeardAgo = roundDur(now.Sub(p.lastHeard))
		}
		for i, l := range m.p.Links {
			ls := PeerLinkStatus{Link: l, Warning: p.linkWarned[i], Warnings: p.linkWarnings[i]}
			if h := p.linkHeard[i]; !h.IsZero() {
				ls.LastHeard = h
				ls.LastHeardAgo = roundDur(now.Sub(h))
				ls.Up = p.state == peerAlive && now.Sub(h) <= t.Warntime
			}
			ps.Links = append(ps.Links, ls)
		}
		s.Peers = append(s.Peers, ps)
	}
	if m.transitions > 0 {
		s.LastTransition = &TransitionStatus{Transition: m.last, Detected: m.last.At}
	}
	return s
}

// linkUp reports whether peer pi (index in node id order, as in Status)
// was heard on link within warntime at now; for the peer_link_up gauge.
func (m *Machine) linkUp(now time.Time, pi, link int) bool {
	p := m.peers[pi]
	h := p.linkHeard[link]
	return p.state == peerAlive && !h.IsZero() && now.Sub(h) <= m.p.Timers.Warntime
}
