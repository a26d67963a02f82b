package cluster

import (
	"strings"
	"testing"
	"time"
)

// harness drives one Machine with hand-made heartbeats from peer b (id 2).
type harness struct {
	t   *testing.T
	m   *Machine
	t0  time.Time
	seq uint64
	all []Output
}

func newHarness(t *testing.T, edit func(p *Params)) *harness {
	p := testParams(memberA, Member{Name: "b", NodeID: 2})
	if edit != nil {
		edit(&p)
	}
	t0 := time.Unix(1_700_000_000, 0)
	return &harness{t: t, m: NewMachine(p, t0), t0: t0}
}

func (h *harness) at(d time.Duration) time.Time { return h.t0.Add(d) }

func (h *harness) keep(outs []Output) []Output {
	h.all = append(h.all, outs...)
	return append([]Output(nil), outs...)
}

// ticks ticks every keepalive from..to (inclusive).
func (h *harness) ticks(from, to time.Duration) {
	for d := from; d <= to; d += tKeepalive {
		h.keep(h.m.Tick(h.at(d)))
	}
}

// msg returns a heartbeat from b; uptime follows the harness clock.
func (h *harness) msg(at time.Duration, role Role, edit func(*Message)) Message {
	h.seq++
	m := Message{NodeID: 2, Role: role, Priority: 100, Flags: FlagEligible | FlagCarrierOK,
		Epoch: 5, Seq: h.seq, Uptime: at + time.Hour, ConfigHash: testHash, NAlive: 1}
	m.Alive[0] = 1
	if edit != nil {
		edit(&m)
	}
	return m
}

func (h *harness) recv(at time.Duration, link int, m Message) (DropReason, []Output) {
	d, outs := h.m.Receive(h.at(at), link, &m)
	return d, h.keep(outs)
}

func (h *harness) has(kind OutputKind, substr string) bool {
	for _, o := range h.all {
		if o.Kind == kind && strings.Contains(o.Reason, substr) {
			return true
		}
	}
	return false
}

