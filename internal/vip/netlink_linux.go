package vip

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/havpn/havpn/internal/netnsutil"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"
	"github.com/vishvananda/netlink"
	"golang.org/x/net/bpf"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// Netlink is the Linux AddrManager and Announcer: rtnetlink for addresses,
// an AF_PACKET socket for gratuitous ARP and an ICMPv6 socket (mdlayher/ndp)
// for unsolicited NA. It works in the caller's network namespace or in a
// named one. Safe for concurrent use.
type Netlink struct {
	ns string
	// mu serialises requests on h.
	mu sync.Mutex
	h  *netlink.Handle
}

// NewNetlink returns a backend for the named network namespace, or for the
// process's current one when netns is "". Close it when done.
func NewNetlink(netns string) (*Netlink, error) {
	var (
		h   *netlink.Handle
		err error
	)
	if netns == "" {
		h, err = netlink.NewHandle(unix.NETLINK_ROUTE)
	} else {
		h, err = netnsutil.Handle(netns)
	}
	if err != nil {
		return nil, fmt.Errorf("opening vip netlink backend: %w", err)
	}
	return &Netlink{ns: netns, h: h}, nil
}

// Close releases the netlink handle. It is idempotent.
func (n *Netlink) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.h != nil {
		n.h.Close()
		n.h = nil
	}
	return nil
}

func toNetlinkAddr(p netip.Prefix) *netlink.Addr {
	a := p.Addr()
	bits := 32
	if a.Is6() {
		bits = 128
	}
	return &netlink.Addr{IPNet: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(p.Bits(), bits)}}
}

// ReplaceAddr implements AddrManager.
func (n *Netlink) ReplaceAddr(iface string, p netip.Prefix, validSec, preferredSec uint32) error {
	if validSec == 0 || preferredSec == 0 {
		return fmt.Errorf("replacing %s on %s: lifetimes must be >= 1 s", p, iface)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.h == nil {
		return fmt.Errorf("replacing %s on %s: %w", p, iface, net.ErrClosed)
	}
	l, err := n.h.LinkByName(iface)
	if err != nil {
		return fmt.Errorf("looking up %s: %w", iface, err)
	}
	a := toNetlinkAddr(p)
	a.ValidLft, a.PreferedLft = int(validSec), int(preferredSec)
	if p.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	if err := n.h.AddrReplace(l, a); err != nil {
		return fmt.Errorf("replacing %s on %s: %w", p, iface, err)
	}
	return nil
}

// DelAddr implements AddrManager.
func (n *Netlink) DelAddr(iface string, p netip.Prefix) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.h == nil {
		return fmt.Errorf("deleting %s from %s: %w", p, iface, net.ErrClosed)
	}
	l, err := n.h.LinkByName(iface)
	if err != nil {
		if _, ok := errors.AsType[netlink.LinkNotFoundError](err); ok {
			return nil
		}
		return fmt.Errorf("looking up %s: %w", iface, err)
	}
	err = n.h.AddrDel(l, toNetlinkAddr(p))
	if err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("deleting %s from %s: %w", p, iface, err)
	}
	return nil
}

// HasAddr implements AddrManager.
func (n *Netlink) HasAddr(iface string, p netip.Prefix) (bool, error) {
	a, err := n.lookup(iface, p)
	return a != nil, err
}

// Lifetimes returns the kernel's remaining valid and preferred lifetimes of
// p on iface, in seconds, and whether p is there at all.
func (n *Netlink) Lifetimes(iface string, p netip.Prefix) (valid, preferred uint32, ok bool, err error) {
	a, err := n.lookup(iface, p)
	if a == nil || err != nil {
		return 0, 0, false, err
	}
	return uint32(a.ValidLft), uint32(a.PreferedLft), true, nil
}

