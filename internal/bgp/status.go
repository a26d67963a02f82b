package bgp

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/havpn/havpn/internal/config"
	"github.com/havpn/havpn/internal/fib"
	"github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

// Route is one path of the BGP RIB, as `havpn routes` shows it.
type Route struct {
	Prefix  netip.Prefix `json:"prefix"`
	NextHop netip.Addr   `json:"next_hop,omitzero"`
	// Peer is the neighbor the path came from; zero for local paths
	// (networks and redistributed routes).
	Peer      netip.Addr `json:"peer,omitzero"`
	Local     bool       `json:"local,omitempty"`
	ASPath    []uint32   `json:"as_path,omitzero"`
	Origin    string     `json:"origin"` // igp, egp or incomplete
	LocalPref uint32     `json:"local_pref,omitzero"`
	MED       uint32     `json:"med,omitzero"`
	Best      bool       `json:"best"`
	Stale     bool       `json:"stale,omitempty"` // kept for a restarting peer (graceful restart)
	// Installed: the kernel route for Prefix goes via this path's next hop.
	Installed bool `json:"installed"`
	// Since is when the path was received (zero for local paths).
	Since time.Time `json:"since,omitzero"`
}

// Neighbor is one configured neighbor and its session, as `havpn
// neighbors` shows it.
type Neighbor struct {
	Address  netip.Addr `json:"address"`
	RemoteAS uint32     `json:"remote_as"`
	Type     string     `json:"type"` // ibgp or ebgp
	// State is stopped (BGP not running) or the RFC 4271 FSM state: idle,
	// connect, active, opensent, openconfirm, established.
	State string `json:"state"`
	// Since is when the session was established, or when it went down.
	Since    time.Time  `json:"since,omitzero"`
	RouterID netip.Addr `json:"router_id,omitzero"`
	// HoldTime is the negotiated hold time of an established session.
	HoldTime config.Duration `json:"hold_time,omitzero"`
	// PrefixesReceived counts the neighbor's Adj-RIB-In, before the
	// import prefix list.
	PrefixesReceived uint64 `json:"prefixes_received"`
	// PrefixesAdvertised counts what is sent to the neighbor, after the
	// export prefix list.
	PrefixesAdvertised uint64 `json:"prefixes_advertised"`
	UpdatesReceived    uint64 `json:"updates_received"`
	UpdatesSent        uint64 `json:"updates_sent"`
	// Established counts the sessions established since the daemon
	// started (across Start/Stop).
	Established uint64 `json:"established"`
	// LastError says why the session last went down, if GoBGP knows.
	LastError string `json:"last_error,omitempty"`
}

// Stopped is Neighbor.State while BGP is not running.
const Stopped = "stopped"

// peerStat is what the speaker itself counts per neighbor.
type peerStat struct {
	established atomic.Uint64
	drops       atomic.Uint64
	up          atomic.Bool
	lastError   atomic.Pointer[string]
	since       atomic.Int64 // unix ns of the last change to or from established
}

func (p *peerStat) reset() { p.up.Store(false) }

// onPeer is GoBGP's OnPeerUpdate callback: it logs session changes and
// counts them.
func (s *Speaker) onPeer(ev *apiutil.WatchEventMessage_PeerEvent, at time.Time) {
	if ev.Type != apiutil.PEER_EVENT_STATE {
		return
	}
	addr := ev.Peer.State.NeighborAddress.Unmap()
	st := s.peers[addr]
	if st == nil {
		return
	}
	state := ev.Peer.State.SessionState
	switch {
	case state == bgp.BGP_FSM_ESTABLISHED && !st.up.Load():
		st.up.Store(true)
		st.established.Add(1)
		st.since.Store(at.UnixNano())
		s.log.Info("bgp neighbor up", "peer", addr, "router_id", ev.Peer.State.RouterID)
	case state != bgp.BGP_FSM_ESTABLISHED && st.up.Load():
		st.up.Store(false)
		st.drops.Add(1)
		st.since.Store(at.UnixNano())
		reason := ev.Peer.State.DisconnectMessage
		st.lastError.Store(&reason)
		s.log.Warn("bgp neighbor down", "peer", addr, "state", fsmName(state), "reason", reason)
	}
}

func fsmName(st bgp.FSMState) string {
	return strings.TrimPrefix(strings.ToLower(st.String()), "bgp_fsm_")
}

func sessionStateName(st api.PeerState_SessionState) string {
	return strings.TrimPrefix(strings.ToLower(st.String()), "session_state_")
}

// Routes returns the RIB: every path of every IPv4 and IPv6 unicast
// prefix, sorted by prefix with the best path first. It returns
// ErrNotRunning while the speaker is stopped.
func (s *Speaker) Routes() ([]Route, error) {
	ss := s.cur.Load()
	if ss == nil {
		return nil, ErrNotRunning
	}
	var out []Route
	for _, fam := range []bgp.Family{bgp.RF_IPv4_UC, bgp.RF_IPv6_UC} {
		err := ss.srv.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: fam},
			func(_ bgp.NLRI, paths []*apiutil.Path) {
				for _, p := range paths {
					if r, ok := s.route(p); ok {
						out = append(out, r)
					}
				}
			})
		if err != nil {
			return nil, err
		}
	}
	slices.SortStableFunc(out, func(a, b Route) int {
		if c := a.Prefix.Addr().Compare(b.Prefix.Addr()); c != 0 {
			return c
		}
		if c := a.Prefix.Bits() - b.Prefix.Bits(); c != 0 {
			return c
		}
		switch {
		case a.Best && !b.Best:
			return -1
		case b.Best && !a.Best:
			return 1
		}
		return a.Peer.Compare(b.Peer)
	})
	return out, nil
}

