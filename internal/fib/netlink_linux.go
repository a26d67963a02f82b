package fib

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

const (
	// batchBytes is how many bytes of requests go into one sendmsg. The
	// kernel handles the messages of one datagram one after the other in
	// the sender's context. They carry no NLM_F_ACK, so only failures are
	// answered; a final NLMSG_NOOP with NLM_F_ACK is answered after all of
	// them and ends the batch. (An ack per request would cost one recvmsg
	// per route: every netlink reply is its own datagram.)
	batchBytes = 128 << 10
	// rcvBuf must hold the replies to one batch: in the worst case an
	// error per request (36 bytes with NETLINK_CAP_ACK, plus the extended
	// ack message) in its own skb.
	rcvBuf = 8 << 20
	sndBuf = 1 << 20
	// dumpRetries bounds the retries of a dump interrupted by a
	// concurrent change (NLM_F_DUMP_INTR).
	dumpRetries  = 8
	rtprotKernel = 2
	mainTable    = 254
)

// NetlinkOptions configure NewNetlink.
type NetlinkOptions struct {
	// NetNS names the network namespace (as in `ip netns`) whose routing
	// table to use; "" means the caller's.
	NetNS string
}

// Netlink is the Linux Kernel: batched route writes over one netlink
// socket, dumps and subscriptions through vishvananda/netlink. It is safe
// for concurrent use; Apply calls are serialized.
type Netlink struct {
	ns netns.NsHandle // namespace handle, or netns.None()
	h  *netlink.Handle

	mu     sync.Mutex // guards the fields below and serializes use of sock
	sock   *nl.NetlinkSocket
	seq    uint32
	buf    []byte
	rbuf   []byte
	idx    []int // op index by seq-base within one batch
	closed bool
}

// NewNetlink opens the netlink sockets. Close releases them.
func NewNetlink(o NetlinkOptions) (*Netlink, error) {
	k := &Netlink{ns: netns.None()}
	if o.NetNS != "" {
		ns, err := netns.GetFromName(o.NetNS)
		if err != nil {
			return nil, fmt.Errorf("opening namespace %s: %w", o.NetNS, err)
		}
		k.ns = ns
	}
	h, err := netlink.NewHandleAt(k.ns, unix.NETLINK_ROUTE)
	if err != nil {
		k.closeNS()
		return nil, fmt.Errorf("opening netlink handle: %w", err)
	}
	k.h = h
	// Let the kernel filter dumps by table and protocol (a dump of our
	// protocol's routes must not copy the whole table to userspace).
	if err := h.SetStrictCheck(true); err != nil {
		k.Close()
		return nil, fmt.Errorf("enabling netlink strict checking: %w", err)
	}
	s, err := nl.GetNetlinkSocketAt(k.ns, netns.None(), unix.NETLINK_ROUTE)
	if err != nil {
		k.Close()
		return nil, fmt.Errorf("opening netlink route socket: %w", err)
	}
	k.sock = s
	fd := s.GetFd()
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvBuf); err != nil {
		// Not privileged: take what rmem_max allows.
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvBuf)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, sndBuf); err != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, sndBuf)
	}
	// Acks without the echoed request, and with the kernel's error text.
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1)
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_EXT_ACK, 1)
	tv := unix.Timeval{Sec: 10}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		k.Close()
		return nil, fmt.Errorf("setting netlink receive timeout: %w", err)
	}
	k.rbuf = make([]byte, 256<<10)
	return k, nil
}

func (k *Netlink) closeNS() {
	if k.ns.IsOpen() {
		k.ns.Close()
		k.ns = netns.None()
	}
}

// Close releases the sockets. It is idempotent; Apply after Close fails
// with ErrClosed.
func (k *Netlink) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return nil
	}
	k.closed = true
	if k.sock != nil {
		k.sock.Close()
	}
	if k.h != nil {
		k.h.Close()
	}
	k.closeNS()
	return nil
}

// Routes implements Kernel.
func (k *Netlink) Routes(table uint32, proto uint8) ([]Route, error) {
	var out []Route
	err := k.dumpRoutes(table, proto, func(r netlink.Route) {
		rt, ok := fromNetlink(r)
		if ok {
			out = append(out, rt)
		}
	}, func() { out = out[:0] })
	if err != nil {
		return nil, fmt.Errorf("listing routes of protocol %d in table %d: %w", proto, table, err)
	}
	return out, nil
}

