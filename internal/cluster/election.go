package cluster

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Timers are the heartbeat timers (config.Timers as time.Duration).
type Timers struct {
	Keepalive time.Duration // heartbeat interval
	Warntime  time.Duration // one link silent this long: warning
	Deadtime  time.Duration // silent on all links this long: dead
	Initdead  time.Duration // a peer never heard since start is dead after this
}

// Member names a cluster node.
type Member struct {
	Name     string
	NodeID   uint8
	Priority uint8 // used for Params.Self only; peers announce theirs
}

// Params configure a Machine.
type Params struct {
	Self         Member
	Peers        []Member // at most MaxAlive, node ids unique and not Self's
	Links        []string // link names; Receive's link argument indexes this
	Timers       Timers
	AutoFailback bool
	Maintenance  bool       // initial maintenance mode
	PingNodes    int        // number of configured ping nodes (0: none)
	Monitor      []string   // interfaces whose carrier counts for eligibility
	ConfigHash   ConfigHash // this node's shared-config hash
}

// OutputKind says what an Output is.
type OutputKind uint8

// Output kinds.
const (
	// OutRole: the node's role changed to Role (or, with Reannounce, stays
	// active and should announce its addresses again).
	OutRole OutputKind = iota + 1
	// OutWarning: something an operator should look at (a peer dead, a link
	// silent, a stall, carrier lost). Log at warn level.
	OutWarning
	// OutNotice: a normal change worth a log line (a peer alive again, a
	// link recovered). Log at info level.
	OutNotice
)

// Output is one decision or observation of the Machine.
type Output struct {
	Kind OutputKind
	From Role // OutRole: the role before
	Role Role // OutRole: the role after
	// Quiet (OutRole to standby): this node was stalled and another node
	// has probably taken over; release at once and announce nothing.
	Quiet bool
	// Reannounce (OutRole, Role active, From active): both nodes were
	// active and the other one released; send gratuitous ARP/NA again.
	Reannounce bool
	Reason     string
	Peer       string // the peer concerned, if any
	Link       string // the link concerned, if any
	At         time.Time
}

// DropReason is why a received heartbeat was dropped.
type DropReason uint8

// Drop reasons, the label values of havpn_cluster_heartbeat_drops_total.
const (
	DropNone        DropReason = iota
	DropMalformed              // wrong length, magic, field values
	DropVersion                // unknown protocol version
	DropAuth                   // HMAC does not verify
	DropUnknownNode            // sender is not a configured peer (or is us)
	DropReplay                 // sequence not newer than the last on that link
	DropStale                  // older epoch, or sequence far behind the newest
	DropSource                 // unicast link: not from the configured peer address
	DropQueueFull              // the state loop was not keeping up
	numDropReasons
)

var dropNames = [numDropReasons]string{"none", "malformed", "version", "auth", "unknown_node", "replay", "stale", "source", "queue_full"}

// String returns the metric label of r.
func (r DropReason) String() string {
	if r < numDropReasons {
		return dropNames[r]
	}
	return fmt.Sprintf("drop(%d)", uint8(r))
}

// seqWindow is how far behind the newest sequence number a message may be
// and still count for its link's liveness (it came over a slower link).
const seqWindow = 32

type peerState uint8

const (
	peerUnknown peerState = iota // not heard since start, initdead not over
	peerAlive
	peerDead
)

func (s peerState) String() string {
	return [...]string{"unknown", "alive", "dead"}[s]
}

type peer struct {
	Member
	state        peerState
	why          string // what made the state what it is, for status
	epoch        uint64
	maxSeq       uint64
	restarts     uint64
	linkSeq      []uint64
	linkHeard    []time.Time
	linkWarned   []bool
	linkWarnings []uint64
	lastHeard    time.Time
	maxD         time.Duration // largest peer uptime - our uptime seen this epoch
	msg          Message       // newest accepted message of this epoch
	hasMsg       bool
	dualSince    time.Time // both active since (zero: not both active)
}

// Transition is a role change of this node.
type Transition struct {
	From   Role      `json:"from"`
	To     Role      `json:"to"`
	Reason string    `json:"reason"`
	Quiet  bool      `json:"quiet,omitempty"`
	At     time.Time `json:"at"`
}

