package statesync

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

func TestRoundTrip(t *testing.T) {
	m := Message{Node: 2, Epoch: 1764000000, Seq: 7, Entries: []Entry{
		{"gre-site2", 0x1201, 123456}, {"t", 0xffffffff, 1 << 40},
	}, Routes: []Route{
		{netip.MustParsePrefix("192.168.2.0/24"), []netip.Addr{netip.MustParseAddr("172.16.0.2")}},
		{netip.MustParsePrefix("0.0.0.0/0"), []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")}},
		{netip.MustParsePrefix("2001:db8::/32"), []netip.Addr{netip.MustParseAddr("fe80::1")}},
	}}
	b, err := Marshal(m, testKey)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Unmarshal(b, testKey)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestRejects(t *testing.T) {
	good, _ := Marshal(Message{Node: 1, Entries: []Entry{{"gre-site2", 0x1201, 9}}}, testKey)
	for i := range good {
		bad := append([]byte(nil), good...)
		bad[i] ^= 0x40
		if _, err := Unmarshal(bad, testKey); err == nil {
			t.Errorf("byte %d flipped: accepted", i)
		}
	}
	for n := range len(good) {
		if _, err := Unmarshal(good[:n], testKey); err == nil {
			t.Errorf("truncated to %d bytes: accepted", n)
		}
	}
	if _, err := Unmarshal(good, []byte("another key, 32 bytes long......")); !errors.Is(err, ErrAuth) {
		t.Errorf("wrong key: %v, want ErrAuth", err)
	}
	if _, err := Marshal(Message{Entries: []Entry{{"", 1, 1}}}, testKey); err == nil {
		t.Error("empty tunnel name marshalled")
	}
	v4, v6 := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("fe80::1")
	for _, r := range []Route{
		{Prefix: netip.MustParsePrefix("10.0.0.0/8")},
		{Prefix: netip.MustParsePrefix("10.0.0.0/8"), NextHops: []netip.Addr{v6}},
		{Prefix: netip.MustParsePrefix("10.0.0.0/8"), NextHops: make([]netip.Addr, maxHops+1)},
		{NextHops: []netip.Addr{v4}},
	} {
		if _, err := Marshal(Message{Routes: []Route{r}}, testKey); err == nil {
			t.Errorf("route %+v marshalled", r)
		}
	}
	if _, err := Marshal(Message{Routes: make([]Route, MaxRoutes+1)}, testKey); err == nil {
		t.Error("too many routes marshalled")
	}
}

func FuzzUnmarshal(f *testing.F) {
	good, _ := Marshal(Message{Node: 1, Epoch: 2, Seq: 3, Entries: []Entry{{"gre-site2", 0x1201, 9}}}, testKey)
	f.Add(good)
	withRoutes, _ := Marshal(Message{Node: 1, Routes: []Route{
		{netip.MustParsePrefix("192.168.2.0/24"), []netip.Addr{netip.MustParseAddr("172.16.0.2")}},
		{netip.MustParsePrefix("2001:db8::/48"), []netip.Addr{netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")}},
	}}, testKey)
	f.Add(withRoutes)
	f.Add([]byte("HVSS"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Unmarshal(b, testKey)
		if err != nil {
			return
		}
		// Whatever authenticates re-encodes to the same bytes.
		again, err := Marshal(m, testKey)
		if err != nil || string(again) != string(b) {
			t.Fatalf("accepted message does not re-encode: %v", err)
		}
	})
}

// FuzzParseRoutes reaches the route decoder directly (FuzzUnmarshal cannot
// forge the HMAC): no panic, and what parses re-encodes to the same bytes.
func FuzzParseRoutes(f *testing.F) {
	b, _ := appendRoutes(nil, []Route{
		{netip.MustParsePrefix("192.168.2.0/24"), []netip.Addr{netip.MustParseAddr("172.16.0.2")}},
		{netip.MustParsePrefix("2001:db8::/48"), []netip.Addr{netip.MustParseAddr("2001:db8::1")}},
	})
	f.Add(b)
	f.Add([]byte{0, 1, 4, 33, 10, 0, 0, 0, 1, 10, 0, 0, 1})
	f.Add([]byte{0, 1, 6, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		rs, rest, err := parseRoutes(b)
		if err != nil {
			return
		}
		again, err := appendRoutes(nil, rs)
		if err != nil || string(again) != string(b[:len(b)-len(rest)]) {
			t.Fatalf("parsed routes %v do not re-encode: %v", rs, err)
		}
	})
}