func TestReceiveDrops(t *testing.T) {
	tests := []struct {
		name string
		run  func(h *harness) DropReason
		want DropReason
	}{
		{"accepted", func(h *harness) DropReason {
			d, _ := h.recv(0, 0, h.msg(0, RoleStandby, nil))
			return d
		}, DropNone},
		{"unknown node", func(h *harness) DropReason {
			d, _ := h.recv(0, 0, h.msg(0, RoleStandby, func(m *Message) { m.NodeID = 9 }))
			return d
		}, DropUnknownNode},
		{"our own node id", func(h *harness) DropReason {
			d, _ := h.recv(0, 0, h.msg(0, RoleStandby, func(m *Message) { m.NodeID = 1; m.NAlive = 0; m.Alive[0] = 0 }))
			return d
		}, DropUnknownNode},
		{"link index out of range", func(h *harness) DropReason {
			d, _ := h.recv(0, 7, h.msg(0, RoleStandby, nil))
			return d
		}, DropUnknownNode},
		{"replay on the same link", func(h *harness) DropReason {
			m := h.msg(0, RoleStandby, nil)
			h.recv(0, 0, m)
			d, _ := h.recv(time.Millisecond, 0, m)
			return d
		}, DropReplay},
		{"older sequence on the same link", func(h *harness) DropReason {
			m1 := h.msg(0, RoleStandby, nil)
			m2 := h.msg(0, RoleStandby, nil)
			h.recv(0, 0, m2)
			d, _ := h.recv(time.Millisecond, 0, m1)
			return d
		}, DropReplay},
		{"same message on the other link counts", func(h *harness) DropReason {
			m := h.msg(0, RoleStandby, nil)
			h.recv(0, 0, m)
			d, _ := h.recv(time.Millisecond, 1, m)
			return d
		}, DropNone},
		{"far behind the newest on another link", func(h *harness) DropReason {
			old := h.msg(0, RoleStandby, nil)
			h.seq += 100
			h.recv(0, 0, h.msg(0, RoleStandby, nil))
			d, _ := h.recv(time.Millisecond, 1, old)
			return d
		}, DropStale},
		{"older epoch", func(h *harness) DropReason {
			h.recv(0, 0, h.msg(0, RoleStandby, nil))
			d, _ := h.recv(time.Millisecond, 1, h.msg(0, RoleStandby, func(m *Message) { m.Epoch = 4 }))
			return d
		}, DropStale},
		{"newer epoch restarts the sequence", func(h *harness) DropReason {
			h.seq = 1000
			h.recv(0, 0, h.msg(0, RoleStandby, nil))
			h.seq = 0
			d, _ := h.recv(time.Millisecond, 0, h.msg(0, RoleStandby, func(m *Message) { m.Epoch = 6 }))
			if !h.has(OutNotice, "b restarted") {
				h.t.Error("no restart notice")
			}
			return d
		}, DropNone},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			if got := tc.run(h); got != tc.want {
				t.Fatalf("drop = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestElectionRules(t *testing.T) {
	tests := []struct {
		name string
		edit func(p *Params)
		run  func(t *testing.T, h *harness)
	}{
		{
			name: "init: a peer not heard keeps us in init until initdead",
			run: func(t *testing.T, h *harness) {
				h.ticks(tKeepalive, tInitdead-tKeepalive)
				if h.m.Role() != RoleInit {
					t.Fatalf("role %s before initdead", h.m.Role())
				}
				h.ticks(tInitdead, tInitdead)
				if h.m.Role() != RoleActive || !h.has(OutRole, "b not heard within initdead (60ms)") {
					t.Fatalf("role %s, outputs %+v", h.m.Role(), h.all)
				}
			},
		},
		{
			name: "dead detection waits for deadtime on all links",
			run: func(t *testing.T, h *harness) {
				h.recv(0, 0, h.msg(0, RoleActive, nil))
				if h.m.Role() != RoleStandby {
					t.Fatalf("role %s", h.m.Role())
				}
				for d := tKeepalive; d < 100*time.Millisecond; d += tKeepalive {
					h.recv(d, 1, h.msg(d, RoleActive, nil)) // only link hb
					h.ticks(d, d)
				}
				if h.m.Role() != RoleStandby || !h.has(OutWarning, "b silent on link lan") {
					t.Fatalf("role %s, outputs %+v", h.m.Role(), h.all)
				}
				last := 90 * time.Millisecond
				h.ticks(last+tKeepalive, last+tDeadtime-tKeepalive)
				if h.m.Role() != RoleStandby {
					t.Fatal("active before deadtime")
				}
				h.ticks(last+tDeadtime, last+tDeadtime)
				if h.m.Role() != RoleActive || !h.has(OutRole, "b dead: silent on all links for 30ms") {
					t.Fatalf("role %s, outputs %+v", h.m.Role(), h.all)
				}
			},
		},
		{
			name: "both active, peer does not hear us: quiet release after two keepalives",
			run: func(t *testing.T, h *harness) {
				h.ticks(tKeepalive, tInitdead) // alone: active
				if h.m.Role() != RoleActive {
					t.Fatal("not active")
				}
				noUs := func(m *Message) { m.NAlive = 0; m.Alive[0] = 0 }
				d := tInitdead + time.Millisecond
				h.recv(d, 0, h.msg(d, RoleActive, noUs)) // b ranks lower, but does not hear us
				h.ticks(d+tKeepalive-time.Millisecond, d+tKeepalive-time.Millisecond)
				if h.m.Role() != RoleActive {
					t.Fatal("released before two keepalives")
				}
				h.recv(d+2*tKeepalive, 0, h.msg(d+2*tKeepalive, RoleActive, noUs))
				last := h.all[len(h.all)-1]
				if h.m.Role() != RoleStandby || !last.Quiet || !strings.Contains(last.Reason, "stale side") {
					t.Fatalf("role %s, last %+v", h.m.Role(), last)
				}
			},
		},
		{
			name: "both active, peer hears us and ranks lower: we stay",
			run: func(t *testing.T, h *harness) {
				h.ticks(tKeepalive, tInitdead)
				for d := tInitdead + time.Millisecond; d < 200*time.Millisecond; d += tKeepalive {
					h.recv(d, 0, h.msg(d, RoleActive, nil))
					h.ticks(d+time.Millisecond, d+time.Millisecond)
				}
				if h.m.Role() != RoleActive {
					t.Fatalf("role %s", h.m.Role())
				}
			},
		},
		{
			name: "stall seen in the peer's uptime: our clock stood still",
			run: func(t *testing.T, h *harness) {
				h.ticks(tKeepalive, tInitdead)
				d := tInitdead + time.Millisecond
				h.recv(d, 0, h.msg(d, RoleStandby, nil))
				// Our clock advanced 10 ms, the peer's 500 ms.
				h.recv(d+tKeepalive, 0, h.msg(d+500*time.Millisecond, RoleActive, nil))
				if h.m.Role() != RoleStandby || !h.has(OutWarning, "b's clock advanced 490ms more than ours") {
					t.Fatalf("role %s, outputs %+v", h.m.Role(), h.all)
				}
				if !h.all[len(h.all)-1].Quiet && !h.has(OutRole, "stalled") {
					t.Fatalf("outputs %+v", h.all)
				}
			},
		},
		{
			name: "delayed heartbeats are not a stall",
			run: func(t *testing.T, h *harness) {
				h.ticks(tKeepalive, tInitdead)
				d := tInitdead + time.Millisecond
				h.recv(d, 0, h.msg(d, RoleStandby, nil))
				// Three heartbeats held back 200 ms, then delivered at once.
				late := d + 200*time.Millisecond
				h.ticks(d+tKeepalive, late-time.Millisecond)
				for i := 1; i <= 3; i++ {
					h.recv(late, 0, h.msg(d+time.Duration(i)*tKeepalive, RoleStandby, nil))
				}
				h.recv(late+tKeepalive, 0, h.msg(late+tKeepalive, RoleStandby, nil))
				if h.m.Role() != RoleActive || h.has(OutWarning, "stalled") {
					t.Fatalf("role %s, outputs %+v", h.m.Role(), h.all)
				}
			},
		},
		{
			name: "handover lapses when the target does not take over",
			run: func(t *testing.T, h *harness) {
				h.ticks(tKeepalive, tInitdead)
				d := tInitdead + time.Millisecond
				h.recv(d, 0, h.msg(d, RoleStandby, nil))
				if _, err := h.m.Standby(h.at(d)); err != nil {
					t.Fatal(err)
				}
				if a := h.m.Advert(); a.Role != RoleStandby || a.HandoverTo != 2 || a.Flags&FlagYield == 0 {
					t.Fatalf("advert %+v", a)
				}
				for x := d + tKeepalive; x <= d+tDeadtime+tKeepalive; x += tKeepalive {
					h.recv(x, 0, h.msg(x, RoleStandby, nil)) // b never takes over
					h.ticks(x, x)
				}
				if !h.has(OutWarning, "handover to b not taken within 30ms") {
					t.Fatalf("outputs %+v", h.all)
				}
				// The standby preference stays: b, a candidate that now
				// ranks higher, is expected to take over by itself.
				if a := h.m.Advert(); a.HandoverTo != 0 || a.Flags&FlagStandbyPref == 0 {
					t.Fatalf("advert %+v", a)
				}
			},
		},
		{
			name: "takeover with no peer active is immediate and sets the preference",
			run: func(t *testing.T, h *harness) {
				h.recv(0, 0, h.msg(0, RoleStandby, func(m *Message) { m.Priority = 200 }))
				if h.m.Role() != RoleStandby {
					t.Fatalf("role %s", h.m.Role())
				}
				outs, err := h.m.Takeover(h.at(time.Millisecond))
				if err != nil || h.m.Role() != RoleActive || len(outs) != 1 || outs[0].Reason != "operator takeover" {
					t.Fatalf("err %v role %s outs %+v", err, h.m.Role(), outs)
				}
				if a := h.m.Advert(); a.Flags&FlagPreferred == 0 {
					t.Fatalf("advert %+v", a)
				}
			},
		},
		{
			name: "takeover request lapses when the active does not answer",
			run: func(t *testing.T, h *harness) {
				h.recv(0, 0, h.msg(0, RoleActive, nil))
				if _, err := h.m.Takeover(h.at(time.Millisecond)); err != nil {
					t.Fatal(err)
				}
				if a := h.m.Advert(); a.Flags&FlagTakeoverReq == 0 {
					t.Fatalf("advert %+v", a)
				}
				for x := tKeepalive; x <= 60*time.Millisecond; x += tKeepalive {
					h.recv(x, 0, h.msg(x, RoleActive, nil))
					h.ticks(x, x)
				}
				if h.m.Role() != RoleStandby || !h.has(OutWarning, "takeover request not answered") {
					t.Fatalf("role %s outputs %+v", h.m.Role(), h.all)
				}
				if a := h.m.Advert(); a.Flags&FlagTakeoverReq != 0 {
					t.Fatalf("advert %+v", a)
				}
			},
		},
		{
			name: "carrier on an unmonitored interface is ignored",
			edit: func(p *Params) { p.Monitor = []string{"wan0"} },
			run: func(t *testing.T, h *harness) {
				if outs := h.m.SetCarrier(h.at(0), "lan0", false); len(outs) != 0 || h.m.Advert().Flags&FlagCarrierOK == 0 {
					t.Fatalf("outs %+v", outs)
				}
				h.m.SetCarrier(h.at(0), "wan0", false)
				if f := h.m.Advert().Flags; f&(FlagCarrierOK|FlagEligible) != 0 {
					t.Fatalf("flags %b", f)
				}
				st := h.m.Status(h.at(0))
				if st.Eligible || st.NotEligible[0] != "carrier lost on wan0" || st.Carrier[0].Up {
					t.Fatalf("status %+v", st)
				}
			},
		},
		{
			name: "time going backwards is clamped",
			run: func(t *testing.T, h *harness) {
				h.ticks(tKeepalive, 2*tKeepalive)
				h.keep(h.m.Tick(h.at(0)))
				h.ticks(3*tKeepalive, tInitdead)
				if h.m.Role() != RoleActive || h.has(OutWarning, "stalled") {
					t.Fatalf("role %s outputs %+v", h.m.Role(), h.all)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(t, newHarness(t, tc.edit))
		})
	}
}

// TestSteadyStateDoesNotAllocate: the heartbeat loop calls Receive, Tick
// and Advert about 300 times a second; in steady state (no decision, no
// warning) none of them allocates.
func TestSteadyStateDoesNotAllocate(t *testing.T) {
	h := newHarness(t, nil)
	h.recv(0, 0, h.msg(0, RoleActive, nil))
	h.ticks(tKeepalive, tKeepalive)
	d := tKeepalive
	m := h.msg(d, RoleActive, nil)
	allocs := testing.AllocsPerRun(200, func() {
		d += tKeepalive
		m.Seq++
		m.Uptime = d + time.Hour
		h.m.Receive(h.at(d), 0, &m)
		h.m.Receive(h.at(d), 1, &m)
		h.m.Tick(h.at(d))
		_ = h.m.Advert()
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per heartbeat round", allocs)
	}
	if h.m.Role() != RoleStandby {
		t.Fatalf("role %s", h.m.Role())
	}
}
