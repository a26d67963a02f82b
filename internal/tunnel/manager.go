package tunnel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/havpn/havpn/internal/config"
	"github.com/havpn/havpn/internal/netnsutil"
	"github.com/havpn/havpn/internal/tunnel/esp"
	"github.com/havpn/havpn/internal/tunnel/tun"
	"github.com/havpn/havpn/internal/tunnel/udp"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultGrace is how long an inbound SA outlives the outbound SA it was
// paired with once a new outbound SA took over (make-before-break).
const DefaultGrace = 30 * time.Second

// DefaultBatch is the number of packets a loop handles per syscall.
const DefaultBatch = 128

// PacketConn is the UDP socket seam: udp.Conn, or a fake in tests. Its
// contract is udp.Conn's: one reader and one writer at a time at least,
// net.ErrClosed after Close.
type PacketConn interface {
	ReadBatch(msgs []udp.Message) (int, error)
	WriteBatch(msgs []udp.Message) (int, error)
	LocalAddr() netip.AddrPort
	Close() error
}

// Options are a Manager's seams and knobs; the zero value works.
type Options struct {
	// Log receives life-cycle events (never per packet); nil = discard.
	Log *slog.Logger
	// Registerer takes the havpn_tunnel_* metrics; nil = none.
	Registerer prometheus.Registerer
	// NetNS is the named network namespace (as netnsutil knows it) in
	// which the TUN interfaces and sockets are made; "" = the caller's.
	NetNS string
	// IKE receives every payload on a tunnel socket that starts with the
	// non-ESP marker (RFC 3948 §2.2), marker included, as ike.Daemon's
	// HandlePacket wants it. It is called on the receive goroutine and must
	// not block nor keep pkt. nil = counted and dropped until SetIKE.
	IKE func(pkt []byte, from, to netip.AddrPort)
	// Grace is DefaultGrace when 0.
	Grace time.Duration
	// Workers is the number of goroutines sealing and opening in parallel;
	// 0 = GOMAXPROCS, 1 = no parallelism.
	Workers int
	// Batch is DefaultBatch when 0.
	Batch int
	// CreateTUN makes a tunnel's interface; nil = tun.Create (in NetNS).
	CreateTUN func(tun.Config) (tun.Device, error)
	// ListenUDP opens a socket; nil = udp.Listen (in NetNS).
	ListenUDP func(local netip.AddrPort) (PacketConn, error)
	// Now is the clock; nil = time.Now.
	Now func() time.Time
	// OutboundSeq gives the sequence number a manual outbound SA starts
	// after (0: from the beginning). A standby taking over passes the
	// number its peer last reported plus a margin (package statesync), so
	// that the other end's replay window accepts the new packets at once.
	OutboundSeq func(tunnel string, spi uint32) uint64
}

// Manager runs a set of tunnels that share their UDP sockets: one socket
// per local address and port, demultiplexed by SPI. Its methods are safe
// for concurrent use.
//
// Life cycle: New opens everything (interfaces, sockets, manual SAs) ->
// Run moves packets until its context ends or Close is called -> closed.
// A Manager cannot be run twice.
type Manager struct {
	opts  Options
	log   *slog.Logger
	now   func() time.Time
	grace time.Duration
	batch int

	tunnels  []*Tunnel
	byName   map[string]*Tunnel
	socks    []*socket
	sockBy   map[netip.AddrPort]*socket
	byRemote map[netip.Addr]*Tunnel // attributes unknown-SPI drops

	saMu    sync.Mutex                       // serialises SA table changes
	inbound atomic.Pointer[map[uint32]*inSA] // copy on write under saMu

	pool *pool
	ike  atomic.Pointer[IKEHandler]
	coll *collector // registered with opts.Registerer, unregistered on close

	subMu sync.Mutex // guards subs
	subs  map[*subscriber]struct{}

	running   atomic.Bool
	closeOnce sync.Once
	closing   chan struct{}
	done      chan struct{}
	closeErr  error
}

// socket is one shared UDP socket.
type socket struct {
	conn  PacketConn
	local netip.AddrPort
	c     sockCounters
}

