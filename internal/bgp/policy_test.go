package bgp

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/havpn/havpn/internal/config"
	"github.com/havpn/havpn/internal/fib"
)

var (
	pfx = netip.MustParsePrefix
	adr = netip.MustParseAddr
)

func rule(a config.Action, p string, ge, le int) config.PrefixRule {
	return config.PrefixRule{Action: a, Prefix: pfx(p), GE: ge, LE: le}
}

func TestPrefixList(t *testing.T) {
	l := prefixList{name: "x", rules: []config.PrefixRule{
		rule(config.Deny, "10.1.0.0/16", 16, 24),
		rule(config.Permit, "10.0.0.0/8", 8, 32),
		rule(config.Permit, "192.168.1.0/24", 24, 24),
		rule(config.Permit, "198.51.100.1/32", 32, 32),
		rule(config.Permit, "2001:db8::/32", 48, 64),
	}}
	tests := []struct {
		p               string
		permit, exactly bool
	}{
		{"10.1.0.0/16", false, false},
		{"10.1.2.0/24", false, false},
		{"10.1.2.0/25", true, false}, // longer than the deny's le: the next rule permits
		{"10.2.0.0/16", true, false},
		{"10.0.0.0/8", true, false},
		{"11.0.0.0/8", false, false},
		{"192.168.1.0/24", true, true},
		{"192.168.1.0/25", false, false},
		{"198.51.100.1/32", true, true},
		{"2001:db8:1::/48", true, false},
		{"2001:db8::/32", false, false},
		{"2001:db8:1::/96", false, false},
		{"::/0", false, false},
	}
	for _, tc := range tests {
		if got := l.permits(pfx(tc.p)); got != tc.permit {
			t.Errorf("permits(%s) = %v, want %v", tc.p, got, tc.permit)
		}
		if got := l.permitsExactly(pfx(tc.p)); got != tc.exactly {
			t.Errorf("permitsExactly(%s) = %v, want %v", tc.p, got, tc.exactly)
		}
	}
}

