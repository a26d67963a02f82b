package cluster

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var (
	memberA = Member{Name: "a", NodeID: 1, Priority: 150}
	memberB = Member{Name: "b", NodeID: 2, Priority: 100}
)

func pairParams(edit func(a, b *Params)) (Params, Params) {
	a := testParams(memberA, Member{Name: "b", NodeID: 2})
	b := testParams(memberB, Member{Name: "a", NodeID: 1})
	if edit != nil {
		edit(&a, &b)
	}
	return a, b
}

// settle starts a pair and runs until it has settled with a active.
func settle(t *testing.T, edit func(a, b *Params)) *sim {
	a, b := pairParams(edit)
	s := newSim(t, a, b)
	s.run(100 * time.Millisecond)
	return s
}

// TestElectionScenarios drives two Machines through the rules of issue 5
// (items 3 to 5) on a simulated clock.
func TestElectionScenarios(t *testing.T) {
	tests := []struct {
		name string
		edit func(a, b *Params)
		run  func(t *testing.T, s *sim)
	}{
		{
			name: "both start: higher priority active, exactly one",
			run: func(t *testing.T, s *sim) {
				s.expectRoles("a=active b=standby")
				if s.dualMax > 0 {
					t.Fatalf("both active for %v", s.dualMax)
				}
			},
		},
		{
			name: "equal priority: higher node id wins",
			edit: func(a, b *Params) { a.Self.Priority = 100 },
			run:  func(t *testing.T, s *sim) { s.expectRoles("a=standby b=active") },
		},
		{
			name: "alone: init until initdead, then active",
			run: func(t *testing.T, _ *sim) {
				a, _ := pairParams(nil)
				s := newSim(t, a)
				s.run(tInitdead - tKeepalive)
				s.expectRoles("a=init")
				s.run(2 * tKeepalive)
				s.expectRoles("a=active")
				if !s.hasOutput("a", 0, OutRole, "not heard within initdead") {
					t.Fatalf("reason:\n%s", s.dump("a"))
				}
			},
		},
		{
			name: "start with ping nodes: the lower priority, answered first, waits for the higher",
			run: func(t *testing.T, _ *sim) {
				a, b := pairParams(func(a, b *Params) { a.PingNodes, b.PingNodes = 1, 1 })
				s := newSim(t, a, b)
				s.run(2 * tKeepalive)
				s.expectRoles("a=init b=init")
				s.do("b", func(m *Machine, now time.Time) []Output { return m.SetPingReachable(now, 1) })
				s.run(3 * tKeepalive)
				s.expectRoles("a=init b=init")
				s.do("a", func(m *Machine, now time.Time) []Output { return m.SetPingReachable(now, 1) })
				s.run(2 * tKeepalive)
				s.expectRoles("a=active b=standby")
			},
		},
		{
			name: "start with ping nodes that never answer: both standby after initdead",
			run: func(t *testing.T, _ *sim) {
				a, b := pairParams(func(a, b *Params) { a.PingNodes, b.PingNodes = 1, 1 })
				s := newSim(t, a, b)
				s.run(tInitdead - tKeepalive)
				s.expectRoles("a=init b=init")
				s.run(3 * tKeepalive)
				s.expectRoles("a=standby b=standby")
			},
		},
		{
			name: "joining an active peer: standby at once, no failback without auto_failback",
			run: func(t *testing.T, _ *sim) {
				a, b := pairParams(nil)
				s := newSim(t, b)
				s.run(100 * time.Millisecond)
				s.expectRoles("b=active")
				n := &simNode{name: "a", p: a}
				s.nodes = append(s.nodes, n)
				s.start(n, 0)
				if got := n.m.Role(); got != RoleStandby {
					t.Fatalf("a after first heartbeat exchange: %s", got)
				}
				s.run(200 * time.Millisecond)
				s.expectRoles("b=active a=standby")
			},
		},
		{
			name: "auto_failback: higher priority takes over when it rejoins",
			edit: func(a, b *Params) { a.AutoFailback, b.AutoFailback = true, true },
			run: func(t *testing.T, s *sim) {
				s.kill("a")
				s.run(100 * time.Millisecond)
				s.expectRoles("b=active")
				s.restart("a")
				s.run(50 * time.Millisecond)
				s.expectRoles("a=active b=standby")
				if !s.hasOutput("b", 0, OutRole, "auto_failback: a ranks higher") {
					t.Fatalf("b:\n%s", s.dump("b"))
				}
				if s.dualMax > 0 {
					t.Fatalf("both active for %v during failback", s.dualMax)
				}
			},
		},
		{
			name: "kill active: standby active within deadtime + 2 keepalives",
			run: func(t *testing.T, s *sim) {
				s.kill("a")
				took, ok := s.until(time.Second, func() bool { return s.role("b") == RoleActive })
				if !ok || took > tDeadtime+2*tKeepalive {
					t.Fatalf("b active after %v (ok=%v)", took, ok)
				}
				if !s.hasOutput("b", 0, OutRole, "a dead: silent on all links") {
					t.Fatalf("b:\n%s", s.dump("b"))
				}
			},
		},
		{
			name: "one link down: warning, no failover; back: recovered",
			run: func(t *testing.T, s *sim) {
				mb := s.mark("b")
				s.setLink(1, false)
				s.run(200 * time.Millisecond)
				s.expectRoles("a=active b=standby")
				if !s.hasOutput("b", mb, OutWarning, "a silent on link hb") {
					t.Fatalf("b:\n%s", s.dump("b"))
				}
				st := s.node("b").m.Status(s.at(s.now))
				if l := st.Peers[0].Links[1]; !l.Warning || l.Warnings != 1 || l.Up {
					t.Fatalf("status of link hb: %+v", l)
				}
				if st.Peers[0].Links[0].Up != true {
					t.Fatalf("status of link lan: %+v", st.Peers[0].Links[0])
				}
				s.setLink(1, true)
				s.run(20 * time.Millisecond)
				if !s.hasOutput("b", mb, OutNotice, "a heard on link hb again") {
					t.Fatalf("b:\n%s", s.dump("b"))
				}
				if len(s.roleOuts("a", 0)) != 1 || len(s.roleOuts("b", 0)) != 1 {
					t.Fatalf("role changes: a %v b %v", s.roleOuts("a", 0), s.roleOuts("b", 0))
				}
			},
		},
		{
			name: "all links down: both active; back: lower releases at once, higher re-announces",
			run: func(t *testing.T, s *sim) {
				s.setLink(0, false)
				s.setLink(1, false)
				took, _ := s.until(time.Second, func() bool { return s.role("b") == RoleActive })
				if took > tDeadtime+2*tKeepalive {
					t.Fatalf("b active after %v", took)
				}
				s.run(50 * time.Millisecond)
				s.expectRoles("a=active b=active")
				ma := s.mark("a")
				s.dualNow = 0
				s.dualMax = 0
				s.setLink(0, true)
				took, _ = s.until(time.Second, func() bool { return s.role("b") == RoleStandby })
				if took > tKeepalive+time.Millisecond {
					t.Fatalf("b released %v after links came back", took)
				}
				s.run(20 * time.Millisecond)
				s.expectRoles("a=active b=standby")
				if !s.hasOutput("b", 0, OutRole, "both active: a ranks higher") {
					t.Fatalf("b:\n%s", s.dump("b"))
				}
				re := s.roleOuts("a", ma)
				if len(re) != 1 || !re[0].Reannounce || re[0].Role != RoleActive {
					t.Fatalf("a's role outputs after heal: %+v", re)
				}
			},
		},
		{
			name: "freeze active longer than deadtime, thaw tick first: quiet release, peer keeps it",
			run: func(t *testing.T, s *sim) {
				freezeScenario(t, s, false)
			},
		},
		{
			name: "freeze active longer than deadtime, thaw heartbeats first: quiet release, peer keeps it",
			run: func(t *testing.T, s *sim) {
				freezeScenario(t, s, true)
			},
		},
		{
			name: "freeze standby: no takeover on thaw",
			run: func(t *testing.T, s *sim) {
				s.freeze("b")
				s.run(300 * time.Millisecond)
				s.thaw("b", false)
				s.run(100 * time.Millisecond)
				s.expectRoles("a=active b=standby")
				if len(s.roleOuts("b", 0)) != 1 {
					t.Fatalf("b:\n%s", s.dump("b"))
				}
			},
		},
		{
			name: "short stall below deadtime: nothing happens",
			run: func(t *testing.T, s *sim) {
				s.freeze("a")
				s.run(tDeadtime - 2*tKeepalive)
				s.thaw("a", true)
				s.run(100 * time.Millisecond)
				s.expectRoles("a=active b=standby")
				if len(s.roleOuts("a", 0)) != 1 || len(s.roleOuts("b", 0)) != 1 {
					t.Fatalf("a:\n%s\nb:\n%s", s.dump("a"), s.dump("b"))
				}
			},
		},
		{
			name: "restart of the dead node: rejoins as standby without auto_failback",
			run: func(t *testing.T, s *sim) {
				s.kill("a")
				s.run(100 * time.Millisecond)
				s.restart("a")
				s.run(200 * time.Millisecond)
				s.expectRoles("a=standby b=active")
				if st := s.node("b").m.Status(s.at(s.now)); st.Peers[0].Restarts != 1 {
					t.Fatalf("restarts = %d", st.Peers[0].Restarts)
				}
			},
		},
		{
			name: "carrier lost on active: hands over at once; back: no failback",
			edit: func(a, b *Params) { a.Monitor, b.Monitor = []string{"wan0"}, []string{"wan0"} },
			run: func(t *testing.T, s *sim) {
				s.do("a", func(m *Machine, now time.Time) []Output { return m.SetCarrier(now, "wan0", false) })
				s.expectRoles("a=standby b=active")
				if !s.hasOutput("a", 0, OutRole, "carrier lost on wan0: handing over to b") {
					t.Fatalf("a:\n%s", s.dump("a"))
				}
				s.do("a", func(m *Machine, now time.Time) []Output { return m.SetCarrier(now, "wan0", true) })
				s.run(100 * time.Millisecond)
				s.expectRoles("a=standby b=active")
			},
		},
		{
			name: "carrier lost on active with auto_failback: comes back when carrier returns",
			edit: func(a, b *Params) {
				a.Monitor, b.Monitor = []string{"wan0"}, []string{"wan0"}
				a.AutoFailback, b.AutoFailback = true, true
			},
			run: func(t *testing.T, s *sim) {
				s.do("a", func(m *Machine, now time.Time) []Output { return m.SetCarrier(now, "wan0", false) })
				s.run(50 * time.Millisecond)
				s.expectRoles("a=standby b=active")
				s.do("a", func(m *Machine, now time.Time) []Output { return m.SetCarrier(now, "wan0", true) })
				s.run(time.Millisecond)
				s.expectRoles("a=active b=standby")
			},
		},
		{
			name: "carrier lost on standby: not eligible, no takeover when active dies",
			edit: func(a, b *Params) { a.Monitor, b.Monitor = []string{"wan0"}, []string{"wan0"} },
			run: func(t *testing.T, s *sim) {
				s.do("b", func(m *Machine, now time.Time) []Output { return m.SetCarrier(now, "wan0", false) })
				st := s.node("a").m.Status(s.at(s.now))
				if st.Peers[0].Eligible || !strings.Contains(strings.Join(st.Peers[0].NotEligible, ","), "carrier lost") {
					t.Fatalf("a's view of b: %+v", st.Peers[0])
				}
				_, err := s.node("a").m.Standby(s.at(s.now))
				if !errors.Is(err, ErrNoEligiblePeer) || !strings.Contains(err.Error(), "b: carrier lost") {
					t.Fatalf("Standby with b not eligible: %v", err)
				}
				s.kill("a")
				s.run(200 * time.Millisecond)
				s.expectRoles("b=standby")
				s.do("b", func(m *Machine, now time.Time) []Output { return m.SetCarrier(now, "wan0", true) })
				s.expectRoles("b=active")
			},
		},
		{
			name: "carrier lost on active with the standby not eligible: stays active and warns",
			edit: func(a, b *Params) { a.Monitor, b.Monitor = []string{"wan0"}, []string{"wan0"} },
			run: func(t *testing.T, s *sim) {
				s.do("b", func(m *Machine, now time.Time) []Output { return m.SetMaintenance(now, true) })
				s.do("a", func(m *Machine, now time.Time) []Output { return m.SetCarrier(now, "wan0", false) })
				s.run(50 * time.Millisecond)
				s.expectRoles("a=active b=standby")
				if !s.hasOutput("a", 0, OutWarning, "no peer can take over: staying active") {
					t.Fatalf("a:\n%s", s.dump("a"))
				}
			},
		},
		{
			name: "maintenance standby never takes over",
			edit: func(a, b *Params) { b.Maintenance = true },
			run: func(t *testing.T, s *sim) {
				s.kill("a")
				s.run(300 * time.Millisecond)
				s.expectRoles("b=standby")
				if _, err := s.node("b").m.Takeover(s.at(s.now)); !errors.Is(err, ErrMaintenance) {
					t.Fatalf("Takeover in maintenance: %v", err)
				}
				s.do("b", func(m *Machine, now time.Time) []Output { return m.SetMaintenance(now, false) })
				s.expectRoles("b=active")
			},
		},
		{
			name: "maintenance on the active hands over",
			run: func(t *testing.T, s *sim) {
				s.do("a", func(m *Machine, now time.Time) []Output { return m.SetMaintenance(now, true) })
				s.expectRoles("a=standby b=active")
				s.run(100 * time.Millisecond)
				s.expectRoles("a=standby b=active")
			},
		},
		{
			name: "maintenance at start on the higher priority node: lower one active",
			edit: func(a, b *Params) { a.Maintenance = true },
			run:  func(t *testing.T, s *sim) { s.expectRoles("a=standby b=active") },
		},
		{
			name: "standby hands over to a healthy peer, and stays standby under auto_failback",
			edit: func(a, b *Params) { a.AutoFailback, b.AutoFailback = true, true },
			run: func(t *testing.T, s *sim) {
				var err error
				s.do("a", func(m *Machine, now time.Time) []Output {
					var outs []Output
					outs, err = m.Standby(now)
					return outs
				})
				if err != nil {
					t.Fatal(err)
				}
				s.expectRoles("a=standby b=active")
				s.run(200 * time.Millisecond)
				s.expectRoles("a=standby b=active")
				if st := s.node("a").m.Status(s.at(s.now)); st.Preference != "standby" {
					t.Fatalf("preference %q", st.Preference)
				}
				if s.dualMax > 0 {
					t.Fatalf("both active for %v", s.dualMax)
				}
				// Failover still works with a standby preference.
				s.kill("b")
				s.run(100 * time.Millisecond)
				s.expectRoles("a=active")
			},
		},
		{
			name: "standby refused when the peer is dead",
			run: func(t *testing.T, s *sim) {
				s.kill("b")
				s.run(100 * time.Millisecond)
				_, err := s.node("a").m.Standby(s.at(s.now))
				if !errors.Is(err, ErrNoEligiblePeer) || !strings.Contains(err.Error(), "b: dead") {
					t.Fatalf("err = %v", err)
				}
				s.expectRoles("a=active")
			},
		},
		{
			name: "takeover on the standby: active hands over, and back",
			edit: func(a, b *Params) { a.AutoFailback, b.AutoFailback = true, true },
			run: func(t *testing.T, s *sim) {
				var err error
				s.do("b", func(m *Machine, now time.Time) []Output {
					var outs []Output
					outs, err = m.Takeover(now)
					return outs
				})
				if err != nil {
					t.Fatal(err)
				}
				s.expectRoles("a=standby b=active")
				if !s.hasOutput("a", 0, OutRole, "operator takeover on b") {
					t.Fatalf("a:\n%s", s.dump("a"))
				}
				s.run(200 * time.Millisecond)
				s.expectRoles("a=standby b=active") // preference beats auto_failback
				s.do("a", func(m *Machine, now time.Time) []Output {
					var outs []Output
					outs, err = m.Takeover(now)
					return outs
				})
				if err != nil {
					t.Fatal(err)
				}
				s.expectRoles("a=active b=standby")
				s.run(200 * time.Millisecond)
				s.expectRoles("a=active b=standby")
				if s.dualMax > 0 {
					t.Fatalf("both active for %v", s.dualMax)
				}
			},
		},
		{
			name: "takeover across a config hash mismatch; standby refused",
			edit: func(a, b *Params) { b.ConfigHash = ParseConfigHash("ffffffffffffffff") },
			run: func(t *testing.T, s *sim) {
				s.expectRoles("a=active b=standby")
				st := s.node("a").m.Status(s.at(s.now))
				if st.Peers[0].Eligible || !strings.Contains(st.Peers[0].NotEligible[0], "config hash ffffffffffffffff differs from ours (0011223344556677)") {
					t.Fatalf("a's view of b: %+v", st.Peers[0])
				}
				if _, err := s.node("a").m.Standby(s.at(s.now)); !errors.Is(err, ErrNoEligiblePeer) {
					t.Fatalf("Standby to a mismatched peer: %v", err)
				}
				s.do("b", func(m *Machine, now time.Time) []Output {
					outs, err := m.Takeover(now)
					if err != nil {
						t.Fatal(err)
					}
					return outs
				})
				s.expectRoles("a=standby b=active")
			},
		},
		{
			name: "config hash mismatch: a dead active is still replaced",
			edit: func(a, b *Params) { b.ConfigHash = ParseConfigHash("ffffffffffffffff") },
			run: func(t *testing.T, s *sim) {
				s.kill("a")
				s.run(100 * time.Millisecond)
				s.expectRoles("b=active")
			},
		},
		{
			name: "ping nodes: standby reaching none does not take over",
			edit: func(a, b *Params) { a.PingNodes, b.PingNodes = 1, 1 },
			run: func(t *testing.T, s *sim) {
				s.expectRoles("a=standby b=standby") // nobody reaches a ping node yet
				s.do("a", func(m *Machine, now time.Time) []Output { return m.SetPingReachable(now, 1) })
				s.do("b", func(m *Machine, now time.Time) []Output { return m.SetPingReachable(now, 1) })
				s.run(20 * time.Millisecond)
				s.expectRoles("a=active b=standby")
				s.do("b", func(m *Machine, now time.Time) []Output { return m.SetPingReachable(now, 0) })
				s.kill("a")
				s.run(200 * time.Millisecond)
				s.expectRoles("b=standby")
				s.do("b", func(m *Machine, now time.Time) []Output { return m.SetPingReachable(now, 1) })
				s.expectRoles("b=active")
			},
		},
		{
			name: "ping nodes: active losing all while the peer reaches them hands over",
			edit: func(a, b *Params) { a.PingNodes, b.PingNodes = 2, 2 },
			run: func(t *testing.T, s *sim) {
				s.do("a", func(m *Machine, now time.Time) []Output { return m.SetPingReachable(now, 2) })
				s.do("b", func(m *Machine, now time.Time) []Output { return m.SetPingReachable(now, 1) })
				s.run(20 * time.Millisecond)
				s.expectRoles("a=active b=standby")
				s.do("a", func(m *Machine, now time.Time) []Output { return m.SetPingReachable(now, 0) })
				s.expectRoles("a=standby b=active")
				if !s.hasOutput("a", 0, OutRole, "no ping node reachable and b reaches 1") {
					t.Fatalf("a:\n%s", s.dump("a"))
				}
			},
		},
		{
			name: "ping nodes: active losing all while the peer does too stays",
			edit: func(a, b *Params) { a.PingNodes, b.PingNodes = 1, 1 },
			run: func(t *testing.T, s *sim) {
				s.do("a", func(m *Machine, now time.Time) []Output { return m.SetPingReachable(now, 1) })
				s.do("b", func(m *Machine, now time.Time) []Output { return m.SetPingReachable(now, 1) })
				s.run(20 * time.Millisecond)
				s.do("b", func(m *Machine, now time.Time) []Output { return m.SetPingReachable(now, 0) })
				s.do("a", func(m *Machine, now time.Time) []Output { return m.SetPingReachable(now, 0) })
				s.run(100 * time.Millisecond)
				s.expectRoles("a=active b=standby")
			},
		},
		{
			name: "ping nodes and all heartbeat links cut: only the one reaching a ping node is active",
			edit: func(a, b *Params) { a.PingNodes, b.PingNodes = 1, 1 },
			run: func(t *testing.T, s *sim) {
				s.do("a", func(m *Machine, now time.Time) []Output { return m.SetPingReachable(now, 1) })
				s.run(20 * time.Millisecond)
				s.expectRoles("a=active b=standby")
				s.setLink(0, false)
				s.setLink(1, false)
				s.run(200 * time.Millisecond)
				s.expectRoles("a=active b=standby")
			},
		},
		{
			name: "graceful leave: the peer takes over at once",
			run: func(t *testing.T, s *sim) {
				a := s.node("a")
				msg := Message{NodeID: 1, Epoch: a.epoch, Seq: a.seq + 1, Uptime: s.now - a.started}
				adv := a.m.Advert()
				adv.Role = RoleStandby
				adv.Flags |= FlagLeaving
				adv.Fill(&msg)
				a.down = true
				s.deliver(s.node("b"), 0, msg)
				s.expectRoles("b=active")
				if !s.hasOutput("b", 0, OutRole, "a left") {
					t.Fatalf("b:\n%s", s.dump("b"))
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(t, settle(t, tc.edit))
		})
	}
}

func freezeScenario(t *testing.T, s *sim, rxFirst bool) {
	t.Helper()
	s.freeze("a")
	took, _ := s.until(time.Second, func() bool { return s.role("b") == RoleActive })
	if took > tDeadtime+2*tKeepalive {
		t.Fatalf("b active %v after a froze", took)
	}
	s.run(200 * time.Millisecond)
	ma, mb := s.mark("a"), s.mark("b")
	s.dualNow, s.dualMax = 0, 0
	s.thaw("a", rxFirst)
	s.run(200 * time.Millisecond)
	s.expectRoles("a=standby b=active")
	if s.dualMax > 0 {
		t.Fatalf("both active for %v after thaw", s.dualMax)
	}
	outs := s.roleOuts("a", ma)
	if len(outs) != 1 || !outs[0].Quiet || outs[0].Role != RoleStandby || outs[0].at != s.now-200*time.Millisecond {
		t.Fatalf("a after thaw: %+v\n%s", outs, s.dump("a"))
	}
	// b keeps the role; it announces its addresses again in case the
	// thawed node still had them.
	for _, o := range s.roleOuts("b", mb) {
		if !o.Reannounce {
			t.Fatalf("b changed role after thaw:\n%s", s.dump("b"))
		}
	}
	if st := s.node("a").m.Status(s.at(s.now)); st.Stalls != 1 {
		t.Fatalf("stalls = %d", st.Stalls)
	}
}
