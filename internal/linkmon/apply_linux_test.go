package linkmon

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func update(typ uint16, name string, index int, flags uint32, oper netlink.LinkOperState) netlink.LinkUpdate {
	u := netlink.LinkUpdate{Link: &netlink.Device{LinkAttrs: netlink.LinkAttrs{
		Name: name, Index: index, RawFlags: flags, OperState: oper}}}
	u.Header.Type = typ
	return u
}

// TestApply feeds hand-made link messages through the state fold and
// compares the events, as "iface present carrier admin oper" lines.
func TestApply(t *testing.T) {
	const up = unix.IFF_UP | unix.IFF_LOWER_UP
	tests := []struct {
		name    string
		updates []netlink.LinkUpdate
		want    []string
	}{
		{
			name:    "unchanged state is no event",
			updates: []netlink.LinkUpdate{update(unix.RTM_NEWLINK, "wan0", 2, up, netlink.OperUp)},
			want:    nil,
		},
		{
			name: "carrier lost and back",
			updates: []netlink.LinkUpdate{
				update(unix.RTM_NEWLINK, "wan0", 2, unix.IFF_UP, netlink.OperLowerLayerDown),
				update(unix.RTM_NEWLINK, "wan0", 2, unix.IFF_UP, netlink.OperLowerLayerDown),
				update(unix.RTM_NEWLINK, "wan0", 2, up, netlink.OperUp),
			},
			want: []string{"wan0 present=true carrier=false admin=true lower-layer-down",
				"wan0 present=true carrier=true admin=true up"},
		},
		{
			name:    "unmonitored interface ignored",
			updates: []netlink.LinkUpdate{update(unix.RTM_NEWLINK, "eth9", 9, 0, netlink.OperDown)},
			want:    nil,
		},
		{
			name: "deleted then created again",
			updates: []netlink.LinkUpdate{
				update(unix.RTM_DELLINK, "wan0", 2, up, netlink.OperUp),
				update(unix.RTM_NEWLINK, "wan0", 7, up, netlink.OperUp),
			},
			want: []string{"wan0 present=false carrier=false admin=false not-present",
				"wan0 present=true carrier=true admin=true up"},
		},
		{
			name:    "renamed away",
			updates: []netlink.LinkUpdate{update(unix.RTM_NEWLINK, "old0", 2, up, netlink.OperUp)},
			want:    []string{"wan0 present=false carrier=false admin=false not-present"},
		},
		{
			name:    "absent interface appears",
			updates: []netlink.LinkUpdate{update(unix.RTM_NEWLINK, "hb0", 5, up, netlink.OperUp)},
			want:    []string{"hb0 present=true carrier=true admin=true up"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := &Monitor{log: slog.New(slog.NewTextHandler(io.Discard, nil)), state: map[string]Event{
				"wan0": {Iface: "wan0", Index: 2, Present: true, Carrier: true, AdminUp: true, OperState: "up"},
				"hb0":  {Iface: "hb0", OperState: OperNotPresent},
			}}
			var err error
			if m.m, err = newMetrics(nil); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, u := range tc.updates {
				for _, e := range m.apply(u, time.Now()) {
					got = append(got, line(e))
					if s, _ := m.State(e.Iface); !s.same(e) {
						t.Errorf("State(%s) = %+v, want the last event %+v", e.Iface, s, e)
					}
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

func line(e Event) string {
	return e.Iface + " present=" + fmtBool(e.Present) + " carrier=" + fmtBool(e.Carrier) +
		" admin=" + fmtBool(e.AdminUp) + " " + e.OperState
}

func fmtBool(b bool) string {
	if b {
		return "true"
	}
	return "false"
}
