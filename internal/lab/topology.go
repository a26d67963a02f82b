package lab

import "net/netip"

// Node kinds.
const (
	KindRouter  = "router"
	KindGateway = "gateway"
	KindHost    = "host"
	KindSwitch  = "switch"
)

// Port is one interface of a node and the switch port it is cabled to.
type Port struct {
	Iface  string       // name inside the node
	Addr   netip.Prefix // address on it
	Switch string       // node name of the switch namespace
	Bridge string       // bridge in that namespace
	Peer   string       // switch-side veth name
	Index  int          // ifindex in the node, distinct from the peer's (see linkmon: same indexes delay carrier events)
}

// NodeSpec is one namespace of the topology.
type NodeSpec struct {
	Name    string
	Kind    string
	Site    int // 1 or 2; 0 for inet and switches' shared parts
	Ports   []Port
	Gateway netip.Addr // default route
	Bridges []Bridge   // switches and inet
	Forward bool
}

// Bridge is a bridge inside a switch or router namespace, optionally with
// an address (inet's WAN bridges).
type Bridge struct {
	Name string
	Addr netip.Prefix
}

// Site is one site's fixed addressing.
type Site struct {
	N       int
	WANVIP  netip.Prefix
	LANVIP  netip.Prefix
	LAN     netip.Prefix
	Router  netip.Addr // inet's address on this site's WAN
	Tunnel  netip.Prefix
	TunPeer netip.Addr
}

// sites is the lab's addressing, from DESIGN.md.
func sites() [2]Site {
	return [2]Site{
		{1, pfx("198.51.100.1/28"), pfx("192.168.1.1/24"), pfx("192.168.1.0/24"), addr("198.51.100.14"), pfx("172.16.0.1/30"), addr("172.16.0.2")},
		{2, pfx("203.0.113.1/28"), pfx("192.168.2.1/24"), pfx("192.168.2.0/24"), addr("203.0.113.14"), pfx("172.16.0.2/30"), addr("172.16.0.1")},
	}
}

// SiteInfo returns the addressing of site n (1 or 2).
func SiteInfo(n int) Site { return sites()[n-1] }

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func addr(s string) netip.Addr  { return netip.MustParseAddr(s) }

// Topology returns the lab's nodes in creation order: switches and the
// router first, so that cables can be plugged into them.
func Topology() []NodeSpec {
	nodes := []NodeSpec{
		{Name: "inet", Kind: KindRouter, Forward: true, Bridges: []Bridge{
			{"wan1", pfx("198.51.100.14/28")}, {"wan2", pfx("203.0.113.14/28")},
		}},
		{Name: "s1sw", Kind: KindSwitch, Site: 1, Bridges: []Bridge{{Name: "lan"}, {Name: "hb"}}},
		{Name: "s2sw", Kind: KindSwitch, Site: 2, Bridges: []Bridge{{Name: "lan"}, {Name: "hb"}}},
	}
	gw := func(site, n int, wan, lan, hb string) NodeSpec {
		name := "s" + itoa(site) + "gw" + itoa(n)
		sw := "s" + itoa(site) + "sw"
		return NodeSpec{
			Name: name, Kind: KindGateway, Site: site, Forward: true,
			Gateway: sites()[site-1].Router,
			Ports: []Port{
				{"wan0", pfx(wan), "inet", "wan" + itoa(site), name + "-wan0", 20},
				{"lan0", pfx(lan), sw, "lan", name + "-lan0", 21},
				{"hb0", pfx(hb), sw, "hb", name + "-hb0", 22},
			},
		}
	}
	host := func(site int, a string) NodeSpec {
		name := "s" + itoa(site) + "host"
		return NodeSpec{
			Name: name, Kind: KindHost, Site: site, Gateway: sites()[site-1].LANVIP.Addr(),
			Ports: []Port{{"eth0", pfx(a), "s" + itoa(site) + "sw", "lan", name + "-eth0", 20}},
		}
	}
	return append(nodes,
		gw(1, 1, "198.51.100.2/28", "192.168.1.2/24", "192.0.2.1/30"),
		gw(1, 2, "198.51.100.3/28", "192.168.1.3/24", "192.0.2.2/30"),
		gw(2, 1, "203.0.113.2/28", "192.168.2.2/24", "192.0.2.5/30"),
		gw(2, 2, "203.0.113.3/28", "192.168.2.3/24", "192.0.2.6/30"),
		host(1, "192.168.1.10/24"),
		host(2, "192.168.2.10/24"),
	)
}

// Spec returns the named node's spec.
func Spec(node string) (NodeSpec, bool) {
	for _, n := range Topology() {
		if n.Name == node {
			return n, true
		}
	}
	return NodeSpec{}, false
}

// NodeNames lists the nodes a user addresses (no switches).
func NodeNames() []string {
	var out []string
	for _, n := range Topology() {
		if n.Kind != KindSwitch {
			out = append(out, n.Name)
		}
	}
	return out
}

// Gateways lists the gateway nodes.
func Gateways() []string {
	var out []string
	for _, n := range Topology() {
		if n.Kind == KindGateway {
			out = append(out, n.Name)
		}
	}
	return out
}

func itoa(i int) string { return string(rune('0' + i)) }
