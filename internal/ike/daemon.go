package ike

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// DaemonOptions are the Daemon's seams and knobs.
type DaemonOptions struct {
	// Installer receives child SAs; nil = NopInstaller.
	Installer SAInstaller
	// Log receives events; nil = discard.
	Log *slog.Logger
	// Registerer takes the havpn_ike_* metrics; nil = none.
	Registerer prometheus.Registerer
	// ListenAddrs are the local addresses to bind; empty = the wildcard
	// addresses (0.0.0.0 and ::), answering from the address a request
	// arrived on (IP_PKTINFO).
	ListenAddrs []netip.Addr
	// SendNAT, when set, means the dataplane owns the NAT-T port: the
	// daemon does not open it, the dataplane hands IKE packets over with
	// HandlePacket, and SendNAT transmits what the daemon sends from that
	// port (payloads with the non-ESP marker, or NAT keepalives).
	SendNAT func(payload []byte, local, remote netip.AddrPort) error
	// NonIKE receives datagrams on the daemon's own NAT-T socket that are
	// not IKE (ESP) when no dataplane owns the port; nil drops them.
	// Called from a reader goroutine; it must copy what it keeps.
	NonIKE func(payload []byte, local, remote netip.AddrPort)
	// Now is the clock; nil = time.Now.
	Now func() time.Time
}

// Daemon runs an Engine over UDP (IKE port and NAT-T port, RFC 3948).
// Its methods are safe for concurrent use; the Engine itself lives on the
// goroutine of Run.
type Daemon struct {
	cfg  Config
	opts DaemonOptions
	log  *slog.Logger
	now  func() time.Time

	in      chan inPacket        // received datagrams
	reqs    chan func(e *Engine) // calls into the engine's goroutine
	done    chan struct{}        // closed when Run returns
	mu      sync.Mutex           // guards running
	running bool

	conns []*udpConn // set up by Run
}

type inPacket struct {
	b             []byte
	local, remote netip.AddrPort
}

// NewDaemon checks cfg (see NewEngine) and returns a daemon; Run starts it.
func NewDaemon(cfg Config, opts DaemonOptions) (*Daemon, error) {
	if _, err := cfg.withDefaults(); err != nil {
		return nil, err
	}
	d := &Daemon{cfg: cfg, opts: opts, log: opts.Log, now: opts.Now,
		in: make(chan inPacket, 512), reqs: make(chan func(*Engine)), done: make(chan struct{})}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	d.log = d.log.With("component", "ike")
	if d.now == nil {
		d.now = time.Now
	}
	return d, nil
}

// HandlePacket hands the daemon one UDP payload received by someone else
// (the dataplane, on the NAT-T port: the payload starts with the non-ESP
// marker). It copies pkt and never blocks; when the daemon is busy or not
// running the packet is dropped (IKE retransmits).
func (d *Daemon) HandlePacket(pkt []byte, from, to netip.AddrPort) {
	select {
	case d.in <- inPacket{b: append([]byte(nil), pkt...), local: to, remote: from}:
	default:
	}
}

// call runs fn on the engine's goroutine and waits for it.
func (d *Daemon) call(ctx context.Context, fn func(e *Engine)) error {
	ch := make(chan struct{})
	select {
	case d.reqs <- func(e *Engine) { fn(e); close(ch) }:
	case <-d.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-ch:
		return nil
	case <-d.done:
		return ErrClosed
	}
}

// SAs returns the IKE SAs (see Engine.SAs).
func (d *Daemon) SAs(ctx context.Context) ([]SAInfo, error) {
	var out []SAInfo
	err := d.call(ctx, func(e *Engine) { out = e.SAs() })
	return out, err
}

// Initiate starts the named peer's IKE SA now unless it exists.
func (d *Daemon) Initiate(ctx context.Context, name string) error {
	var err error
	if cerr := d.call(ctx, func(e *Engine) { err = e.Initiate(d.now(), name) }); cerr != nil {
		return cerr
	}
	return err
}

// Terminate deletes the named peer's IKE SA and stops reconnecting to it
// until Initiate.
func (d *Daemon) Terminate(ctx context.Context, name string) error {
	var err error
	if cerr := d.call(ctx, func(e *Engine) { err = e.Terminate(d.now(), name) }); cerr != nil {
		return cerr
	}
	return err
}

// Done is closed when Run has returned.
func (d *Daemon) Done() <-chan struct{} { return d.done }

// Run opens the sockets and runs the engine until ctx is done; then it
// deletes all IKE SAs with their peers (best effort), removes the child
// SAs and closes the sockets. Run may be called once.
func (d *Daemon) Run(ctx context.Context) error {
	d.mu.Lock()
	if d.running {
		d.mu.Unlock()
		return errors.New("ike daemon: Run called twice")
	}
	d.running = true
	d.mu.Unlock()
	defer close(d.done)

	var wg sync.WaitGroup
	defer wg.Wait()
	ports := []uint16{d.cfgPort()}
	if d.opts.SendNAT == nil {
		ports = append(ports, d.cfgNATPort())
	}
	conns, err := d.listen(ports)
	if err != nil {
		return err
	}
	d.conns = conns
	defer func() {
		for _, c := range conns {
			c.close()
		}
	}()
	e, err := NewEngine(d.cfg, Deps{Send: d.send, Installer: d.opts.Installer, Log: d.log, Registerer: d.opts.Registerer})
	if err != nil {
		return err
	}
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.read(c)
		}()
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			e.Shutdown(d.now())
			return nil
		case p := <-d.in:
			e.HandlePacket(d.now(), p.b, p.local, p.remote)
		case fn := <-d.reqs:
			fn(e)
		case <-timer.C:
		}
		now := d.now()
		next := e.Tick(now)
		timer.Reset(max(next.Sub(now), time.Millisecond))
	}
}