func (n *Netlink) lookup(iface string, p netip.Prefix) (*netlink.Addr, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.h == nil {
		return nil, fmt.Errorf("listing addresses of %s: %w", iface, net.ErrClosed)
	}
	l, err := n.h.LinkByName(iface)
	if err != nil {
		if _, ok := errors.AsType[netlink.LinkNotFoundError](err); ok {
			return nil, nil
		}
		return nil, fmt.Errorf("looking up %s: %w", iface, err)
	}
	family := netlink.FAMILY_V4
	if p.Addr().Is6() {
		family = netlink.FAMILY_V6
	}
	var addrs []netlink.Addr
	// A dump can be interrupted by a concurrent change (DAD flips, other
	// VIPs); retry a few times (LIBS.md: ErrDumpInterrupted).
	for range 5 {
		addrs, err = n.h.AddrList(l, family)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("listing addresses of %s: %w", iface, err)
	}
	for i := range addrs {
		ip, ok := netip.AddrFromSlice(addrs[i].IP)
		if !ok {
			continue
		}
		ones, _ := addrs[i].Mask.Size()
		if ip.Unmap() == p.Addr() && ones == p.Bits() {
			return &addrs[i], nil
		}
	}
	return nil, nil
}

// Open implements Announcer. The interface is resolved and the socket
// opened inside the backend's namespace; Send may then run anywhere.
func (n *Netlink) Open(iface string, addr netip.Addr) (Sender, error) {
	var s Sender
	open := func() error {
		ifi, err := net.InterfaceByName(iface)
		if err != nil {
			return fmt.Errorf("looking up %s: %w", iface, err)
		}
		if addr.Is4() {
			s, err = openGARP(ifi, addr)
		} else {
			s, err = openNA(ifi, addr)
		}
		return err
	}
	var err error
	if n.ns == "" {
		err = open()
	} else {
		err = netnsutil.Do(n.ns, open)
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// dropAll is a socket filter that accepts nothing: the announce sockets only
// send, and should not queue what they would otherwise receive.
func dropAll() ([]bpf.RawInstruction, error) {
	return bpf.Assemble([]bpf.Instruction{bpf.RetConstant{Val: 0}})
}

type garpSender struct {
	c       *packet.Conn
	payload []byte
	dst     *packet.Addr
}

func openGARP(ifi *net.Interface, ip netip.Addr) (*garpSender, error) {
	payload, err := GARPPayload(ifi.HardwareAddr, ip)
	if err != nil {
		return nil, err
	}
	filter, err := dropAll()
	if err != nil {
		return nil, fmt.Errorf("assembling socket filter: %w", err)
	}
	c, err := packet.Listen(ifi, packet.Datagram, int(ethernet.EtherTypeARP), &packet.Config{Filter: filter})
	if err != nil {
		return nil, fmt.Errorf("opening arp socket on %s: %w", ifi.Name, err)
	}
	return &garpSender{c: c, payload: payload, dst: &packet.Addr{HardwareAddr: ethernet.Broadcast}}, nil
}

func (g *garpSender) Send() error {
	if _, err := g.c.WriteTo(g.payload, g.dst); err != nil {
		return fmt.Errorf("sending gratuitous arp: %w", err)
	}
	return nil
}

func (g *garpSender) Close() error { return g.c.Close() }

type naSender struct {
	c   *ndp.Conn
	msg ndp.Message
}

func openNA(ifi *net.Interface, ip netip.Addr) (*naSender, error) {
	msg, err := UnsolicitedNA(ifi.HardwareAddr, ip)
	if err != nil {
		return nil, err
	}
	// Source the advertisement from the VIP itself: it is added without
	// DAD, so it is usable at once, unlike a link-local address that may
	// still be tentative on a freshly-up interface.
	c, _, err := ndp.Listen(ifi, ndp.Addr(ip.WithZone("").String()))
	if err != nil {
		return nil, fmt.Errorf("opening icmpv6 socket on %s: %w", ifi.Name, err)
	}
	var f ipv6.ICMPFilter
	f.SetAll(true)
	if err := c.SetICMPFilter(&f); err != nil {
		c.Close()
		return nil, fmt.Errorf("filtering icmpv6 socket on %s: %w", ifi.Name, err)
	}
	return &naSender{c: c, msg: msg}, nil
}

func (s *naSender) Send() error {
	if err := s.c.WriteTo(s.msg, nil, allNodes()); err != nil {
		return fmt.Errorf("sending neighbor advertisement: %w", err)
	}
	return nil
}

func (s *naSender) Close() error { return s.c.Close() }
