package cluster

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// Test timers: the brief's 10 ms keepalive / 30 ms deadtime.
const (
	tKeepalive = 10 * time.Millisecond
	tWarntime  = 20 * time.Millisecond
	tDeadtime  = 30 * time.Millisecond
	tInitdead  = 60 * time.Millisecond
)

var testHash = ParseConfigHash("0011223344556677")

func testParams(self Member, peers ...Member) Params {
	return Params{
		Self:       self,
		Peers:      peers,
		Links:      []string{"lan", "hb"},
		Timers:     Timers{Keepalive: tKeepalive, Warntime: tWarntime, Deadtime: tDeadtime, Initdead: tInitdead},
		ConfigHash: testHash,
	}
}

// simNode is one node of a simulated cluster: a Machine driven like Cluster
// drives it (a tick every keepalive, a heartbeat after every tick and
// whenever the advert changes).
type simNode struct {
	name     string
	p        Params
	m        *Machine
	epoch    uint64
	seq      uint64
	started  time.Duration
	nextTick time.Duration
	down     bool // dead: no ticks, inbound lost
	frozen   bool // stopped: no ticks, inbound queued
	queue    []queued
	advert   Advert
	outs     []simOut
}

type queued struct {
	link int
	msg  Message
}

type simOut struct {
	at time.Duration
	Output
}

// sim is a deterministic two-or-more-node cluster on a simulated clock
// with 1 ms resolution. Links deliver instantly unless cut.
type sim struct {
	t       *testing.T
	t0      time.Time
	now     time.Duration
	nodes   []*simNode
	cut     map[[3]int]bool // from, to, link
	depth   int
	dualNow time.Duration // current run of both-active time
	dualMax time.Duration // longest run of both-active time
}

func newSim(t *testing.T, ps ...Params) *sim {
	s := &sim{t: t, t0: time.Unix(1_700_000_000, 0), cut: map[[3]int]bool{}}
	for i, p := range ps {
		n := &simNode{name: p.Self.Name, p: p}
		s.nodes = append(s.nodes, n)
		s.start(n, time.Duration(i)*time.Millisecond/2)
	}
	return s
}

func (s *sim) at(d time.Duration) time.Time { return s.t0.Add(d) }

func (s *sim) start(n *simNode, phase time.Duration) {
	n.m = NewMachine(n.p, s.at(s.now))
	n.epoch = uint64(s.t0.Add(s.now).UnixNano()) + uint64(phase)
	n.seq = 0
	n.started = s.now
	n.nextTick = s.now + phase + tKeepalive
	n.down, n.frozen, n.queue = false, false, nil
	n.advert = Advert{}
	s.send(n)
}

func (s *sim) node(name string) *simNode {
	for _, n := range s.nodes {
		if n.name == name {
			return n
		}
	}
	s.t.Fatalf("no node %s", name)
	return nil
}

func (s *sim) index(n *simNode) int {
	for i, o := range s.nodes {
		if o == n {
			return i
		}
	}
	return -1
}

func (s *sim) record(n *simNode, outs []Output) {
	for _, o := range outs {
		n.outs = append(n.outs, simOut{s.now, o})
		if testing.Verbose() {
			s.t.Logf("%6.1fms %s: kind=%d %s->%s quiet=%v re=%v %s", float64(s.now)/1e6, n.name, o.Kind, o.From, o.Role, o.Quiet, o.Reannounce, o.Reason)
		}
	}
	if adv := n.m.Advert(); adv != n.advert {
		s.send(n)
	}
}

// send broadcasts n's heartbeat over every link that is not cut.
func (s *sim) send(n *simNode) {
	if s.depth > 20 {
		s.t.Fatal("heartbeat storm: adverts keep changing")
	}
	s.depth++
	defer func() { s.depth-- }()
	n.advert = n.m.Advert()
	n.seq++
	msg := Message{NodeID: n.p.Self.NodeID, Epoch: n.epoch, Seq: n.seq, Uptime: s.now - n.started, SendTime: s.at(s.now).UnixNano()}
	n.advert.Fill(&msg)
	if err := msg.check(); err != nil {
		s.t.Fatalf("%s sends an unencodable message %+v", n.name, msg)
	}
	from := s.index(n)
	for to, o := range s.nodes {
		if o == n {
			continue
		}
		for l := range n.p.Links {
			if !s.cut[[3]int{from, to, l}] {
				s.deliver(o, l, msg)
			}
		}
	}
}

