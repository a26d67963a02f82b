package main

import (
	"encoding/binary"
	"testing"

	"golang.org/x/sys/unix"
)

// routeMsg builds an RTM_NEWROUTE/RTM_DELROUTE notification for an IPv4
// route.
func routeMsg(typ uint16, proto uint8, dst [4]byte, bits uint8) []byte {
	ne := binary.NativeEndian
	var b []byte
	b = ne.AppendUint32(b, 16+12+8)
	b = ne.AppendUint16(b, typ)
	b = ne.AppendUint16(b, 0)
	b = ne.AppendUint32(b, 1)
	b = ne.AppendUint32(b, 0)
	b = append(b, unix.AF_INET, bits, 0, 0, 254, proto, 0, 1)
	b = ne.AppendUint32(b, 0)
	b = ne.AppendUint16(b, 8)
	b = ne.AppendUint16(b, unix.RTA_DST)
	return append(b, dst[:]...)
}

func TestParseRouteEvents(t *testing.T) {
	var b []byte
	b = append(b, routeMsg(unix.RTM_NEWROUTE, 186, [4]byte{10, 0, 0, 0}, 25)...)
	b = append(b, routeMsg(unix.RTM_DELROUTE, 2, [4]byte{10, 0, 1, 128}, 25)...)
	var got []routeEvent
	parseRouteEvents(b, func(ev routeEvent) { got = append(got, ev) })
	want := []routeEvent{
		{add: true, proto: 186, key: routeKey{[4]byte{10, 0, 0, 0}, 25}},
		{add: false, proto: 2, key: routeKey{[4]byte{10, 0, 1, 128}, 25}},
	}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestPrefixesDistinct(t *testing.T) {
	seen := make(map[string]bool)
	for _, p := range prefixes(131072) {
		if seen[p.String()] || p != p.Masked() {
			t.Fatalf("prefix %s repeated or not masked", p)
		}
		seen[p.String()] = true
	}
}

// FuzzParseRouteEvents: no panic on any datagram; every event of a valid
// message round-trips.
func FuzzParseRouteEvents(f *testing.F) {
	f.Add(routeMsg(unix.RTM_NEWROUTE, 186, [4]byte{10, 1, 2, 0}, 24), uint8(186), uint8(24))
	f.Add([]byte{0xff, 0, 0, 0, 24, 0}, uint8(2), uint8(0))
	f.Fuzz(func(t *testing.T, b []byte, proto, bits uint8) {
		n := 0
		parseRouteEvents(b, func(routeEvent) { n++ })
		if n > len(b)/28 {
			t.Fatalf("%d events from %d bytes", n, len(b))
		}
		dst := [4]byte{10, proto, bits, 0}
		var got []routeEvent
		parseRouteEvents(routeMsg(unix.RTM_NEWROUTE, proto, dst, bits), func(ev routeEvent) { got = append(got, ev) })
		if len(got) != 1 || got[0] != (routeEvent{add: true, proto: proto, key: routeKey{dst, bits}}) {
			t.Fatalf("round trip: %+v", got)
		}
	})
}