// Machine is the election state machine of one node: a pure function of
// its inputs (heartbeats received, ticks, carrier, ping results, operator
// commands), each of which carries the time it happened. It does no I/O and
// reads no clock.
//
// Every input method returns the Outputs it produced, in order; the slice
// is reused by the next call. Call Tick every keepalive: dead peers, link
// warnings and expiries are found there. Timestamps must come from one
// monotonic clock; a time earlier than a previous input's is treated as
// equal to it.
//
// A Machine is not safe for concurrent use.
//
// Rules (the items 3 to 5):
//   - A peer is dead only when silent on all links for deadtime; silence on
//     one link for warntime is a warning (counted, in status). A peer never
//     heard is unknown until initdead has passed since start; while a peer
//     is unknown and none is active, the node stays in init. It also stays
//     in init (at most initdead) while none of its ping nodes has answered
//     yet, or while a peer of higher priority is still in init.
//   - Exactly one active: a node becomes active when no alive peer is, it
//     is a candidate (eligible, reaches a ping node when some are
//     configured, not yielding), and it ranks highest among the candidates.
//     Rank: operator preference (takeover > none > standby), then reaching a
//     ping node, then priority, then node id; higher wins.
//   - auto_failback: the active hands over to a healthy peer that ranks
//     higher. Without it the active keeps the role.
//   - Standby hands over only to a healthy peer: alive, eligible, same
//     config hash, reaching a ping node when configured, hearing us, not
//     yielding. Takeover asks the active peer to hand over (or takes over
//     at once when no peer is active); it is the operator's override and
//     works across a config hash mismatch.
//   - Maintenance: never becomes active by itself; an active node put in
//     maintenance hands over to a healthy peer if there is one.
//   - Carrier lost on a monitored interface: the active hands over at once
//     to a healthy peer (its heartbeat says so); a standby is not eligible
//     until carrier is back.
//   - Ping nodes: a node becomes active on its own only if it reaches at
//     least one; an active that reaches none hands over to a healthy peer
//     that reaches one.
//   - Both active and seeing each other: the lower ranked releases at once
//     (the higher re-announces when it sees that). If the other does not
//     hear us for two keepalives, we are the stale side: release quietly.
//   - Stall: an input arriving deadtime or more after the last tick, or a
//     peer whose uptime advanced deadtime more than our clock did since its
//     previous message, means this node was frozen. An active node with
//     a peer that was alive releases quietly (Output.Quiet): that peer has
//     probably taken over; every node then yields for deadtime and gives
//     alive peers deadtime to be heard again. An active node whose peers
//     were all dead or unknown stays active (nobody was there to take
//     over; a peer that comes back claiming active is settled by the
//     both-active rule), so that a lone survivor under load does not stop
//     and restart its resources on every late timer.
//   - Handover: the releasing node names the target in its heartbeat and
//     yields; the target becomes active when it sees that. If the target
//     does not within deadtime, the handover lapses.
type Machine struct {
	p     Params
	role  Role
	since time.Time
	start time.Time
	now   time.Time

	lastTick time.Time
	peers    []*peer // sorted by node id
	carrier  []bool  // per p.Monitor
	ping     int
	maint    bool
	pref     int8 // -1 operator standby, +1 operator takeover

	takeoverReq   bool
	takeoverUntil time.Time
	handoverTo    uint8
	handoverUntil time.Time
	holdUntil     time.Time
	stuck         string // last "cannot hand over" warning, to warn once

	last        Transition
	transitions uint64
	stalls      uint64
	out         []Output
}

// NewMachine returns a Machine in RoleInit that started at now.
func NewMachine(p Params, now time.Time) *Machine {
	m := &Machine{p: p, role: RoleInit, since: now, start: now, now: now, lastTick: now, maint: p.Maintenance}
	m.carrier = make([]bool, len(p.Monitor))
	for i := range m.carrier {
		m.carrier[i] = true // until told otherwise
	}
	for _, mb := range p.Peers {
		m.peers = append(m.peers, &peer{
			Member:       Member{Name: mb.Name, NodeID: mb.NodeID},
			linkSeq:      make([]uint64, len(p.Links)),
			linkHeard:    make([]time.Time, len(p.Links)),
			linkWarned:   make([]bool, len(p.Links)),
			linkWarnings: make([]uint64, len(p.Links)),
		})
	}
	slices.SortFunc(m.peers, func(a, b *peer) int { return int(a.NodeID) - int(b.NodeID) })
	return m
}

// Role returns the current role.
func (m *Machine) Role() Role { return m.role }

// Params returns the parameters the Machine was built with.
func (m *Machine) Params() Params { return m.p }