func (s *sim) deliver(o *simNode, link int, msg Message) {
	switch {
	case o.down:
	case o.frozen:
		o.queue = append(o.queue, queued{link, msg})
	default:
		_, outs := o.m.Receive(s.at(s.now), link, &msg)
		s.record(o, outs)
	}
}

// run advances the clock by d in 1 ms steps.
func (s *sim) run(d time.Duration) {
	end := s.now + d
	for s.now < end {
		s.now += time.Millisecond
		for _, n := range s.nodes {
			if n.down || n.frozen || s.now < n.nextTick {
				continue
			}
			s.record(n, n.m.Tick(s.at(s.now)))
			s.send(n)
			n.nextTick += tKeepalive
		}
		active := 0
		for _, n := range s.nodes {
			if !n.down && n.m.Role() == RoleActive {
				active++
			}
		}
		if active > 1 {
			s.dualNow += time.Millisecond
			s.dualMax = max(s.dualMax, s.dualNow)
		} else {
			s.dualNow = 0
		}
	}
}

// until runs until cond holds or limit passes; it returns the time taken.
func (s *sim) until(limit time.Duration, cond func() bool) (time.Duration, bool) {
	start := s.now
	for s.now-start < limit {
		if cond() {
			return s.now - start, true
		}
		s.run(time.Millisecond)
	}
	return s.now - start, cond()
}

func (s *sim) role(name string) Role { return s.node(name).m.Role() }

// roles returns "a=active b=standby" for the nodes that are not down.
func (s *sim) roles() string {
	var parts []string
	for _, n := range s.nodes {
		if !n.down {
			parts = append(parts, n.name+"="+n.m.Role().String())
		}
	}
	return strings.Join(parts, " ")
}

func (s *sim) expectRoles(want string) {
	s.t.Helper()
	if got := s.roles(); got != want {
		s.t.Fatalf("at %v: roles %q, want %q", s.now, got, want)
	}
}

func (s *sim) kill(name string) { s.node(name).down = true }

func (s *sim) freeze(name string) { s.node(name).frozen = true }

// thaw resumes a frozen node. rxFirst: the heartbeats queued while it was
// stopped are processed before its late tick, else after.
func (s *sim) thaw(name string, rxFirst bool) {
	n := s.node(name)
	n.frozen = false
	q := n.queue
	n.queue = nil
	tick := func() {
		s.record(n, n.m.Tick(s.at(s.now)))
		s.send(n)
		n.nextTick = s.now + tKeepalive
	}
	if !rxFirst {
		tick()
	}
	for _, e := range q {
		s.deliver(n, e.link, e.msg)
	}
	if rxFirst {
		tick()
	}
}

func (s *sim) restart(name string) { s.start(s.node(name), 0) }

// setLink cuts or restores one link in both directions between all nodes.
func (s *sim) setLink(link int, up bool) {
	for a := range s.nodes {
		for b := range s.nodes {
			if a != b {
				s.cut[[3]int{a, b, link}] = !up
			}
		}
	}
}

// do applies an input to a node and records its outputs.
func (s *sim) do(name string, f func(m *Machine, now time.Time) []Output) {
	n := s.node(name)
	s.record(n, f(n.m, s.at(s.now)))
}

// roleOuts returns n's OutRole outputs since index from.
func (s *sim) roleOuts(name string, from int) []simOut {
	var r []simOut
	for _, o := range s.node(name).outs[from:] {
		if o.Kind == OutRole {
			r = append(r, o)
		}
	}
	return r
}

func (s *sim) mark(name string) int { return len(s.node(name).outs) }

func (s *sim) hasOutput(name string, from int, kind OutputKind, substr string) bool {
	for _, o := range s.node(name).outs[from:] {
		if o.Kind == kind && strings.Contains(o.Reason, substr) {
			return true
		}
	}
	return false
}

func (s *sim) dump(name string) string {
	var b strings.Builder
	for _, o := range s.node(name).outs {
		fmt.Fprintf(&b, "%v kind=%d %s->%s quiet=%v %s\n", o.at, o.Kind, o.From, o.Role, o.Quiet, o.Reason)
	}
	return b.String()
}
