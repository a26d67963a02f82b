package cluster

import (
	"strings"
	"testing"
	"time"
)

// TestStallRelease: a timer tick deadtime late makes an active node with
// an alive peer release quietly, but leaves a lone active node (its peer
// dead) active: nobody can have taken over, and releasing would stop and
// restart the resources of a survivor under load.
func TestStallRelease(t *testing.T) {
	const ka, dead = 10 * time.Millisecond, 30 * time.Millisecond
	p := Params{
		Self:       Member{Name: "b", NodeID: 2, Priority: 100},
		Peers:      []Member{{Name: "a", NodeID: 1}},
		Links:      []string{"lan", "hb"},
		Timers:     Timers{Keepalive: ka, Warntime: 20 * time.Millisecond, Deadtime: dead, Initdead: 60 * time.Millisecond},
		ConfigHash: ParseConfigHash("0011223344556677"),
	}
	for _, tc := range []struct {
		name      string
		peerAlive bool
		wantRole  Role
		wantQuiet bool
	}{
		{name: "peer alive: quiet release", peerAlive: true, wantRole: RoleStandby, wantQuiet: true},
		{name: "peer dead: stays active", peerAlive: false, wantRole: RoleActive},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t0 := time.Unix(1_700_000_000, 0)
			m := NewMachine(p, t0)
			now := t0
			var seq uint64
			for i := 0; i < 12; i++ {
				now = now.Add(ka)
				if tc.peerAlive {
					seq++
					// a: alive, standby, priority lower than ours, eligible.
					msg := Message{NodeID: 1, Role: RoleStandby, Priority: 50, Flags: FlagEligible | FlagCarrierOK,
						Epoch: 1, Seq: seq, Uptime: now.Sub(t0), ConfigHash: p.ConfigHash, NAlive: 1, Alive: [MaxAlive]uint8{2}}
					if r, _ := m.Receive(now, 0, &msg); r != DropNone {
						t.Fatalf("heartbeat dropped: %s", r)
					}
				}
				m.Tick(now)
			}
			if m.Role() != RoleActive {
				t.Fatalf("before the stall: role %s, want active", m.Role())
			}
			now = now.Add(dead + time.Millisecond)
			outs := m.Tick(now)
			var roleOuts []Output
			warned := false
			for _, o := range outs {
				switch {
				case o.Kind == OutRole:
					roleOuts = append(roleOuts, o)
				case o.Kind == OutWarning && strings.HasPrefix(o.Reason, "stalled"):
					warned = true
				}
			}
			if !warned {
				t.Errorf("no stall warning in %+v", outs)
			}
			if m.Role() != tc.wantRole {
				t.Fatalf("after the stall: role %s, want %s (outputs %+v)", m.Role(), tc.wantRole, outs)
			}
			if tc.wantRole == RoleStandby && (len(roleOuts) != 1 || roleOuts[0].Quiet != tc.wantQuiet) {
				t.Fatalf("role outputs %+v, want one with Quiet=%v", roleOuts, tc.wantQuiet)
			}
			if tc.wantRole == RoleActive && len(roleOuts) != 0 {
				t.Fatalf("role outputs %+v, want none", roleOuts)
			}
			// And no flap afterwards while alone.
			if !tc.peerAlive {
				for i := 0; i < 10; i++ {
					now = now.Add(ka)
					for _, o := range m.Tick(now) {
						if o.Kind == OutRole {
							t.Fatalf("transition after the stall: %+v", o)
						}
					}
				}
			}
		})
	}
}