// begin starts an input: it clamps now, clears the outputs and checks for
// a stall (no tick for deadtime or more).
func (m *Machine) begin(now time.Time) time.Time {
	if now.Before(m.now) {
		now = m.now
	}
	m.now = now
	m.out = m.out[:0]
	if gap := now.Sub(m.lastTick); gap >= m.p.Timers.Deadtime {
		m.stalled(now, fmt.Sprintf("no timer tick for %s", fmtDur(gap)))
	}
	return now
}

func (m *Machine) emit(o Output) { m.out = append(m.out, o) }

func (m *Machine) warn(peer, link, reason string) {
	m.emit(Output{Kind: OutWarning, Reason: reason, Peer: peer, Link: link, At: m.now})
}

func (m *Machine) notice(peer, link, reason string) {
	m.emit(Output{Kind: OutNotice, Reason: reason, Peer: peer, Link: link, At: m.now})
}

func (m *Machine) setRole(now time.Time, r Role, quiet bool, reason string) {
	if r == m.role {
		return
	}
	m.last = Transition{From: m.role, To: r, Reason: reason, Quiet: quiet, At: now}
	m.transitions++
	m.emit(Output{Kind: OutRole, From: m.role, Role: r, Quiet: quiet, Reason: reason, At: now})
	m.role = r
	m.since = now
	m.stuck = ""
}

// stalled handles a detected stall of this node.
func (m *Machine) stalled(now time.Time, why string) {
	m.stalls++
	m.lastTick = now
	m.warn("", "", "stalled: "+why)
	if m.role == RoleActive {
		if !m.anyPeerAlive() {
			// Nobody could have taken over while we stood still.
			m.warn("", "", "stalled while no peer is alive: staying active")
			return
		}
		m.setRole(now, RoleStandby, true, "stalled ("+why+"): another node may have taken over; releasing without announcing")
	}
	m.handoverTo = 0
	m.holdUntil = now.Add(m.p.Timers.Deadtime)
	for _, p := range m.peers {
		if p.state != peerAlive {
			continue
		}
		p.lastHeard = now
		for i, t := range p.linkHeard {
			if !t.IsZero() {
				p.linkHeard[i] = now
			}
		}
	}
}

// anyPeerAlive reports whether some peer is alive.
func (m *Machine) anyPeerAlive() bool {
	for _, p := range m.peers {
		if p.state == peerAlive {
			return true
		}
	}
	return false
}

func (m *Machine) peerByID(id uint8) *peer {
	for _, p := range m.peers {
		if p.NodeID == id {
			return p
		}
	}
	return nil
}

func (m *Machine) name(id uint8) string {
	if p := m.peerByID(id); p != nil {
		return p.Name
	}
	return fmt.Sprintf("node %d", id)
}

// Tick advances time: it finds dead peers, silent links and expired
// handovers, then decides.
func (m *Machine) Tick(now time.Time) []Output {
	now = m.begin(now)
	m.lastTick = now
	t := m.p.Timers
	for _, p := range m.peers {
		switch p.state {
		case peerAlive:
			if silent := now.Sub(p.lastHeard); silent >= t.Deadtime {
				p.state = peerDead
				p.dualSince = time.Time{}
				p.why = fmt.Sprintf("%s dead: silent on all links for %s", p.Name, fmtDur(silent))
				clear(p.linkWarned)
				m.warn(p.Name, "", p.why)
				continue
			}
			// Link warnings only while another link still carries the
			// peer; when all are silent, the dead warning will come.
			anyUp := false
			for _, h := range p.linkHeard {
				anyUp = anyUp || (!h.IsZero() && now.Sub(h) <= t.Warntime)
			}
			for i, l := range m.p.Links {
				last := p.linkHeard[i]
				if last.Before(m.start) {
					last = m.start
				}
				if silent := now.Sub(last); anyUp && silent > t.Warntime && !p.linkWarned[i] {
					p.linkWarned[i] = true
					p.linkWarnings[i]++
					m.warn(p.Name, l, fmt.Sprintf("%s silent on link %s for %s (still heard on another link)", p.Name, l, fmtDur(silent)))
				}
			}
		case peerUnknown:
			if now.Sub(m.start) >= t.Initdead {
				p.state = peerDead
				p.why = fmt.Sprintf("%s not heard within initdead (%s)", p.Name, fmtDur(t.Initdead))
				m.warn(p.Name, "", p.why)
			}
		}
	}
	m.evaluate(now)
	return m.out
}