// New builds a Manager for the tunnels cfgs (as config.Load returns them):
// it creates each tunnel's TUN interface and the sockets, and installs the
// manual SAs of tunnels with keying: manual (keys read with
// config.ReadKey). On error everything made is removed again.
func New(cfgs []config.Tunnel, opts Options) (*Manager, error) {
	m := &Manager{
		opts:     opts,
		log:      opts.Log,
		now:      opts.Now,
		grace:    opts.Grace,
		batch:    opts.Batch,
		byName:   map[string]*Tunnel{},
		sockBy:   map[netip.AddrPort]*socket{},
		byRemote: map[netip.Addr]*Tunnel{},
		subs:     map[*subscriber]struct{}{},
		closing:  make(chan struct{}),
		done:     make(chan struct{}),
	}
	if m.log == nil {
		m.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	m.log = m.log.With("component", "tunnel")
	if m.now == nil {
		m.now = time.Now
	}
	if m.grace <= 0 {
		m.grace = DefaultGrace
	}
	if m.batch <= 0 {
		m.batch = DefaultBatch
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	m.pool = newPool(workers)
	if opts.IKE != nil {
		m.SetIKE(opts.IKE)
	}
	empty := map[uint32]*inSA{}
	m.inbound.Store(&empty)
	for _, cfg := range cfgs {
		if err := m.add(cfg); err != nil {
			return nil, errors.Join(err, m.closeAll())
		}
	}
	if opts.Registerer != nil {
		coll := collector{m: m, d: newDescs()}
		if err := opts.Registerer.Register(coll); err != nil {
			return nil, errors.Join(fmt.Errorf("registering tunnel metrics: %w", err), m.closeAll())
		}
		m.coll = &coll
	}
	return m, nil
}

// inNS runs fn in the manager's namespace.
func (m *Manager) inNS(fn func() error) error {
	if m.opts.NetNS == "" {
		return fn()
	}
	return netnsutil.Do(m.opts.NetNS, fn)
}

func (m *Manager) add(cfg config.Tunnel) error {
	if _, dup := m.byName[cfg.Name]; dup {
		return fmt.Errorf("adding tunnel %s: name used twice", cfg.Name)
	}
	cipher, err := esp.ParseCipher(string(cfg.Cipher))
	if err != nil {
		return fmt.Errorf("adding tunnel %s: %w", cfg.Name, err)
	}
	if cfg.MTU <= 0 {
		cfg.MTU = cfg.WANMTU - cfg.Overhead()
	}
	if cfg.Port == 0 {
		cfg.Port = 4500
	}
	t := newTunnel(m, cfg, cipher)
	local := netip.AddrPortFrom(cfg.Local.Unmap(), cfg.Port)
	s := m.sockBy[local]
	if s == nil {
		var conn PacketConn
		err := m.inNS(func() (err error) {
			if m.opts.ListenUDP != nil {
				conn, err = m.opts.ListenUDP(local)
			} else {
				conn, err = udp.Listen(local, udp.Options{Batch: m.batch})
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("opening socket of tunnel %s: %w", cfg.Name, err)
		}
		s = &socket{conn: conn, local: local}
		m.socks = append(m.socks, s)
		m.sockBy[local] = s
	}
	t.sock = s
	tc := tun.Config{Name: cfg.Name, MTU: cfg.MTU, Address: cfg.Address, Peer: cfg.PeerAddress}
	err = m.inNS(func() (err error) {
		if m.opts.CreateTUN != nil {
			t.dev, err = m.opts.CreateTUN(tc)
		} else {
			t.dev, err = tun.Create(tc)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("creating interface of tunnel %s: %w", cfg.Name, err)
	}
	m.tunnels = append(m.tunnels, t)
	m.byName[cfg.Name] = t
	if _, ok := m.byRemote[cfg.Remote.Unmap()]; !ok {
		m.byRemote[cfg.Remote.Unmap()] = t
	}
	if cfg.Keying == config.KeyingManual && cfg.Manual != nil {
		if err := m.installManual(t); err != nil {
			return err
		}
	}
	m.log.Info("tunnel created", "tunnel", cfg.Name, "iface", cfg.Name, "local", local, "remote", t.remote, "mtu", cfg.MTU, "mode", string(cfg.Mode))
	return nil
}

func (m *Manager) installManual(t *Tunnel) error {
	man := t.cfg.Manual
	inKey, err := config.ReadKey(man.Inbound.KeyFile, t.cfg.Cipher)
	if err != nil {
		return fmt.Errorf("reading inbound key of tunnel %s: %w", t.name, err)
	}
	outKey, err := config.ReadKey(man.Outbound.KeyFile, t.cfg.Cipher)
	if err != nil {
		return fmt.Errorf("reading outbound key of tunnel %s: %w", t.name, err)
	}
	in := SA{State: esp.State{Cipher: t.cipher, SPI: man.Inbound.SPI, Key: inKey, ESN: t.cfg.ESN, Window: t.cfg.ReplayWindow}}
	if err := m.InstallInbound(t.name, in); err != nil {
		return err
	}
	out := SA{State: esp.State{Cipher: t.cipher, SPI: man.Outbound.SPI, Key: outKey, ESN: t.cfg.ESN}, Pair: man.Inbound.SPI}
	if m.opts.OutboundSeq != nil {
		out.Seq = m.opts.OutboundSeq(t.name, out.SPI)
	}
	return m.InstallOutbound(t.name, out, true)
}

// IKEHandler takes an IKE message received on a tunnel socket (with its
// non-ESP marker); ike.Daemon.HandlePacket has this shape.
type IKEHandler func(pkt []byte, from, to netip.AddrPort)

// SetIKE sets (or, with nil, clears) the handler of IKE messages on the
// tunnel sockets, replacing Options.IKE; it may be called at any time, so
// that the IKE daemon can be made after the Manager (it needs SendUDP).
func (m *Manager) SetIKE(h IKEHandler) {
	if h == nil {
		m.ike.Store(nil)
		return
	}
	m.ike.Store(&h)
}

// Tunnel returns the named tunnel, or nil.
func (m *Manager) Tunnel(name string) *Tunnel { return m.byName[name] }

// Tunnels returns the tunnels in configuration order.
func (m *Manager) Tunnels() []*Tunnel { return append([]*Tunnel(nil), m.tunnels...) }

// Run moves packets until ctx ends or Close is called, then closes the
// interfaces and sockets and returns. It returns nil after a normal stop,
// and an error when an interface or socket failed for good (the others are
// stopped then too). A second Run returns an error at once.
func (m *Manager) Run(ctx context.Context) error {
	select {
	case <-m.closing:
		return ErrClosed
	default:
	}
	if !m.running.CompareAndSwap(false, true) {
		return errors.New("running tunnel manager: already started")
	}
	defer close(m.done)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	m.pool.start()
	fail := func(err error) {
		if err != nil {
			cancel(err)
		}
	}
	for _, s := range m.socks {
		wg.Go(func() { fail(m.receiveLoop(s)) })
	}
	for _, t := range m.tunnels {
		wg.Go(func() { fail(t.sendLoop()) })
		wg.Go(func() { t.livenessLoop(ctx) })
	}
	wg.Go(func() { m.janitor(ctx) })
	m.log.Info("tunnels running", "tunnels", len(m.tunnels), "sockets", len(m.socks), "workers", m.pool.size)
	select {
	case <-ctx.Done():
	case <-m.closing:
		cancel(nil)
	}
	closeErr := m.closeAll()
	wg.Wait()
	m.pool.stop()
	m.closeErr = closeErr
	err := context.Cause(ctx)
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		err = nil
	}
	m.log.Info("tunnels stopped", "err", err)
	return errors.Join(err, closeErr)
}

// Close stops Run, or, when Run was never called, removes the interfaces
// and closes the sockets. It is idempotent and returns once everything is
// closed.
func (m *Manager) Close() error {
	var err error
	m.closeOnce.Do(func() {
		close(m.closing)
		if m.running.CompareAndSwap(false, true) {
			err = m.closeAll()
			close(m.done)
		}
	})
	<-m.done
	return err
}

// Done is closed when the manager has stopped.
func (m *Manager) Done() <-chan struct{} { return m.done }

func (m *Manager) closeAll() error {
	if m.coll != nil {
		// So that a new Manager (after a config reload) can register on
		// the same registry.
		m.opts.Registerer.Unregister(*m.coll)
	}
	var errs []error
	for _, t := range m.tunnels {
		if err := t.dev.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing interface %s: %w", t.name, err))
		}
	}
	for _, s := range m.socks {
		if err := s.conn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, fmt.Errorf("closing socket %s: %w", s.local, err))
		}
	}
	return errors.Join(errs...)
}

// isClosed reports whether err means the device or socket was closed.
func isClosed(err error) bool {
	return errors.Is(err, os.ErrClosed) || errors.Is(err, net.ErrClosed)
}

// janitor removes inbound SAs whose grace period is over.
func (m *Manager) janitor(ctx context.Context) {
	tick := min(m.grace/4, time.Second)
	tk := time.NewTicker(tick)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
			m.expire(m.now())
		}
	}
}

// SendUDP sends payload from the socket bound to local (any socket of the
// right family when local is the zero value) to remote: the shape of
// ike.DaemonOptions.SendNAT, for IKE messages (with the non-ESP marker) and
// NAT-keepalives on the shared port.
func (m *Manager) SendUDP(payload []byte, local, remote netip.AddrPort) error {
	s := m.sockBy[netip.AddrPortFrom(local.Addr().Unmap(), local.Port())]
	if s == nil && !local.Addr().IsValid() {
		for _, c := range m.socks {
			if c.local.Addr().Is4() == remote.Addr().Unmap().Is4() {
				s = c
				break
			}
		}
	}
	if s == nil {
		return fmt.Errorf("sending to %s from %s: %w", remote, local, ErrNoSocket)
	}
	msgs := []udp.Message{{Buf: payload, Addr: remote}}
	if _, err := s.conn.WriteBatch(msgs); err != nil {
		return fmt.Errorf("sending to %s from %s: %w", remote, s.local, err)
	}
	return nil
}