// dumpRoutes runs a filtered route dump, restarting it (after reset) when
// it was interrupted by a concurrent change.
func (k *Netlink) dumpRoutes(table uint32, proto uint8, fn func(netlink.Route), reset func()) error {
	filter := &netlink.Route{Table: int(table), Protocol: netlink.RouteProtocol(proto)}
	var err error
	for range dumpRetries {
		reset()
		err = k.h.RouteListFilteredIter(netlink.FAMILY_ALL, filter, netlink.RT_FILTER_TABLE|netlink.RT_FILTER_PROTOCOL,
			func(r netlink.Route) bool { fn(r); return true })
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return err
		}
	}
	return err
}

func prefixOf(n *net.IPNet, fam int) (netip.Prefix, bool) {
	if n == nil {
		switch fam {
		case netlink.FAMILY_V4:
			return netip.PrefixFrom(netip.IPv4Unspecified(), 0), true
		case netlink.FAMILY_V6:
			return netip.PrefixFrom(netip.IPv6Unspecified(), 0), true
		}
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	ones, bits := n.Mask.Size()
	if bits != a.BitLen() {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, ones).Masked(), true
}

func addrOf(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap()
}

func fromNetlink(r netlink.Route) (Route, bool) {
	p, ok := prefixOf(r.Dst, r.Family)
	if !ok {
		return Route{}, false
	}
	rt := Route{Prefix: p, Table: uint32(r.Table), Protocol: uint8(r.Protocol), Metric: uint32(r.Priority)}
	if len(r.MultiPath) > 0 {
		for _, h := range r.MultiPath {
			rt.NextHops = append(rt.NextHops, NextHop{Gateway: addrOf(h.Gw), Link: h.LinkIndex})
		}
	} else if r.Gw != nil {
		rt.NextHops = []NextHop{{Gateway: addrOf(r.Gw), Link: r.LinkIndex}}
	}
	rt.NextHops = SortNextHops(rt.NextHops)
	return rt, true
}

// Connected implements Kernel.
func (k *Netlink) Connected(table uint32) (map[netip.Prefix]struct{}, error) {
	set := make(map[netip.Prefix]struct{})
	tables := []uint32{mainTable}
	if table != mainTable {
		tables = append(tables, table)
	}
	for _, t := range tables {
		var got []netip.Prefix
		err := k.dumpRoutes(t, rtprotKernel, func(r netlink.Route) {
			// proto kernel without a gateway: an interface route (IPv4
			// scope link, IPv6 scope universe).
			if r.Gw != nil || len(r.MultiPath) > 0 || r.Type != unix.RTN_UNICAST {
				return
			}
			if p, ok := prefixOf(r.Dst, r.Family); ok {
				got = append(got, p)
			}
		}, func() { got = got[:0] })
		if err != nil {
			return nil, fmt.Errorf("listing connected routes in table %d: %w", t, err)
		}
		for _, p := range got {
			set[p] = struct{}{}
		}
	}
	var addrs []netlink.Addr
	var err error
	for range dumpRetries {
		addrs, err = k.h.AddrList(nil, netlink.FAMILY_ALL)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("listing addresses: %w", err)
	}
	for _, a := range addrs {
		if a.IPNet == nil {
			continue
		}
		ip := addrOf(a.IP)
		if !ip.IsValid() {
			continue
		}
		ones, _ := a.Mask.Size()
		set[netip.PrefixFrom(ip, ones).Masked()] = struct{}{}
		set[netip.PrefixFrom(ip, ip.BitLen())] = struct{}{}
		if a.Peer != nil {
			if p, ok := prefixOf(a.Peer, 0); ok {
				set[p] = struct{}{}
			}
		}
	}
	return set, nil
}

// Addrs lists the addresses on the box with their prefix lengths (IPv4
// and IPv6, every interface).
func (k *Netlink) Addrs() ([]netip.Prefix, error) {
	var addrs []netlink.Addr
	var err error
	for range dumpRetries {
		addrs, err = k.h.AddrList(nil, netlink.FAMILY_ALL)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("listing addresses: %w", err)
	}
	out := make([]netip.Prefix, 0, len(addrs))
	for _, a := range addrs {
		if a.IPNet == nil {
			continue
		}
		ip := addrOf(a.IP)
		if !ip.IsValid() {
			continue
		}
		ones, _ := a.Mask.Size()
		out = append(out, netip.PrefixFrom(ip, ones))
	}
	return out, nil
}

// WatchRoutes calls changed (which must not block) on every route change
// except those of protocol ignore, and on every address change, until ctx
// is done; it subscribes again when a subscription breaks. It returns an
// error only when it cannot subscribe at all.
func (k *Netlink) WatchRoutes(ctx context.Context, ignore uint8, changed func()) error {
	var nsp *netns.NsHandle
	if k.ns.IsOpen() {
		nsp = &k.ns
	}
	for first := true; ; first = false {
		done := make(chan struct{})
		routeCh := make(chan netlink.RouteUpdate, 1024)
		addrCh := make(chan netlink.AddrUpdate, 256)
		err := netlink.RouteSubscribeWithOptions(routeCh, done, netlink.RouteSubscribeOptions{
			Namespace: nsp, ReceiveBufferSize: 4 << 20, ReceiveBufferForceSize: true,
		})
		if err == nil {
			err = netlink.AddrSubscribeWithOptions(addrCh, done, netlink.AddrSubscribeOptions{
				Namespace: nsp, ReceiveBufferSize: 1 << 20, ReceiveBufferForceSize: true,
			})
		}
		if err != nil {
			close(done)
			if first {
				return fmt.Errorf("subscribing to route and address changes: %w", err)
			}
		} else {
			if !first {
				changed()
			}
		loop:
			for {
				select {
				case <-ctx.Done():
					break loop
				case u, ok := <-routeCh:
					if !ok {
						break loop
					}
					if uint8(u.Protocol) != ignore {
						changed()
					}
				case _, ok := <-addrCh:
					if !ok {
						break loop
					}
					changed()
				}
			}
			close(done)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

// WatchLinkDown calls down (which must not block for long) with the
// prefixes of an interface (its addresses' networks and point-to-point
// peers) each time it goes down: carrier lost, set down or deleted. It runs
// until ctx is done and returns nil then, or an error when it cannot
// subscribe. The prefixes are those last seen while the interface was up
// (IPv6 addresses are flushed when a link is set down).
func (k *Netlink) WatchLinkDown(ctx context.Context, down func(prefixes []netip.Prefix)) error {
	var nsp *netns.NsHandle
	if k.ns.IsOpen() {
		nsp = &k.ns
	}
	running := make(map[int]bool)
	prefixes := make(map[int][]netip.Prefix)
	refresh := func(idx int) {
		l, err := k.h.LinkByIndex(idx)
		if err != nil {
			return
		}
		addrs, err := k.h.AddrList(l, netlink.FAMILY_ALL)
		if err != nil {
			return
		}
		var ps []netip.Prefix
		for _, a := range addrs {
			if a.IPNet != nil {
				if ip := addrOf(a.IP); ip.IsValid() {
					ones, _ := a.Mask.Size()
					ps = append(ps, netip.PrefixFrom(ip, ones).Masked())
				}
			}
			if a.Peer != nil {
				if p, ok := prefixOf(a.Peer, 0); ok {
					ps = append(ps, p)
				}
			}
		}
		if len(ps) > 0 {
			prefixes[idx] = ps
		}
	}
	for first := true; ; first = false {
		done := make(chan struct{})
		linkCh := make(chan netlink.LinkUpdate, 256)
		addrCh := make(chan netlink.AddrUpdate, 256)
		err := netlink.LinkSubscribeWithOptions(linkCh, done, netlink.LinkSubscribeOptions{
			Namespace: nsp, ListExisting: true, ReceiveBufferSize: 1 << 20, ReceiveBufferForceSize: true,
		})
		if err == nil {
			err = netlink.AddrSubscribeWithOptions(addrCh, done, netlink.AddrSubscribeOptions{
				Namespace: nsp, ReceiveBufferSize: 1 << 20, ReceiveBufferForceSize: true,
			})
		}
		if err != nil {
			close(done)
			if first {
				return fmt.Errorf("subscribing to link changes: %w", err)
			}
		} else {
		loop:
			for {
				select {
				case <-ctx.Done():
					break loop
				case u, ok := <-linkCh:
					if !ok {
						break loop
					}
					idx := int(u.Index)
					up := u.Header.Type != unix.RTM_DELLINK && u.Flags&unix.IFF_UP != 0 && u.Flags&unix.IFF_RUNNING != 0
					if up {
						refresh(idx)
					} else if running[idx] {
						if ps := prefixes[idx]; len(ps) > 0 {
							down(ps)
						}
					}
					running[idx] = up
					if u.Header.Type == unix.RTM_DELLINK {
						delete(running, idx)
						delete(prefixes, idx)
					}
				case u, ok := <-addrCh:
					if !ok {
						break loop
					}
					if running[u.LinkIndex] {
						refresh(u.LinkIndex)
					}
				}
			}
			close(done)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

// Watch implements Kernel: it subscribes to address and link changes, and
// subscribes again (reporting a change) when a subscription breaks, e.g. on
// ENOBUFS when events were lost.
func (k *Netlink) Watch(ctx context.Context, changed func()) error {
	var nsp *netns.NsHandle
	if k.ns.IsOpen() {
		nsp = &k.ns
	}
	for first := true; ; first = false {
		done := make(chan struct{})
		addrCh := make(chan netlink.AddrUpdate, 256)
		linkCh := make(chan netlink.LinkUpdate, 256)
		err := netlink.AddrSubscribeWithOptions(addrCh, done, netlink.AddrSubscribeOptions{
			Namespace: nsp, ReceiveBufferSize: 1 << 20, ReceiveBufferForceSize: true,
		})
		if err == nil {
			err = netlink.LinkSubscribeWithOptions(linkCh, done, netlink.LinkSubscribeOptions{
				Namespace: nsp, ReceiveBufferSize: 1 << 20, ReceiveBufferForceSize: true,
			})
		}
		if err != nil {
			close(done)
			if first {
				return fmt.Errorf("subscribing to address and link changes: %w", err)
			}
		} else {
			if !first {
				changed() // events may have been lost in between
			}
			watchLoop(ctx, addrCh, linkCh, changed)
			close(done)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

// watchLoop reports every event until ctx is done or a channel closes.
func watchLoop(ctx context.Context, addrCh <-chan netlink.AddrUpdate, linkCh <-chan netlink.LinkUpdate, changed func()) {
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-addrCh:
			if !ok {
				return
			}
		case _, ok := <-linkCh:
			if !ok {
				return
			}
		}
		changed()
	}
}

// Apply implements Kernel.
func (k *Netlink) Apply(ops []Op) []error {
	if len(ops) == 0 {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	var errs []error
	fail := func(i int, err error) {
		if errs == nil {
			errs = make([]error, len(ops))
		}
		errs[i] = err
	}
	if k.closed {
		for i := range ops {
			fail(i, ErrClosed)
		}
		return errs
	}
	fd := k.sock.GetFd()
	for i := 0; i < len(ops); {
		k.buf = k.buf[:0]
		k.idx = k.idx[:0]
		base := k.seq + 1
		for i < len(ops) && len(k.buf) < batchBytes {
			seq := base + uint32(len(k.idx))
			b, err := appendOp(k.buf, ops[i], seq, false)
			if err != nil {
				fail(i, &OpError{Op: ops[i], Err: err})
				i++
				continue
			}
			k.buf = b
			k.idx = append(k.idx, i)
			i++
		}
		if len(k.idx) == 0 {
			continue
		}
		barrier := base + uint32(len(k.idx))
		k.seq = barrier
		k.buf = appendNoop(k.buf, barrier)
		if err := k.exchange(fd, base, barrier, fail, ops); err != nil {
			// The outcome of the batch is unknown: report every op of it
			// that has no answer yet (the caller retries them).
			for _, j := range k.idx {
				if j >= 0 {
					fail(j, &OpError{Op: ops[j], Err: err})
				}
			}
		}
	}
	return errs
}

// exchange sends k.buf and reads replies until the barrier's ack. Each
// error reply is matched to its op through k.idx (by seq-base) and the
// entry is set to -1; ops not named by an error succeeded.
func (k *Netlink) exchange(fd int, base, barrier uint32, fail func(int, error), ops []Op) error {
	for {
		err := unix.Sendto(fd, k.buf, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("sending route batch: %w", err)
		}
		break
	}
	for done := false; !done; {
		n, _, err := unix.Recvfrom(fd, k.rbuf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("reading route batch replies: %w", err)
		}
		perr := parseAcks(k.rbuf[:n], func(a ack) {
			if a.Seq == barrier {
				done = true
				return
			}
			off := a.Seq - base
			if a.Seq < base || off >= uint32(len(k.idx)) || k.idx[off] < 0 || a.Errno == 0 {
				return // not ours, a duplicate, or a stray ack
			}
			j := k.idx[off]
			k.idx[off] = -1
			var e error = syscall.Errno(a.Errno)
			if e == unix.ESRCH {
				e = fmt.Errorf("%w (%w)", ErrNoRoute, e)
			}
			fail(j, &OpError{Op: ops[j], Err: e, Msg: a.Msg})
		})
		if perr != nil {
			return perr
		}
	}
	for i := range k.idx {
		k.idx[i] = -1 // every op has its answer
	}
	return nil
}

var _ Kernel = (*Netlink)(nil)