// Receive processes an authenticated heartbeat that arrived on link (an
// index into Params.Links) at now. It returns DropNone when the message was
// accepted, or why it was dropped: DropUnknownNode, DropStale (older epoch,
// or sequence more than a window behind the newest) or DropReplay (sequence
// not newer than the last one on this link).
func (m *Machine) Receive(now time.Time, link int, msg *Message) (DropReason, []Output) {
	now = m.begin(now)
	p := m.peerByID(msg.NodeID)
	if p == nil || link < 0 || link >= len(m.p.Links) {
		return DropUnknownNode, m.out
	}
	restarted := false
	switch {
	case msg.Epoch < p.epoch:
		return DropStale, m.out
	case msg.Epoch > p.epoch:
		restarted = true
		if p.epoch != 0 {
			p.restarts++
			m.notice(p.Name, "", p.Name+" restarted (new epoch)")
		}
		p.epoch = msg.Epoch
		p.maxSeq = 0
		clear(p.linkSeq)
		p.hasMsg = false
	}
	if msg.Seq <= p.linkSeq[link] {
		return DropReplay, m.out
	}
	if p.maxSeq > seqWindow && msg.Seq < p.maxSeq-seqWindow {
		return DropStale, m.out
	}
	p.linkSeq[link] = msg.Seq
	p.linkHeard[link] = now
	p.lastHeard = now
	if p.linkWarned[link] {
		p.linkWarned[link] = false
		m.notice(p.Name, m.p.Links[link], fmt.Sprintf("%s heard on link %s again", p.Name, m.p.Links[link]))
	}
	if msg.Seq > p.maxSeq {
		// d = the peer's uptime minus ours = clock offset - latency. It
		// drops when messages are delayed and never rises above the
		// offset, unless our clock stood still while the peer's ran.
		d := msg.Uptime - now.Sub(m.start)
		switch {
		case !p.hasMsg:
			p.maxD = d
		case d-p.maxD >= m.p.Timers.Deadtime:
			m.stalled(now, fmt.Sprintf("%s's clock advanced %s more than ours", p.Name, fmtDur(d-p.maxD)))
			p.maxD = d
		case d > p.maxD:
			p.maxD = d
		}
		wasActive := p.hasMsg && p.msg.Role == RoleActive && p.state == peerAlive
		p.msg, p.hasMsg, p.maxSeq = *msg, true, msg.Seq
		if msg.Role != RoleActive {
			p.dualSince = time.Time{}
		}
		if msg.Role == RoleActive && m.handoverTo == p.NodeID {
			m.handoverTo = 0
		}
		if wasActive && msg.Role != RoleActive && m.role == RoleActive && msg.Flags&FlagLeaving == 0 {
			m.emit(Output{Kind: OutRole, From: RoleActive, Role: RoleActive, Reannounce: true, At: now,
				Reason: p.Name + " released after both were active: announcing again", Peer: p.Name})
		}
	}
	switch {
	case p.msg.Flags&FlagLeaving != 0:
		if p.state != peerDead {
			p.state = peerDead
			p.dualSince = time.Time{}
			p.why = p.Name + " left (shut down)"
			m.notice(p.Name, "", p.why)
		}
	case p.state != peerAlive:
		back := p.state == peerDead && !restarted
		p.state = peerAlive
		p.why = ""
		m.notice(p.Name, m.p.Links[link], fmt.Sprintf("%s alive (heard on link %s)", p.Name, m.p.Links[link]))
		if back && m.role == RoleActive {
			// It may have been active while we could not hear each
			// other, and announced our addresses.
			m.emit(Output{Kind: OutRole, From: RoleActive, Role: RoleActive, Reannounce: true, At: now,
				Reason: p.Name + " is back after a silence and may have held our addresses: announcing again", Peer: p.Name})
		}
	}
	m.evaluate(now)
	return DropNone, m.out
}

// SetCarrier records the carrier of a monitored interface (others are
// ignored). Carrier is assumed up until told otherwise.
func (m *Machine) SetCarrier(now time.Time, iface string, up bool) []Output {
	now = m.begin(now)
	i := slices.Index(m.p.Monitor, iface)
	if i < 0 || m.carrier[i] == up {
		return m.out
	}
	m.carrier[i] = up
	if up {
		m.notice("", "", "carrier back on "+iface)
	} else {
		m.warn("", "", "carrier lost on "+iface)
	}
	m.evaluate(now)
	return m.out
}