func (d *Daemon) cfgPort() uint16 {
	if d.cfg.Port == 0 {
		return 500
	}
	return d.cfg.Port
}

func (d *Daemon) cfgNATPort() uint16 {
	if d.cfg.NATPort == 0 {
		return 4500
	}
	return d.cfg.NATPort
}

// send is the engine's Deps.Send.
func (d *Daemon) send(b []byte, local, remote netip.AddrPort) {
	if local.Port() == d.cfgNATPort() && d.opts.SendNAT != nil {
		if err := d.opts.SendNAT(b, local, remote); err != nil {
			d.log.Debug("sending IKE datagram through the dataplane", "peer", remote.String(), "err", err)
		}
		return
	}
	for _, c := range d.conns {
		if c.port == local.Port() && c.v6 == !remote.Addr().Unmap().Is4() && (!c.addr.IsValid() || c.addr == local.Addr().Unmap()) {
			if err := c.write(b, local, remote); err != nil {
				d.log.Debug("sending IKE datagram", "peer", remote.String(), "local", local.String(), "err", err)
			}
			return
		}
	}
	d.log.Debug("no socket to send IKE datagram from", "local", local.String(), "peer", remote.String())
}

// read pumps one socket into d.in until it is closed.
func (d *Daemon) read(c *udpConn) {
	buf := make([]byte, 65536)
	for {
		n, local, remote, err := c.read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		b := buf[:n]
		if c.port == d.cfgNATPort() && !(n == 1 && b[0] == 0xff) && (n < 4 || b[0]|b[1]|b[2]|b[3] != 0) {
			if d.opts.NonIKE != nil {
				d.opts.NonIKE(b, local, remote)
			}
			continue
		}
		d.HandlePacket(b, remote, local)
	}
}

// udpConn is one bound UDP socket with packet info.
type udpConn struct {
	c    *net.UDPConn
	p4   *ipv4.PacketConn
	p6   *ipv6.PacketConn
	v6   bool
	port uint16
	addr netip.Addr // bound address, invalid for the wildcard
}

func (d *Daemon) listen(ports []uint16) ([]*udpConn, error) {
	addrs := d.opts.ListenAddrs
	wildcard := len(addrs) == 0
	if wildcard {
		addrs = []netip.Addr{netip.IPv4Unspecified(), netip.IPv6Unspecified()}
	}
	var out []*udpConn
	fail := func(err error) ([]*udpConn, error) {
		for _, c := range out {
			c.close()
		}
		return nil, err
	}
	for _, port := range ports {
		for _, a := range addrs {
			a = a.Unmap()
			network := "udp4"
			if a.Is6() {
				network = "udp6"
			}
			c, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, port)))
			if err != nil {
				if wildcard && a.Is6() {
					d.log.Debug("no IPv6 IKE socket", "port", port, "err", err)
					continue
				}
				return fail(fmt.Errorf("listening for IKE on %s: %w", netip.AddrPortFrom(a, port), err))
			}
			u := &udpConn{c: c, v6: a.Is6(), port: port}
			if !a.IsUnspecified() {
				u.addr = a
			}
			if u.v6 {
				u.p6 = ipv6.NewPacketConn(c)
				err = u.p6.SetControlMessage(ipv6.FlagDst, true)
			} else {
				u.p4 = ipv4.NewPacketConn(c)
				err = u.p4.SetControlMessage(ipv4.FlagDst, true)
			}
			if err != nil {
				c.Close()
				return fail(fmt.Errorf("enabling packet info on %s: %w", c.LocalAddr(), err))
			}
			out = append(out, u)
		}
	}
	return out, nil
}

func (u *udpConn) read(b []byte) (int, netip.AddrPort, netip.AddrPort, error) {
	var n int
	var dst net.IP
	var src net.Addr
	var err error
	if u.v6 {
		var cm *ipv6.ControlMessage
		n, cm, src, err = u.p6.ReadFrom(b)
		if cm != nil {
			dst = cm.Dst
		}
	} else {
		var cm *ipv4.ControlMessage
		n, cm, src, err = u.p4.ReadFrom(b)
		if cm != nil {
			dst = cm.Dst
		}
	}
	if err != nil {
		return 0, netip.AddrPort{}, netip.AddrPort{}, err
	}
	ua, ok := src.(*net.UDPAddr)
	if !ok {
		return 0, netip.AddrPort{}, netip.AddrPort{}, fmt.Errorf("source address %v", src)
	}
	remote := ua.AddrPort()
	remote = netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port())
	la := u.addr
	if d, ok := netip.AddrFromSlice(dst); ok {
		la = d.Unmap()
	}
	return n, netip.AddrPortFrom(la, u.port), remote, nil
}

func (u *udpConn) write(b []byte, local, remote netip.AddrPort) error {
	to := net.UDPAddrFromAddrPort(remote)
	var err error
	if u.v6 {
		var cm *ipv6.ControlMessage
		if !u.addr.IsValid() && local.Addr().IsValid() {
			cm = &ipv6.ControlMessage{Src: local.Addr().AsSlice()}
		}
		_, err = u.p6.WriteTo(b, cm, to)
	} else {
		var cm *ipv4.ControlMessage
		if !u.addr.IsValid() && local.Addr().IsValid() {
			cm = &ipv4.ControlMessage{Src: local.Addr().Unmap().AsSlice()}
		}
		_, err = u.p4.WriteTo(b, cm, to)
	}
	return err
}

func (u *udpConn) close() { u.c.Close() }
