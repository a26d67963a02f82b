//go:build linux

package cluster

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// icmpPinger sends ICMP echo requests from a raw socket (needs CAP_NET_RAW;
// the ID is ours) or, failing that, an unprivileged ICMP datagram socket
// (net.ipv4.ping_group_range; the kernel picks the ID and filters replies).
// One reader goroutine per socket records the replies.
type icmpPinger struct {
	id    int
	conns []*icmpConn
	wg    sync.WaitGroup

	mu  sync.Mutex // guards seq, got
	seq int
	got map[netip.Addr]int // newest sequence answered, per source
}

type icmpConn struct {
	c    *icmp.PacketConn
	raw  bool
	v6   bool
	buf  []byte
	wbuf []byte
}

// newICMPPinger opens the sockets the targets need, in the calling thread's
// network namespace.
func newICMPPinger(targets []netip.Addr) (*icmpPinger, error) {
	p := &icmpPinger{id: rand.IntN(0xffff) + 1, got: map[netip.Addr]int{}}
	var need4, need6 bool
	for _, t := range targets {
		if t.Unmap().Is4() {
			need4 = true
		} else {
			need6 = true
		}
	}
	open := func(v6 bool) error {
		rawNet, dgramNet, addr := "ip4:icmp", "udp4", "0.0.0.0"
		if v6 {
			rawNet, dgramNet, addr = "ip6:ipv6-icmp", "udp6", "::"
		}
		c, err := icmp.ListenPacket(rawNet, addr)
		raw := true
		if err != nil {
			var err2 error
			if c, err2 = icmp.ListenPacket(dgramNet, addr); err2 != nil {
				return fmt.Errorf("opening ICMP socket: %w", errors.Join(err, err2))
			}
			raw = false
		}
		p.conns = append(p.conns, &icmpConn{c: c, raw: raw, v6: v6, buf: make([]byte, 1500)})
		return nil
	}
	if need4 {
		if err := open(false); err != nil {
			return nil, err
		}
	}
	if need6 {
		if err := open(true); err != nil {
			p.Close()
			return nil, err
		}
	}
	for _, c := range p.conns {
		p.wg.Go(func() { p.read(c) })
	}
	return p, nil
}

func (p *icmpPinger) read(c *icmpConn) {
	proto := 1 // ICMP
	if c.v6 {
		proto = 58
	}
	for {
		n, from, err := c.c.ReadFrom(c.buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		m, err := icmp.ParseMessage(proto, c.buf[:n])
		if err != nil || (m.Type != ipv4.ICMPTypeEchoReply && m.Type != ipv6.ICMPTypeEchoReply) {
			continue
		}
		echo, ok := m.Body.(*icmp.Echo)
		if !ok || (c.raw && echo.ID != p.id) {
			continue
		}
		var src netip.Addr
		switch a := from.(type) {
		case *net.IPAddr:
			src, _ = netip.AddrFromSlice(a.IP)
		case *net.UDPAddr:
			src, _ = netip.AddrFromSlice(a.IP)
		}
		p.mu.Lock()
		p.got[src.Unmap()] = echo.Seq
		p.mu.Unlock()
	}
}

func (p *icmpPinger) Probe(ctx context.Context, targets []netip.Addr, timeout time.Duration) ([]bool, error) {
	p.mu.Lock()
	p.seq = (p.seq + 1) & 0xffff
	seq := p.seq
	p.mu.Unlock()
	var errs []error
	for _, t := range targets {
		t = t.Unmap()
		var c *icmpConn
		for _, x := range p.conns {
			if x.v6 == t.Is6() {
				c = x
			}
		}
		if c == nil {
			continue
		}
		typ := icmp.Type(ipv4.ICMPTypeEcho)
		if c.v6 {
			typ = ipv6.ICMPTypeEchoRequest
		}
		msg := icmp.Message{Type: typ, Body: &icmp.Echo{ID: p.id, Seq: seq, Data: []byte("havpn-cluster")}}
		b, err := msg.Marshal(nil)
		if err != nil {
			return nil, fmt.Errorf("building echo request: %w", err)
		}
		var dst net.Addr = &net.IPAddr{IP: t.AsSlice(), Zone: t.Zone()}
		if !c.raw {
			dst = &net.UDPAddr{IP: t.AsSlice(), Zone: t.Zone()}
		}
		if _, err := c.c.WriteTo(b, dst); err != nil {
			errs = append(errs, fmt.Errorf("echo request to %s: %w", t, err))
		}
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-ctx.Done():
	case <-timer.C:
	}
	out := make([]bool, len(targets))
	p.mu.Lock()
	for i, t := range targets {
		out[i] = p.got[t.Unmap()] == seq
	}
	p.mu.Unlock()
	return out, errors.Join(errs...)
}

func (p *icmpPinger) Close() error {
	var errs []error
	for _, c := range p.conns {
		if err := c.c.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	p.wg.Wait()
	return errors.Join(errs...)
}

func newPinger(targets []netip.Addr) (Pinger, error) { return newICMPPinger(targets) }