// SetPingReachable records how many ping nodes answer.
func (m *Machine) SetPingReachable(now time.Time, n int) []Output {
	now = m.begin(now)
	if n == m.ping {
		return m.out
	}
	old := m.ping
	m.ping = n
	if m.p.PingNodes > 0 && (old == 0) != (n == 0) {
		if n == 0 {
			m.warn("", "", fmt.Sprintf("no ping node reachable (of %d)", m.p.PingNodes))
		} else {
			m.notice("", "", fmt.Sprintf("%d of %d ping nodes reachable", n, m.p.PingNodes))
		}
	}
	m.evaluate(now)
	return m.out
}

// SetMaintenance switches maintenance mode. In maintenance a node never
// becomes active by itself; an active node hands over to a healthy peer if
// there is one (else it stays active and warns).
func (m *Machine) SetMaintenance(now time.Time, on bool) []Output {
	now = m.begin(now)
	if on == m.maint {
		return m.out
	}
	m.maint = on
	if on {
		m.takeoverReq = false
		m.notice("", "", "maintenance mode on")
	} else {
		m.notice("", "", "maintenance mode off")
	}
	m.evaluate(now)
	return m.out
}

// Standby is the operator's "havpn standby". On the active node it hands
// over to the best healthy peer, or returns an error wrapping
// ErrNoEligiblePeer (saying why each peer is not) and changes nothing. On
// any node it sets the operator's standby preference: the node then ranks
// below every peer (it still takes over when it is the only candidate)
// until Takeover.
func (m *Machine) Standby(now time.Time) ([]Output, error) {
	now = m.begin(now)
	m.takeoverReq = false
	if m.role != RoleActive {
		m.pref = -1
		m.evaluate(now)
		return m.out, nil
	}
	t := m.bestHealthy()
	if t == nil {
		m.evaluate(now)
		return m.out, fmt.Errorf("%w: %s", ErrNoEligiblePeer, m.peerProblemSummary())
	}
	m.pref = -1
	m.release(now, false, "operator standby: handing over to "+t.Name, t)
	m.evaluate(now)
	return m.out, nil
}

// Takeover is the operator's "havpn takeover". It fails with ErrMaintenance
// or ErrNotEligible (carrier lost). Otherwise it clears a standby
// preference and sets the takeover preference; when no alive peer is active
// the node becomes active at once, else it asks the active peer to hand
// over (the answer comes as an OutRole from a later Receive; the request
// lapses after deadtime plus a keepalive).
func (m *Machine) Takeover(now time.Time) ([]Output, error) {
	now = m.begin(now)
	if m.maint {
		m.evaluate(now)
		return m.out, ErrMaintenance
	}
	if !m.carrierOK() {
		m.evaluate(now)
		return m.out, fmt.Errorf("%w: %s", ErrNotEligible, m.whyNotEligible())
	}
	m.pref = 1
	m.holdUntil = time.Time{}
	if m.role == RoleActive {
		m.evaluate(now)
		return m.out, nil
	}
	m.takeoverReq = true
	m.takeoverUntil = now.Add(m.p.Timers.Deadtime + m.p.Timers.Keepalive)
	m.evaluate(now)
	return m.out, nil
}

// Advert is what this node announces in its next heartbeat (everything but
// the sender id, epoch, sequence and times). Adverts are comparable: the
// caller sends a heartbeat at once when the advert changed.
type Advert struct {
	Role          Role
	Priority      uint8
	Flags         Flags
	PingReachable uint8
	HandoverTo    uint8
	ConfigHash    ConfigHash
	NAlive        uint8
	Alive         [MaxAlive]uint8
}

// Advert returns the current advert.
func (m *Machine) Advert() Advert {
	a := Advert{
		Role:          m.role,
		Priority:      m.p.Self.Priority,
		PingReachable: uint8(min(m.ping, 255)),
		HandoverTo:    m.handoverTo,
		ConfigHash:    m.p.ConfigHash,
	}
	if m.maint {
		a.Flags |= FlagMaintenance
	}
	if m.eligible() {
		a.Flags |= FlagEligible
	}
	if m.carrierOK() {
		a.Flags |= FlagCarrierOK
	}
	if m.takeoverReq {
		a.Flags |= FlagTakeoverReq
	}
	switch {
	case m.pref > 0:
		a.Flags |= FlagPreferred
	case m.pref < 0:
		a.Flags |= FlagStandbyPref
	}
	if m.yielding(m.now) {
		a.Flags |= FlagYield
	}
	for _, p := range m.peers {
		if p.state == peerAlive && int(a.NAlive) < MaxAlive {
			a.Alive[a.NAlive] = p.NodeID
			a.NAlive++
		}
	}
	return a
}