// renderPolicies prints policies() as one line per set and statement.
func renderPolicies(t *testing.T, cfg *config.BGP) string {
	t.Helper()
	sets, imp, exp, err := policies(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, s := range sets {
		fmt.Fprintf(&b, "set %s %s", s.DefinedType, s.Name)
		for _, l := range s.List {
			b.WriteString(" " + l)
		}
		for _, p := range s.Prefixes {
			fmt.Fprintf(&b, " %s %d..%d", p.IpPrefix, p.MaskLengthMin, p.MaskLengthMax)
		}
		b.WriteString("\n")
	}
	for i, pol := range [2]string{"import", "export"} {
		stmts := imp.Statements
		if i == 1 {
			stmts = exp.Statements
		}
		for _, s := range stmts {
			fmt.Fprintf(&b, "%s %s:", pol, s.Name)
			if c := s.Conditions; c != nil {
				if c.NeighborSet != nil {
					b.WriteString(" neighbor " + c.NeighborSet.Name)
				}
				if c.PrefixSet != nil {
					b.WriteString(" prefix " + c.PrefixSet.Name)
				}
			}
			if a := s.Actions; a != nil {
				if a.Nexthop != nil && a.Nexthop.Self {
					b.WriteString(" -> next-hop-self")
				}
				fmt.Fprintf(&b, " -> %s", a.RouteAction)
			}
			b.WriteString("\n")
		}
	}
	return strings.TrimSpace(b.String())
}

func TestPolicies(t *testing.T) {
	cfg := &config.BGP{
		ASN: 65001, RouterID: adr("172.16.0.1"),
		PrefixLists: []config.PrefixList{
			{Name: "in", Rules: []config.PrefixRule{rule(config.Deny, "10.1.0.0/16", 16, 24), rule(config.Permit, "10.0.0.0/8", 8, 32)}},
			{Name: "out", Rules: []config.PrefixRule{rule(config.Permit, "192.168.1.0/24", 24, 24)}},
		},
		Neighbors: []config.Neighbor{
			{Address: adr("172.16.0.2"), RemoteAS: 65002, Import: "in", Export: "out"},
			{Address: adr("172.16.0.6"), RemoteAS: 65001, NextHopSelf: true, Export: "out"},
			{Address: adr("2001:db8::2"), RemoteAS: 65003},
		},
	}
	want := `set DEFINED_TYPE_NEIGHBOR nbr-172.16.0.2 172.16.0.2/32
set DEFINED_TYPE_PREFIX pl-in-0 10.1.0.0/16 16..24
set DEFINED_TYPE_PREFIX pl-in-1 10.0.0.0/8 8..32
set DEFINED_TYPE_PREFIX pl-out-0 192.168.1.0/24 24..24
set DEFINED_TYPE_NEIGHBOR nbr-172.16.0.6 172.16.0.6/32
set DEFINED_TYPE_NEIGHBOR nbr-2001:db8::2 2001:db8::2/128
import havpn-import-172.16.0.2-in-0: neighbor nbr-172.16.0.2 prefix pl-in-0 -> ROUTE_ACTION_REJECT
import havpn-import-172.16.0.2-in-1: neighbor nbr-172.16.0.2 prefix pl-in-1 -> ROUTE_ACTION_ACCEPT
import havpn-import-172.16.0.2-deny: neighbor nbr-172.16.0.2 -> ROUTE_ACTION_REJECT
export havpn-export-172.16.0.2-out-0: neighbor nbr-172.16.0.2 prefix pl-out-0 -> ROUTE_ACTION_ACCEPT
export havpn-export-172.16.0.2-deny: neighbor nbr-172.16.0.2 -> ROUTE_ACTION_REJECT
export nhs-172.16.0.6: neighbor nbr-172.16.0.6 -> next-hop-self -> ROUTE_ACTION_UNSPECIFIED
export havpn-export-172.16.0.6-out-0: neighbor nbr-172.16.0.6 prefix pl-out-0 -> ROUTE_ACTION_ACCEPT
export havpn-export-172.16.0.6-deny: neighbor nbr-172.16.0.6 -> ROUTE_ACTION_REJECT`
	if got := renderPolicies(t, cfg); got != want {
		t.Errorf("policies:\n%s\nwant:\n%s", got, want)
	}
	cfg.Neighbors[0].Import = "missing"
	if _, _, _, err := policies(cfg); err == nil || !strings.Contains(err.Error(), "172.16.0.2") {
		t.Errorf("unknown list: %v", err)
	}
}

func TestSelectRedistributed(t *testing.T) {
	route := func(p string, proto uint8, gw string) fib.Route {
		r := fib.Route{Prefix: pfx(p), Table: 254, Protocol: proto}
		if gw != "" {
			r.NextHops = []fib.NextHop{{Gateway: adr(gw)}}
		}
		return r
	}
	conn := func(p string) candidate { return candidate{route(p, 2, ""), config.RedistConnected} }
	static := func(p string) candidate { return candidate{route(p, 4, "192.168.1.254"), config.RedistStatic} }
	kern := func(p string) candidate { return candidate{route(p, 3, "192.168.1.254"), config.RedistKernel} }
	all := []candidate{
		conn("192.168.1.0/24"), conn("172.16.0.0/30"), conn("172.16.0.6/32"), conn("198.51.100.0/28"),
		conn("fe80::/64"), conn("2001:db8:1::/64"), conn("127.0.0.0/8"),
		{route("10.99.0.0/16", 2, "192.168.1.254"), config.RedistConnected}, // proto kernel with a gateway
		static("10.50.0.0/16"), static("198.51.100.1/32"), static("10.200.0.9/32"), static("0.0.0.0/0"), static("224.0.0.0/4"),
		kern("10.60.0.0/16"), kern("::/0"),
		{route("10.70.0.0/16", 186, "192.168.1.254"), config.RedistKernel}, // ours: never
	}
	addrs := []netip.Prefix{pfx("192.168.1.2/24"), pfx("198.51.100.1/28"), pfx("172.16.0.5/32")}
	lists := newPrefixLists([]config.PrefixList{
		{Name: "lan", Rules: []config.PrefixRule{rule(config.Permit, "192.168.0.0/16", 16, 32)}},
		{Name: "hosts", Rules: []config.PrefixRule{
			rule(config.Permit, "198.51.100.1/32", 32, 32), rule(config.Permit, "0.0.0.0/0", 0, 0), rule(config.Permit, "0.0.0.0/0", 0, 32),
		}},
	})
	tests := []struct {
		name   string
		redist []config.Redistribute
		nets   []string
		want   string
	}{
		{"connected, no list", []config.Redistribute{{Source: config.RedistConnected}}, nil,
			"172.16.0.0/30 192.168.1.0/24 198.51.100.0/28 2001:db8:1::/64"},
		{"connected through a list, network not twice", []config.Redistribute{{Source: config.RedistConnected, PrefixList: "lan"}}, []string{"192.168.1.0/24"},
			""},
		{"static: host route of a box address and default held back", []config.Redistribute{{Source: config.RedistStatic}}, nil,
			"10.50.0.0/16 10.200.0.9/32"},
		{"static: named exactly", []config.Redistribute{{Source: config.RedistStatic, PrefixList: "hosts"}}, nil,
			"0.0.0.0/0 10.50.0.0/16 10.200.0.9/32 198.51.100.1/32"},
		{"kernel", []config.Redistribute{{Source: config.RedistKernel}}, nil,
			"10.60.0.0/16"},
		{"all", []config.Redistribute{{Source: config.RedistKernel}, {Source: config.RedistStatic}, {Source: config.RedistConnected}}, nil,
			"10.50.0.0/16 10.60.0.0/16 10.200.0.9/32 172.16.0.0/30 192.168.1.0/24 198.51.100.0/28 2001:db8:1::/64"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &config.BGP{Redistribute: tc.redist, FIB: config.FIB{Table: 254, Protocol: 186}}
			for _, n := range tc.nets {
				cfg.Networks = append(cfg.Networks, pfx(n))
			}
			var got []string
			for _, p := range selectRedistributed(cfg, lists, all, addrs) {
				got = append(got, p.String())
			}
			if s := strings.Join(got, " "); s != tc.want {
				t.Errorf("got  %s\nwant %s", s, tc.want)
			}
		})
	}
}