func (s *Speaker) route(p *apiutil.Path) (Route, bool) {
	pfx, ok := prefixOf(p)
	if !ok {
		return Route{}, false
	}
	r := Route{
		Prefix:  pfx,
		NextHop: nextHopOf(p),
		Peer:    p.PeerAddress.Unmap(),
		Local:   !p.PeerAddress.IsValid(),
		Best:    p.Best,
		Stale:   p.Stale,
		Origin:  "igp",
	}
	if p.Age > 0 && !r.Local {
		r.Since = time.Unix(p.Age, 0)
	}
	if r.Local {
		r.NextHop = netip.Addr{}
	}
	for _, a := range p.Attrs {
		switch a := a.(type) {
		case *bgp.PathAttributeOrigin:
			switch a.Value {
			case bgp.BGP_ORIGIN_ATTR_TYPE_EGP:
				r.Origin = "egp"
			case bgp.BGP_ORIGIN_ATTR_TYPE_INCOMPLETE:
				r.Origin = "incomplete"
			}
		case *bgp.PathAttributeAsPath:
			for _, seg := range a.Value {
				r.ASPath = append(r.ASPath, seg.GetAS()...)
			}
		case *bgp.PathAttributeLocalPref:
			r.LocalPref = a.Value
		case *bgp.PathAttributeMultiExitDisc:
			r.MED = a.Value
		}
	}
	if !r.Local {
		if hops, ok := s.fib.Installed(pfx); ok {
			r.Installed = slices.Contains(hops, fib.NextHop{Gateway: r.NextHop})
		}
	}
	return r, true
}

// Neighbors returns every configured neighbor with its session state, in
// configuration order. While the speaker is stopped the state is
// "stopped".
func (s *Speaker) Neighbors() []Neighbor {
	return s.neighbors(true)
}

// neighbors lists the neighbors; advertised asks GoBGP to count what it
// sends each (a walk over the RIB per neighbor: not for every scrape).
func (s *Speaker) neighbors(advertised bool) []Neighbor {
	live := make(map[netip.Addr]*api.Peer)
	if ss := s.cur.Load(); ss != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = ss.srv.ListPeer(ctx, &api.ListPeerRequest{EnableAdvertised: advertised}, func(p *api.Peer) {
			if p.Conf == nil {
				return
			}
			if a, err := netip.ParseAddr(p.Conf.NeighborAddress); err == nil {
				live[a.Unmap()] = p
			}
		})
	}
	out := make([]Neighbor, 0, len(s.cfg.Neighbors))
	for _, n := range s.cfg.Neighbors {
		nb := Neighbor{Address: n.Address, RemoteAS: n.RemoteAS, Type: "ebgp", State: Stopped}
		if n.RemoteAS == s.cfg.ASN {
			nb.Type = "ibgp"
		}
		if st := s.peers[n.Address]; st != nil {
			nb.Established = st.established.Load()
			if e := st.lastError.Load(); e != nil {
				nb.LastError = *e
			}
		}
		if p := live[n.Address]; p != nil {
			fillNeighbor(&nb, p)
			if st := s.peers[n.Address]; st != nil && st.since.Load() != 0 && st.up.Load() == (nb.State == "established") {
				// Our own record of the change has nanoseconds; GoBGP's
				// has seconds.
				nb.Since = time.Unix(0, st.since.Load())
			}
		}
		out = append(out, nb)
	}
	return out
}

func fillNeighbor(nb *Neighbor, p *api.Peer) {
	st := p.State
	if st == nil {
		return
	}
	nb.State = sessionStateName(st.SessionState)
	if a, err := netip.ParseAddr(st.RouterId); err == nil && !a.IsUnspecified() {
		nb.RouterID = a
	}
	if m := st.Messages; m != nil {
		if m.Received != nil {
			nb.UpdatesReceived = m.Received.Update
		}
		if m.Sent != nil {
			nb.UpdatesSent = m.Sent.Update
		}
	}
	if t := p.Timers; t != nil && t.State != nil {
		established := st.SessionState == api.PeerState_SESSION_STATE_ESTABLISHED
		if established && t.State.Uptime != nil {
			nb.Since = t.State.Uptime.AsTime()
		} else if !established && t.State.Downtime != nil && t.State.Downtime.AsTime().Unix() > 0 {
			nb.Since = t.State.Downtime.AsTime()
		}
		if established {
			nb.HoldTime = config.Duration(time.Duration(t.State.NegotiatedHoldTime) * time.Second)
		}
	}
	for _, af := range p.AfiSafis {
		if af.State == nil {
			continue
		}
		nb.PrefixesReceived += af.State.Received
		nb.PrefixesAdvertised += af.State.Advertised
	}
}

// FIBStats returns the kernel route counts of the speaker's reconciler.
func (s *Speaker) FIBStats() fib.Stats { return s.fib.Stats() }

// FIBRoutes returns the routes the speaker installed in the kernel.
func (s *Speaker) FIBRoutes() []fib.Route { return s.fib.Routes() }