// Fill copies the advert into msg.
func (a *Advert) Fill(msg *Message) {
	msg.Role, msg.Priority, msg.Flags = a.Role, a.Priority, a.Flags
	msg.PingReachable, msg.HandoverTo, msg.ConfigHash = a.PingReachable, a.HandoverTo, a.ConfigHash
	msg.NAlive, msg.Alive = a.NAlive, a.Alive
}

// ---- decisions ----

func (m *Machine) evaluate(now time.Time) {
	t := m.p.Timers
	if m.handoverTo != 0 && !now.Before(m.handoverUntil) {
		m.warn(m.name(m.handoverTo), "", fmt.Sprintf("handover to %s not taken within %s", m.name(m.handoverTo), fmtDur(t.Deadtime)))
		m.handoverTo = 0
	}
	if m.takeoverReq && !now.Before(m.takeoverUntil) {
		m.warn("", "", "takeover request not answered by the active peer")
		m.takeoverReq = false
	}
	if m.role == RoleActive {
		m.evalActive(now)
	} else {
		m.evalPassive(now)
	}
}

func (m *Machine) activePeer() *peer {
	for _, p := range m.peers {
		if p.state == peerAlive && p.msg.Role == RoleActive {
			return p
		}
	}
	return nil
}

func (m *Machine) evalPassive(now time.Time) {
	self := m.p.Self.NodeID
	if a := m.activePeer(); a != nil {
		if m.role == RoleInit {
			m.setRole(now, RoleStandby, false, a.Name+" is active")
		}
		return
	}
	for _, p := range m.peers {
		if p.state == peerAlive && p.msg.HandoverTo == self && m.eligible() {
			m.acquire(now, p.Name+" handed over to us")
			return
		}
	}
	if m.takeoverReq && m.eligible() {
		m.acquire(now, "operator takeover")
		return
	}
	for _, p := range m.peers {
		if p.state != peerAlive || p.msg.HandoverTo == 0 || p.msg.HandoverTo == self {
			continue
		}
		if q := m.peerByID(p.msg.HandoverTo); q != nil && q.state == peerAlive {
			if m.role == RoleInit {
				m.setRole(now, RoleStandby, false, fmt.Sprintf("%s is handing over to %s", p.Name, q.Name))
			}
			return
		}
	}
	if m.role == RoleInit {
		for _, p := range m.peers {
			if p.state == peerUnknown {
				return
			}
		}
		if m.settling(now) {
			return
		}
	}
	if !m.candidate(now) {
		if m.role == RoleInit {
			m.setRole(now, RoleStandby, false, "not a candidate: "+m.whyNotCandidate(now))
		}
		return
	}
	me := m.selfRank()
	for _, p := range m.peers {
		if m.peerCandidate(p) && me.less(m.peerRank(p)) {
			if m.role == RoleInit {
				m.setRole(now, RoleStandby, false, fmt.Sprintf("%s ranks higher (%s)", p.Name, m.compare(p)))
			}
			return
		}
	}
	m.acquire(now, m.acquireReason())
}

// settling reports whether a node in init should wait (at most initdead
// since start) before deciding: its ping nodes have not answered yet (the
// first probes of a node that just started often go unanswered while
// neighbors resolve), or a peer that outranks it by priority is still in
// init itself. Without this the lower-priority node, whose first ping
// answer came first, took the role and kept it (auto_failback off).
func (m *Machine) settling(now time.Time) bool {
	if now.Sub(m.start) >= m.p.Timers.Initdead {
		return false
	}
	if m.p.PingNodes > 0 && m.ping == 0 {
		return true
	}
	for _, p := range m.peers {
		if p.state == peerAlive && p.msg.Role == RoleInit &&
			(p.msg.Priority > m.p.Self.Priority || p.msg.Priority == m.p.Self.Priority && p.NodeID > m.p.Self.NodeID) {
			return true
		}
	}
	return false
}

func (m *Machine) acquire(now time.Time, reason string) {
	if m.takeoverReq {
		m.takeoverReq = false
		m.pref = 1
	}
	m.handoverTo = 0
	m.holdUntil = time.Time{}
	m.setRole(now, RoleActive, false, reason)
}

