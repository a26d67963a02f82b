package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/havpn/havpn/internal/netnsutil"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// DefaultEchoPort is the UDP port of the echo responder in every node.
const DefaultEchoPort = 7777

// Options configure Up.
type Options struct {
	Prefix  string // namespace prefix; DefaultPrefix if empty
	Sites   int    // only 2 is supported
	Daemons bool   // start one havpn daemon per gateway
	// Bin is the havpn binary that runs the echo responders and daemons;
	// the running executable if empty.
	Bin string
	// Daemon shapes the daemons' configs (keying, routing, timers).
	Daemon DaemonOptions
}

// ErrNotRoot is returned when the lab is used without root.
var ErrNotRoot = errors.New("the lab needs root (network namespaces, veth, bridges); run it as root")

var prefixRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,14}$`)

func checkPrefix(p string) error {
	if !prefixRE.MatchString(p) {
		return fmt.Errorf("prefix %q: want 1-15 of [a-z0-9-], starting with a letter or digit", p)
	}
	return nil
}

func requireRoot() error {
	if os.Geteuid() != 0 {
		return ErrNotRoot
	}
	return nil
}

// Up builds the lab. On failure it removes what it made and returns the
// error. A lab with the same prefix already up is an error.
func Up(ctx context.Context, o Options) (*State, error) {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.Sites == 0 {
		o.Sites = 2
	}
	d, err := o.Daemon.withDefaults()
	if err != nil {
		return nil, err
	}
	o.Daemon = d
	if err := requireRoot(); err != nil {
		return nil, err
	}
	if err := checkPrefix(o.Prefix); err != nil {
		return nil, err
	}
	if o.Sites != 2 {
		return nil, fmt.Errorf("--sites %d: only 2 sites are supported so far", o.Sites)
	}
	if o.Bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("finding the havpn binary: %w", err)
		}
		o.Bin = exe
	}
	if err := checkFree(o.Prefix); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(Dir(o.Prefix), 0o700); err != nil {
		return nil, fmt.Errorf("creating lab state directory: %w", err)
	}
	st := &State{Prefix: o.Prefix, Created: time.Now(), Bin: o.Bin, Daemons: o.Daemons, Daemon: o.Daemon, Nodes: map[string]*NodeState{}}
	if err := build(ctx, st); err != nil {
		return nil, errors.Join(fmt.Errorf("lab up: %w", err), Down(o.Prefix))
	}
	return st, nil
}

// checkFree refuses a prefix that has a lab (state file or namespaces).
func checkFree(prefix string) error {
	if _, err := os.Stat(statePath(prefix)); err == nil {
		return fmt.Errorf("a lab with prefix %q is already up (havpn lab down --prefix %s)", prefix, prefix)
	}
	if ns := namespacesWithPrefix(prefix); len(ns) > 0 {
		return fmt.Errorf("namespaces with prefix %q exist (%s): a lab is up or was left behind; run havpn lab down --prefix %s",
			prefix, strings.Join(ns, ", "), prefix)
	}
	return nil
}

func build(ctx context.Context, st *State) error {
	nodes := Topology()
	for _, n := range nodes {
		if err := createNode(st, n); err != nil {
			return err
		}
	}
	for _, n := range nodes {
		for _, p := range n.Ports {
			if err := cable(st.Prefix, n, p); err != nil {
				return err
			}
		}
		if err := routes(st.Prefix, n); err != nil {
			return err
		}
	}
	for _, n := range nodes {
		if n.Kind == KindSwitch {
			continue
		}
		if err := startEcho(st, n.Name); err != nil {
			return err
		}
	}
	for _, n := range NodeNames() {
		if err := waitEcho(ctx, st.Nodes[n].NS); err != nil {
			return fmt.Errorf("%s: echo responder: %w", n, err)
		}
	}
	if st.Daemons {
		for _, gw := range Gateways() {
			if err := startDaemon(st, gw); err != nil {
				return err
			}
		}
		if err := waitDaemons(ctx, st, 15*time.Second); err != nil {
			return err
		}
	}
	st.Complete = true
	return st.save()
}

// createNode makes the namespace with lo up, forwarding and bridges.
func createNode(st *State, n NodeSpec) error {
	ns := st.Prefix + n.Name
	if err := netnsutil.Create(ns); err != nil {
		return err
	}
	st.Namespaces = append(st.Namespaces, ns)
	st.Nodes[n.Name] = &NodeState{NS: ns}
	if err := st.save(); err != nil {
		return err
	}
	h, err := netnsutil.Handle(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("%s: lo: %w", n.Name, err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("%s: setting lo up: %w", n.Name, err)
	}
	if err := sysctls(ns, n.Forward); err != nil {
		return fmt.Errorf("%s: %w", n.Name, err)
	}
	for _, b := range n.Bridges {
		if err := addBridge(h, b); err != nil {
			return fmt.Errorf("%s: bridge %s: %w", n.Name, b.Name, err)
		}
	}
	return nil
}

// sysctls sets forwarding and keeps IPv6 DAD from delaying the lab.
func sysctls(ns string, forward bool) error {
	return netnsutil.Do(ns, func() error {
		v := "0"
		if forward {
			v = "1"
		}
		for _, kv := range [][2]string{
			{"net/ipv4/ip_forward", v},
			{"net/ipv6/conf/all/forwarding", v},
			{"net/ipv6/conf/default/accept_dad", "0"},
			{"net/ipv4/conf/all/rp_filter", "0"},
			{"net/ipv4/conf/default/rp_filter", "0"},
		} {
			if err := os.WriteFile(filepath.Join("/proc/sys", kv[0]), []byte(kv[1]), 0); err != nil {
				return fmt.Errorf("sysctl %s: %w", kv[0], err)
			}
		}
		return nil
	})
}

func addBridge(h *netlink.Handle, b Bridge) error {
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: b.Name}}
	if err := h.LinkAdd(br); err != nil {
		return err
	}
	if b.Addr.IsValid() {
		if err := h.AddrAdd(br, &netlink.Addr{IPNet: ipnet(b.Addr)}); err != nil {
			return fmt.Errorf("address %s: %w", b.Addr, err)
		}
	}
	return h.LinkSetUp(br)
}

// cable plugs a node's interface into its switch: a veth made in the node
// with its peer in the switch namespace, enslaved to the bridge.
func cable(prefix string, n NodeSpec, p Port) error {
	what := fmt.Sprintf("%s %s -> %s/%s", n.Name, p.Iface, p.Switch, p.Bridge)
	swNS, err := netns.GetFromName(prefix + p.Switch)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer swNS.Close()
	h, err := netnsutil.Handle(prefix + n.Name)
	if err != nil {
		return err
	}
	defer h.Close()
	v := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: p.Iface, Index: p.Index},
		PeerName:      p.Peer,
		PeerNamespace: netlink.NsFd(swNS),
	}
	if err := h.LinkAdd(v); err != nil {
		return fmt.Errorf("%s: creating veth: %w", what, err)
	}
	link, err := h.LinkByName(p.Iface)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := h.AddrAdd(link, &netlink.Addr{IPNet: ipnet(p.Addr)}); err != nil {
		return fmt.Errorf("%s: address %s: %w", what, p.Addr, err)
	}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	sh, err := netnsutil.Handle(prefix + p.Switch)
	if err != nil {
		return err
	}
	defer sh.Close()
	peer, err := sh.LinkByName(p.Peer)
	if err != nil {
		return fmt.Errorf("%s: switch side: %w", what, err)
	}
	br, err := sh.LinkByName(p.Bridge)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := sh.LinkSetMaster(peer, br); err != nil {
		return fmt.Errorf("%s: enslaving to bridge: %w", what, err)
	}
	if err := sh.LinkSetUp(peer); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

func routes(prefix string, n NodeSpec) error {
	if !n.Gateway.IsValid() {
		return nil
	}
	h, err := netnsutil.Handle(prefix + n.Name)
	if err != nil {
		return err
	}
	defer h.Close()
	// The LAN VIP is not up until a gateway holds it, so the host's route
	// is added as onlink.
	r := &netlink.Route{Gw: n.Gateway.AsSlice(), Flags: int(netlink.FLAG_ONLINK)}
	link, err := h.LinkByName(n.Ports[0].Iface)
	if err != nil {
		return err
	}
	if n.Kind == KindGateway {
		r.Flags = 0
	}
	r.LinkIndex = link.Attrs().Index
	if err := h.RouteAdd(r); err != nil {
		return fmt.Errorf("%s: default route via %s: %w", n.Name, n.Gateway, err)
	}
	return nil
}

func ipnet(p netip.Prefix) *net.IPNet {
	bits := 32
	if !p.Addr().Is4() {
		bits = 128
	}
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), bits)}
}