func (m *Machine) acquireReason() string {
	var dead []string
	alive := 0
	for _, p := range m.peers {
		switch p.state {
		case peerAlive:
			alive++
		case peerDead:
			dead = append(dead, p.why)
		}
	}
	if alive == 0 {
		if len(dead) == 0 {
			return "no peers"
		}
		return strings.Join(dead, "; ")
	}
	return fmt.Sprintf("no peer active and we rank highest (priority %d)", m.p.Self.Priority)
}

func (m *Machine) evalActive(now time.Time) {
	me := m.selfRank()
	self := m.p.Self.NodeID
	for _, p := range m.peers {
		if p.state != peerAlive || p.msg.Role != RoleActive {
			continue
		}
		if p.dualSince.IsZero() {
			p.dualSince = now
		}
		if me.less(m.peerRank(p)) {
			m.release(now, false, fmt.Sprintf("both active: %s ranks higher (%s)", p.Name, m.compare(p)), nil)
			return
		}
		if !p.msg.Hears(self) && now.Sub(p.dualSince) >= 2*m.p.Timers.Keepalive {
			m.release(now, true, fmt.Sprintf("both active and %s has not heard us for %s: this node is the stale side (stall or one-way link)", p.Name, fmtDur(now.Sub(p.dualSince))), nil)
			return
		}
	}
	for _, p := range m.peers {
		if p.state == peerAlive && p.msg.Flags&FlagTakeoverReq != 0 && p.msg.Role != RoleActive {
			m.pref = 0
			m.release(now, false, "operator takeover on "+p.Name, p)
			return
		}
	}
	if !m.eligible() {
		why := m.whyNotEligible()
		if t := m.bestHealthy(); t != nil {
			m.release(now, false, why+": handing over to "+t.Name, t)
			return
		}
		m.stuckWarn(why + ", but no peer can take over: staying active (" + m.peerProblemSummary() + ")")
		return
	}
	if m.p.PingNodes > 0 && m.ping == 0 {
		if t := m.bestHealthy(); t != nil {
			m.release(now, false, fmt.Sprintf("no ping node reachable and %s reaches %d: handing over", t.Name, t.msg.PingReachable), t)
			return
		}
		m.stuckWarn("no ping node reachable, but no peer reaching one can take over: staying active")
		return
	}
	if m.p.AutoFailback {
		if t := m.bestHealthy(); t != nil && t.msg.Role == RoleStandby && me.less(m.peerRank(t)) {
			m.release(now, false, fmt.Sprintf("auto_failback: %s ranks higher (%s)", t.Name, m.compare(t)), t)
			return
		}
	}
	m.stuck = ""
}

func (m *Machine) stuckWarn(reason string) {
	if m.stuck != reason {
		m.stuck = reason
		m.warn("", "", reason)
	}
}

// release makes this node standby; target (may be nil) is the peer it hands
// over to.
func (m *Machine) release(now time.Time, quiet bool, reason string, target *peer) {
	if target != nil {
		m.handoverTo = target.NodeID
		m.handoverUntil = now.Add(m.p.Timers.Deadtime)
	}
	m.setRole(now, RoleStandby, quiet, reason)
}

// ---- eligibility and rank ----

func (m *Machine) carrierOK() bool {
	for _, up := range m.carrier {
		if !up {
			return false
		}
	}
	return true
}

func (m *Machine) eligible() bool { return !m.maint && m.carrierOK() }

func (m *Machine) pingOK() bool { return m.p.PingNodes == 0 || m.ping > 0 }

func (m *Machine) yielding(now time.Time) bool {
	return m.handoverTo != 0 || now.Before(m.holdUntil)
}

func (m *Machine) candidate(now time.Time) bool {
	return m.eligible() && m.pingOK() && !m.yielding(now)
}

func (m *Machine) whyNotEligible() string {
	var why []string
	if m.maint {
		why = append(why, "maintenance mode")
	}
	for i, up := range m.carrier {
		if !up {
			why = append(why, "carrier lost on "+m.p.Monitor[i])
		}
	}
	return strings.Join(why, ", ")
}

func (m *Machine) whyNotCandidate(now time.Time) string {
	var why []string
	if w := m.whyNotEligible(); w != "" {
		why = append(why, w)
	}
	if !m.pingOK() {
		why = append(why, "no ping node reachable")
	}
	if m.handoverTo != 0 {
		why = append(why, "handing over to "+m.name(m.handoverTo))
	}
	if now.Before(m.holdUntil) {
		why = append(why, "recovering from a stall")
	}
	return strings.Join(why, ", ")
}

// peerCandidate: the peer may become active when nobody is (symmetric
// facts only, so that both nodes agree on the ordering).
func (m *Machine) peerCandidate(p *peer) bool {
	f := p.msg.Flags
	return p.state == peerAlive && f&FlagEligible != 0 && f&(FlagYield|FlagLeaving) == 0 &&
		(m.p.PingNodes == 0 || p.msg.PingReachable > 0)
}

// peerProblems lists why p is not a healthy handover target (empty: it is).
func (m *Machine) peerProblems(p *peer) []string {
	var why []string
	switch p.state {
	case peerUnknown:
		return []string{"not heard yet"}
	case peerDead:
		return []string{"dead"}
	}
	f := p.msg.Flags
	if f&FlagLeaving != 0 {
		why = append(why, "leaving")
	}
	if f&FlagMaintenance != 0 {
		why = append(why, "maintenance mode")
	}
	if f&FlagCarrierOK == 0 {
		why = append(why, "carrier lost")
	} else if f&FlagEligible == 0 && f&FlagMaintenance == 0 {
		why = append(why, "not eligible")
	}
	if p.msg.ConfigHash != m.p.ConfigHash {
		why = append(why, fmt.Sprintf("config hash %s differs from ours (%s)", p.msg.ConfigHash, m.p.ConfigHash))
	}
	if m.p.PingNodes > 0 && p.msg.PingReachable == 0 {
		why = append(why, "reaches no ping node")
	}
	if !p.msg.Hears(m.p.Self.NodeID) {
		why = append(why, "does not hear us")
	}
	if f&FlagYield != 0 {
		why = append(why, "yielding")
	}
	return why
}

func (m *Machine) peerProblemSummary() string {
	if len(m.peers) == 0 {
		return "no peers"
	}
	var parts []string
	for _, p := range m.peers {
		why := m.peerProblems(p)
		if p.state == peerAlive && p.msg.Role == RoleActive {
			why = append(why, "active")
		}
		if len(why) == 0 {
			why = []string{"ok"}
		}
		parts = append(parts, p.Name+": "+strings.Join(why, ", "))
	}
	return strings.Join(parts, "; ")
}

// bestHealthy returns the highest ranked healthy, non-active peer, or nil.
func (m *Machine) bestHealthy() *peer {
	var best *peer
	for _, p := range m.peers {
		if p.msg.Role == RoleActive || len(m.peerProblems(p)) > 0 {
			continue
		}
		if best == nil || m.peerRank(best).less(m.peerRank(p)) {
			best = p
		}
	}
	return best
}

type rank struct {
	pref int8
	ping bool
	prio uint8
	id   uint8
}

func (a rank) less(b rank) bool {
	switch {
	case a.pref != b.pref:
		return a.pref < b.pref
	case a.ping != b.ping:
		return !a.ping
	case a.prio != b.prio:
		return a.prio < b.prio
	}
	return a.id < b.id
}

func (a rank) String() string {
	s := fmt.Sprintf("priority %d, node id %d", a.prio, a.id)
	switch {
	case a.pref > 0:
		s = "operator takeover, " + s
	case a.pref < 0:
		s = "operator standby, " + s
	}
	if !a.ping {
		s = "no ping node, " + s
	}
	return s
}

func (m *Machine) selfRank() rank {
	return rank{pref: m.pref, ping: m.pingOK(), prio: m.p.Self.Priority, id: m.p.Self.NodeID}
}

func (m *Machine) peerRank(p *peer) rank {
	r := rank{ping: m.p.PingNodes == 0 || p.msg.PingReachable > 0, prio: p.msg.Priority, id: p.NodeID}
	switch {
	case p.msg.Flags&FlagPreferred != 0:
		r.pref = 1
	case p.msg.Flags&FlagStandbyPref != 0:
		r.pref = -1
	}
	return r
}

func (m *Machine) compare(p *peer) string {
	return fmt.Sprintf("%s vs ours: %s", m.peerRank(p), m.selfRank())
}

// fmtDur rounds d for humans: to 0.1 ms below a second, else to 1 ms.
func fmtDur(d time.Duration) string {
	if d < time.Second {
		return d.Round(100 * time.Microsecond).String()
	}
	return d.Round(time.Millisecond).String()
}
