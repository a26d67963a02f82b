package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/havpn/havpn/internal/config"
)

// Options configure a Cluster. Every field is optional.
type Options struct {
	// Log receives the cluster's log lines (component=cluster is added).
	// nil discards them.
	Log *slog.Logger
	// Registerer gets the havpn_cluster_* collectors; nil: no metrics.
	Registerer prometheus.Registerer
	// Clock is the time source; nil: RealClock.
	Clock Clock
	// Key is the HMAC key; nil: read cluster.auth_key_file with
	// config.ReadSecret, surrounding white space removed.
	Key []byte
	// ConfigHash is carried in heartbeats and compared with the peers';
	// "": SharedConfigHash(cfg). A 16-hex-digit string is used as it is,
	// anything else is hashed (ParseConfigHash).
	ConfigHash string
	// Links, when not nil, are used instead of opening the configured
	// links: one per cfg.Cluster.Links entry, in order (tests; see package
	// clustertest). Run closes them.
	Links []Link
	// Pinger probes the ping nodes; nil: ICMP, opened by Run when ping
	// nodes are configured. Run closes it.
	Pinger Pinger
	// PingInterval is the time between probes; 0: DefaultPingInterval.
	PingInterval time.Duration
}

// RoleEvent tells the daemon what to do: become active (start the
// resource group, announce the addresses), release (stop it), or, with
// Reannounce, announce the addresses again while staying active.
type RoleEvent struct {
	Role Role `json:"role"`
	From Role `json:"from"`
	// Reason says why, for logs and status.
	Reason string `json:"reason"`
	// Quiet (Role standby): this node was stalled and another has probably
	// taken over: release at once and announce nothing (no gratuitous
	// ARP/NA, no goodbye on any protocol).
	Quiet bool `json:"quiet,omitempty"`
	// Reannounce (Role active, From active): both nodes were active, or the
	// peer was unreachable and may have claimed the addresses; send the
	// gratuitous ARP/NA burst again. Nothing else changes.
	Reannounce bool `json:"reannounce,omitempty"`
	// At is when the decision was taken.
	At time.Time `json:"at"`
	// Detected is when the input that caused it was observed (the tick
	// that found the peer dead, the heartbeat received, the carrier event).
	Detected time.Time `json:"detected"`
}

// Cluster runs the heartbeat protocol and the election for one node. Build
// it with New, start it with Run, consume Events, and feed it carrier
// changes with SetCarrier. Its methods are safe for concurrent use.
//
// Concurrency: while Run runs, the heartbeat loop (one goroutine on a
// locked OS thread) owns the Machine and all protocol state; it reads the
// links, ticks and sends heartbeats. Methods hand it closures (exec) and
// wait: the loop never waits for a lock that an ordinary goroutine holds,
// so a preempted caller cannot delay a heartbeat (no priority inversion
// when the loop runs SCHED_FIFO). Before and after Run, mu guards the same
// state. Log lines and events leave through a notifier goroutine, so a slow
// log sink or a slow Events reader never delays a heartbeat either.
type Cluster struct {
	cfg    *config.Config
	cl     *config.Cluster
	log    *slog.Logger
	clock  Clock
	key    []byte
	hash   ConfigHash
	params Params
	opts   Options
	met    *metrics

	gAlive  []prometheus.Gauge   // per peer (Machine order)
	gLinkUp [][]prometheus.Gauge // per peer, per link
	sentC   []prometheus.Counter
	errC    []prometheus.Counter
	recvC   []prometheus.Counter

	events chan RoleEvent
	rx     chan rxMsg           // portable loop: receivers -> loop
	kick   chan struct{}        // portable loop: wake-up
	reqs   chan func(time.Time) // exec -> loop
	ran    atomic.Bool
	role   atomic.Uint32 // current Role, for Role() without the loop

	drops      [numDropReasons]atomic.Uint64
	lateTimers atomic.Uint64
	links      []linkStats

	// mu guards running, loopDone, maint and carrier (the inputs recorded
	// for a Machine built later), and, while the loop is not running,
	// the loop's state below.
	mu       sync.Mutex
	running  bool
	loopDone chan struct{} // closed when the loop has returned
	maint    bool
	carrier  map[string]bool

	// Owned by the loop while running.
	m          *Machine // nil before Run
	s          *sender  // the loop's links and buffers
	epoch      uint64
	started    time.Time
	seq        uint64
	lastAdvert Advert
	lastTrans  *TransitionStatus
	stalls     uint64
	pingUp     []bool
	note       *notifier

	// noGoodbye (tests) makes Run end like a crash: no leaving heartbeat.
	noGoodbye atomic.Bool

	wakeMu sync.Mutex // guards wake
	wake   func()     // wakes the polling loop (nil when not polling)
}

type linkStats struct {
	name    string
	kind    string
	sent    atomic.Uint64
	errs    atomic.Uint64
	recv    atomic.Uint64
	lastErr atomic.Pointer[string]
}

func (l *linkStats) setError(err error) {
	if e := err.Error(); l.lastError() != e {
		l.lastErr.Store(&e)
	}
}

func (l *linkStats) lastError() string {
	if p := l.lastErr.Load(); p != nil {
		return *p
	}
	return ""
}

type rxMsg struct {
	link int
	at   time.Time
	msg  Message
}

// New checks cfg (which must have a cluster section) and builds a
// Cluster; it opens nothing (Run does).
func New(cfg *config.Config, opts Options) (*Cluster, error) {
	if cfg == nil || cfg.Cluster == nil {
		return nil, ErrNoCluster
	}
	cl := cfg.Cluster
	if len(cl.Peers) > MaxAlive {
		return nil, fmt.Errorf("cluster of %d peers: at most %d are supported", len(cl.Peers), MaxAlive)
	}
	if opts.Links != nil && len(opts.Links) != len(cl.Links) {
		return nil, fmt.Errorf("cluster options: %d links given for %d configured", len(opts.Links), len(cl.Links))
	}
	c := &Cluster{cfg: cfg, cl: cl, opts: opts, log: opts.Log, clock: opts.Clock, key: opts.Key,
		events: make(chan RoleEvent, 16), rx: make(chan rxMsg, 256), kick: make(chan struct{}, 1),
		reqs:  make(chan func(time.Time), 64),
		maint: cl.Maintenance, carrier: map[string]bool{}}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.log = c.log.With("component", "cluster")
	if c.clock == nil {
		c.clock = RealClock{}
	}
	if c.key == nil {
		b, err := config.ReadSecret(cl.AuthKeyFile)
		if err != nil {
			return nil, fmt.Errorf("reading cluster key: %w", err)
		}
		c.key = bytes.TrimSpace(b)
	}
	if len(c.key) == 0 {
		return nil, errors.New("cluster key is empty")
	}
	h := opts.ConfigHash
	if h == "" {
		h = SharedConfigHash(cfg)
	}
	c.hash = ParseConfigHash(h)
	c.params = ParamsFromConfig(cfg, c.hash)
	if c.opts.PingInterval <= 0 {
		c.opts.PingInterval = DefaultPingInterval
	}
	var err error
	if c.met, err = newMetrics(opts.Registerer); err != nil {
		return nil, err
	}
	c.met.setRole(RoleInit)
	peers := slices.Clone(c.params.Peers)
	slices.SortFunc(peers, func(a, b Member) int { return int(a.NodeID) - int(b.NodeID) })
	for _, p := range peers {
		c.gAlive = append(c.gAlive, c.met.peerAlive.WithLabelValues(p.Name))
		var ups []prometheus.Gauge
		for _, l := range cl.Links {
			ups = append(ups, c.met.peerLinkUp.WithLabelValues(p.Name, l.Name))
		}
		c.gLinkUp = append(c.gLinkUp, ups)
	}
	c.links = make([]linkStats, len(cl.Links))
	for i, l := range cl.Links {
		c.links[i].name = l.Name
		switch {
		case l.Serial != "":
			c.links[i].kind = "serial"
		case l.Group.IsValid():
			c.links[i].kind = "multicast"
		default:
			c.links[i].kind = "unicast"
		}
		if opts.Links != nil {
			c.links[i].kind = "custom"
			if k, ok := opts.Links[i].(LinkKind); ok {
				c.links[i].kind = k.Kind()
			}
		}
		c.sentC = append(c.sentC, c.met.sent.WithLabelValues(l.Name))
		c.errC = append(c.errC, c.met.sendErrors.WithLabelValues(l.Name))
		c.recvC = append(c.recvC, c.met.received.WithLabelValues(l.Name))
	}
	c.pingUp = make([]bool, len(cl.PingNodes))
	return c, nil
}

// ParamsFromConfig returns the Machine parameters of cfg's cluster section
// (which must be present).
func ParamsFromConfig(cfg *config.Config, hash ConfigHash) Params {
	cl := cfg.Cluster
	t := cl.Timers
	p := Params{
		Self:         Member{Name: cfg.Node.Name, NodeID: cl.NodeID, Priority: cl.Priority},
		Timers:       Timers{Keepalive: t.Keepalive.D(), Warntime: t.Warntime.D(), Deadtime: t.Deadtime.D(), Initdead: t.Initdead.D()},
		AutoFailback: cl.AutoFailback,
		Maintenance:  cl.Maintenance,
		PingNodes:    len(cl.PingNodes),
		Monitor:      slices.Clone(cl.Monitor),
		ConfigHash:   hash,
	}
	for _, pr := range cl.Peers {
		p.Peers = append(p.Peers, Member{Name: pr.Name, NodeID: pr.NodeID})
	}
	for _, l := range cl.Links {
		p.Links = append(p.Links, l.Name)
	}
	return p
}

// SharedConfigHash returns config.Config.Hash of the part of cfg that must
// be equal on all members of a cluster: everything except the node's name,
// log, control socket and metrics settings, the config path, and the
// per-node cluster fields (node_id, priority, maintenance, auth_key_file,
// peers, links, monitor, lock_memory, realtime). cfg.Hash() itself differs
// between members by construction (node name, node id, peers).
func SharedConfigHash(cfg *config.Config) string {
	cp := *cfg
	cp.Path = ""
	cp.Node.Name = ""
	cp.Log = config.Log{}
	cp.Control = config.Control{}
	cp.Metrics = config.Metrics{}
	if cl := cfg.Cluster; cl != nil {
		cp.Cluster = &config.Cluster{Port: cl.Port, Timers: cl.Timers, AutoFailback: cl.AutoFailback,
			PingNodes: cl.PingNodes, GARP: cl.GARP}
	}
	return cp.Hash()
}

// Events returns the channel of role events. It is closed when Run
// returns. Read it promptly: the queue behind it is unbounded, but a
// reader that stops reading stops learning its role.
func (c *Cluster) Events() <-chan RoleEvent { return c.events }

// Role returns the current role (RoleInit before Run). It takes no lock.
func (c *Cluster) Role() Role { return Role(c.role.Load()) }

func (c *Cluster) newMachine(now time.Time) *Machine {
	p := c.params
	p.Maintenance = c.maint
	m := NewMachine(p, now)
	for iface, up := range c.carrier {
		m.SetCarrier(now, iface, up)
	}
	return m
}

// Run opens the links (in the calling thread's network namespace) and the
// ping socket, then runs the protocol until ctx is done. On the way out it
// sends a last heartbeat flagged leaving, so that the peer takes over at
// once: cancel ctx only after this node's resources are stopped. Run
// returns nil after ctx is done, an error if no link at all or the ping
// socket cannot be opened (a link that fails alone is logged, shown in
// Status and retried every second), and ErrRunning when called a second
// time. Events is closed when Run returns. With cluster.realtime the
// heartbeat thread runs SCHED_FIFO (a warning if not permitted);
// cluster.lock_memory is the daemon's to apply, with LockMemory.
func (c *Cluster) Run(ctx context.Context) error {
	if !c.ran.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer close(c.events)
	links, err := c.openLinks()
	if err != nil {
		return err
	}
	var pinger Pinger
	if len(c.cl.PingNodes) > 0 {
		if pinger = c.opts.Pinger; pinger == nil {
			if pinger, err = newPinger(c.cl.PingNodes); err != nil {
				closeLinks(links)
				return fmt.Errorf("ping nodes: %w", err)
			}
		}
	}

	now := c.clock.Now()
	n := newNotifier(c.log, c.events)
	c.mu.Lock()
	c.m = c.newMachine(now)
	c.epoch = uint64(now.UnixNano())
	c.started = now
	c.running = true
	c.loopDone = make(chan struct{})
	c.note = n
	c.mu.Unlock()
	c.log.Info("cluster starting", "node", c.params.Self.Name, "role", RoleInit.String(),
		"links", len(links), "config_hash", c.hash.String())

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var nwg sync.WaitGroup
	nwg.Go(n.run)
	polled := c.canPoll(links)
	if !polled {
		for i, l := range links {
			wg.Go(func() { c.receive(ctx, i, l) })
		}
	}
	if pinger != nil {
		wg.Go(func() { c.pingLoop(ctx, pinger) })
	}
	if polled && c.opts.Links == nil {
		nsfd := currentNetns()
		wg.Go(func() { c.reopenLoop(ctx, nsfd) })
	}
	done := make(chan error, 1)
	go func() {
		// The heartbeat loop keeps its thread to itself and never unlocks
		// it: a thread given SCHED_FIFO dies with the goroutine instead of
		// returning to the pool.
		runtime.LockOSThread()
		var err error
		if polled {
			err = c.pollLoop(ctx, links)
		} else {
			err = c.loop(ctx, links)
		}
		c.mu.Lock()
		c.running = false
		c.mu.Unlock()
		close(c.loopDone)
		done <- err
	}()
	lerr := <-done
	cancel()
	closeLinks(links)
	if pinger != nil {
		pinger.Close()
	}
	wg.Wait()
	c.log.Info("cluster stopped", "node", c.params.Self.Name)
	n.stop()
	nwg.Wait()
	return lerr
}

// openLinks opens the configured links. One that cannot be opened (its
// interface missing, say) is replaced by a deadLink and retried by the
// reopener; only when none opens is that an error, since a node that
// hears nobody would make itself active.
func (c *Cluster) openLinks() ([]Link, error) {
	links := c.opts.Links
	if links == nil {
		var errs []error
		for i, l := range c.cl.Links {
			lk, err := openLink(l, c.cl.Port, c.key)
			if err != nil {
				errs = append(errs, err)
				c.links[i].setError(err)
				c.log.Error("heartbeat link not open; retrying every second", "link", l.Name, "err", err)
				lk = newDeadLink(err)
			}
			links = append(links, lk)
		}
		if len(errs) == len(links) {
			closeLinks(links)
			return nil, fmt.Errorf("no heartbeat link could be opened: %w", errors.Join(errs...))
		}
	}
	for _, l := range links {
		if d, ok := l.(dropReporter); ok {
			d.setDropFunc(c.drop)
		}
	}
	return links, nil
}

func closeLinks(links []Link) {
	for _, l := range links {
		l.Close()
	}
}

// startLoop prepares the heartbeat thread: real-time priority when
// configured, the sender, and the first heartbeat.
func (c *Cluster) startLoop(links []Link) *sender {
	if c.cl.Realtime {
		if err := SetRealtime(RealtimePriority); err != nil {
			c.log.Warn("heartbeat thread keeps normal scheduling", "err", err)
		} else {
			c.log.Info("heartbeat thread runs SCHED_FIFO", "priority", RealtimePriority)
		}
	}
	s := &sender{codec: NewCodec(c.key), rxCodec: NewCodec(c.key), buf: make([]byte, 0, MaxMessageLen),
		rxBuf: make([]byte, MaxMessageLen+1), links: slices.Clone(links), rl: &rateLog{every: 5 * time.Second}}
	c.s = s
	now := c.clock.Now()
	c.send(s, now)
	s.next = now.Add(c.params.Timers.Keepalive)
	return s
}

// tick runs one heartbeat tick at now: late-timer accounting, Machine.Tick,
// a heartbeat on every link, metrics, rate-limited logs; it advances
// s.next, skipping ticks that were missed.
func (c *Cluster) tick(s *sender, now time.Time) {
	ka := c.params.Timers.Keepalive
	if late := now.Sub(s.next); late > ka/2 {
		c.lateTimers.Add(1)
		c.met.lateTimers.Inc()
		s.rl.late(late)
	}
	c.handle(c.m.Tick(now))
	c.send(s, now)
	c.tickMetrics(now)
	c.rateLogs(s.rl, now)
	s.next = s.next.Add(ka)
	if t := c.clock.Now(); !s.next.After(t) {
		s.next = t.Add(ka) // skip the ticks we missed
	}
}

// goodbye sends the leaving heartbeat, twice on every link.
func (c *Cluster) goodbye(s *sender) {
	if c.noGoodbye.Load() {
		return
	}
	now := c.clock.Now()
	adv := c.m.Advert()
	adv.Role = RoleStandby
	adv.HandoverTo = 0
	adv.Flags = adv.Flags&^(FlagEligible|FlagTakeoverReq) | FlagLeaving | FlagYield
	c.transmit(s, now, adv)
	c.transmit(s, now, adv)
}

// loop is the portable heartbeat loop: Go timers, and receiver goroutines
// passing messages on rx. Run uses it for links it cannot poll itself
// (package clustertest) or with a Clock that is not RealClock.
func (c *Cluster) loop(ctx context.Context, links []Link) error {
	s := c.startLoop(links)
	timer := c.clock.NewTimer(c.params.Timers.Keepalive)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			c.goodbye(s)
			return nil
		case <-timer.C():
			// Heartbeats that arrived before the tick count before it: a
			// peer is never declared dead for messages waiting in rx.
			c.drainRx(s)
			c.tick(s, c.clock.Now())
			timer.Reset(s.next.Sub(c.clock.Now()))
		case r := <-c.rx:
			c.processRx(s, r)
		case fn := <-c.reqs:
			now := c.clock.Now()
			fn(now)
			c.sendIfChanged(s, now)
		case <-c.kick:
			c.sendIfChanged(s, c.clock.Now())
		}
	}
}

func (c *Cluster) drainRx(s *sender) {
	for {
		select {
		case r := <-c.rx:
			c.processRx(s, r)
		default:
			return
		}
	}
}

func (c *Cluster) processRx(s *sender, r rxMsg) {
	d, outs := c.m.Receive(r.at, r.link, &r.msg)
	if d != DropNone {
		c.drop(d)
	}
	c.handle(outs)
	c.sendIfChanged(s, c.clock.Now())
}

// drainReqs runs the closures exec queued; it reports whether there were
// any.
func (c *Cluster) drainReqs(now time.Time) bool {
	ran := false
	for {
		select {
		case fn := <-c.reqs:
			fn(now)
			ran = true
		default:
			return ran
		}
	}
}

// exec runs fn on the heartbeat loop, which owns the Machine while Run
// runs, and waits until it ran, with running true. When the loop is not
// running, fn runs in the caller under mu with running false (c.m is then
// nil before Run and the final Machine after it).
func (c *Cluster) exec(fn func(now time.Time, running bool)) {
	for {
		c.mu.Lock()
		if !c.running {
			fn(c.clock.Now(), false)
			c.mu.Unlock()
			return
		}
		loopDone := c.loopDone
		c.mu.Unlock()
		done := make(chan struct{})
		req := func(now time.Time) {
			fn(now, true)
			close(done)
		}
		select {
		case c.reqs <- req:
			c.poke()
			select {
			case <-done:
				return
			case <-loopDone:
				select {
				case <-done:
					return
				default: // the loop ended first: run it here
				}
			}
		case <-loopDone:
		}
	}
}

// decode checks the source of a message received on link i and
// authenticates it into msg; it counts what it drops.
func (c *Cluster) decode(codec *Codec, i int, b []byte, from netip.Addr, msg *Message) bool {
	if p := c.cl.Links[i].Peer; p.IsValid() && from.IsValid() && from != p.Unmap() {
		c.drop(DropSource)
		return false
	}
	if err := codec.Unmarshal(b, msg); err != nil {
		switch {
		case errors.Is(err, ErrAuth):
			c.drop(DropAuth)
		case errors.Is(err, ErrVersion):
			c.drop(DropVersion)
		default:
			c.drop(DropMalformed)
		}
		return false
	}
	c.links[i].recv.Add(1)
	c.recvC[i].Inc()
	return true
}

// sender is the heartbeat loop's own state; only the loop uses it.
type sender struct {
	codec   *Codec
	rxCodec *Codec // for links the loop reads itself
	buf     []byte
	rxBuf   []byte
	links   []Link // replaced in place by the reopener (gen counts changes)
	gen     int
	next    time.Time // when the next tick is due
	rl      *rateLog
}

// sendIfChanged sends a heartbeat when the advert changed since the last.
func (c *Cluster) sendIfChanged(s *sender, now time.Time) {
	if c.m.Advert() != c.lastAdvert {
		c.send(s, now)
	}
}

func (c *Cluster) send(s *sender, now time.Time) {
	adv := c.m.Advert()
	c.lastAdvert = adv
	c.transmit(s, now, adv)
}

func (c *Cluster) transmit(s *sender, now time.Time, adv Advert) {
	c.seq++
	msg := Message{NodeID: c.params.Self.NodeID, Epoch: c.epoch, Seq: c.seq,
		Uptime: max(now.Sub(c.started), 0), SendTime: now.UnixNano()}
	adv.Fill(&msg)
	b, err := s.codec.Marshal(s.buf[:0], &msg)
	if err != nil {
		c.note.write(slog.LevelError, "heartbeat not encodable (bug)", "err", err)
		return
	}
	for i, l := range s.links {
		if err := l.Send(b); err != nil {
			if err == errSkipped {
				continue
			}
			c.links[i].errs.Add(1)
			c.errC[i].Inc()
			c.links[i].setError(err)
			if _, dead := l.(*deadLink); !dead && isGone(err) {
				// The device went away: the socket is bound to an
				// interface index that will not come back.
				l.Close()
				s.links[i] = newDeadLink(err)
				s.gen++
				c.note.write(slog.LevelWarn, "heartbeat link lost its device; reopening", "link", c.cl.Links[i].Name, "err", err)
			}
			continue
		}
		c.links[i].sent.Add(1)
		c.sentC[i].Inc()
	}
}

func (c *Cluster) drop(r DropReason) {
	c.drops[r].Add(1)
	if c.met.dropC[r] != nil {
		c.met.dropC[r].Inc()
	}
}

// handle turns Machine outputs into events, log lines and metrics.
func (c *Cluster) handle(outs []Output) {
	if c.m != nil && c.m.stalls != c.stalls {
		c.met.stalls.Add(float64(c.m.stalls - c.stalls))
		c.stalls = c.m.stalls
	}
	for _, o := range outs {
		switch o.Kind {
		case OutRole:
			now := c.clock.Now()
			ev := RoleEvent{Role: o.Role, From: o.From, Reason: o.Reason, Quiet: o.Quiet,
				Reannounce: o.Reannounce, At: now, Detected: o.At}
			msg := "cluster role changed"
			if o.Reannounce {
				msg = "announcing addresses again"
			} else {
				c.lastTrans = &TransitionStatus{
					Transition: Transition{From: o.From, To: o.Role, Reason: o.Reason, Quiet: o.Quiet, At: now},
					Detected:   o.At, Emitted: now,
				}
				c.met.transitions.WithLabelValues(o.Role.String()).Inc()
				c.met.setRole(o.Role)
				c.role.Store(uint32(o.Role))
			}
			c.note.event(ev, msg, "role", o.Role.String(), "previous_role", o.From.String(),
				"reason", o.Reason, "quiet", o.Quiet, "took", now.Sub(o.At).String())
		case OutWarning:
			if o.Peer != "" && o.Link != "" {
				c.met.linkWarnings.WithLabelValues(o.Peer, o.Link).Inc()
			}
			c.note.write(slog.LevelWarn, o.Reason, attrs(o)...)
		case OutNotice:
			c.note.write(slog.LevelInfo, o.Reason, attrs(o)...)
		}
	}
}

func attrs(o Output) []any {
	var a []any
	if o.Peer != "" {
		a = append(a, "peer", o.Peer)
	}
	if o.Link != "" {
		a = append(a, "link", o.Link)
	}
	return a
}

func (c *Cluster) tickMetrics(now time.Time) {
	for pi, p := range c.m.peers {
		v := 0.0
		if p.state == peerAlive {
			v = 1
		}
		c.gAlive[pi].Set(v)
		for li := range c.params.Links {
			v := 0.0
			if c.m.linkUp(now, pi, li) {
				v = 1
			}
			c.gLinkUp[pi][li].Set(v)
		}
	}
}

// poke wakes the loop to send a heartbeat if the advert changed.
func (c *Cluster) poke() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
	c.wakeMu.Lock()
	if c.wake != nil {
		c.wake()
	}
	c.wakeMu.Unlock()
}

// receive reads one link until it is closed (portable loop only).
func (c *Cluster) receive(ctx context.Context, i int, l Link) {
	codec := NewCodec(c.key)
	buf := make([]byte, MaxMessageLen+1)
	for {
		n, from, err := l.Recv(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			e := "receive: " + err.Error()
			c.links[i].lastErr.Store(&e)
			if !sleepCtx(ctx, c.clock, 10*time.Millisecond) {
				return
			}
			continue
		}
		r := rxMsg{link: i, at: c.clock.Now()}
		if !c.decode(codec, i, buf[:n], from, &r.msg) {
			continue
		}
		select {
		case c.rx <- r:
		default:
			c.drop(DropQueueFull)
		}
	}
}

func sleepCtx(ctx context.Context, clock Clock, d time.Duration) bool {
	t := clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C():
		return true
	}
}

// pingLoop probes the ping nodes every PingInterval.
func (c *Cluster) pingLoop(ctx context.Context, p Pinger) {
	targets := c.cl.PingNodes
	tr := newPingTracker(len(targets))
	interval := c.opts.PingInterval
	var lastErr time.Time
	for {
		start := c.clock.Now()
		res, err := p.Probe(ctx, targets, interval/2)
		if ctx.Err() != nil {
			return
		}
		n := tr.update(res)
		c.exec(func(now time.Time, running bool) {
			if err != nil && start.Sub(lastErr) > time.Minute {
				lastErr = start
				c.note.write(slog.LevelWarn, "ping probe failed", "err", err)
			}
			for i := range c.pingUp {
				c.pingUp[i] = tr.reachable(i)
			}
			c.met.pingReach.Set(float64(n))
			if running {
				c.handle(c.m.SetPingReachable(now, n))
			}
		})
		if !sleepCtx(ctx, c.clock, max(interval-c.clock.Now().Sub(start), 0)) {
			return
		}
	}
}

// Standby hands this node's active role to the best healthy peer (see
// Machine.Standby): it returns when the handover is decided, before the
// peer confirms. It fails with ErrNoEligiblePeer (nothing changed; the
// text reads "standby refused: no eligible peer ...: <why per peer>") or
// ErrNotRunning. On a node that is not active it sets the operator's
// standby preference.
func (c *Cluster) Standby() error {
	err := ErrNotRunning
	c.exec(func(now time.Time, running bool) {
		if running {
			var outs []Output
			outs, err = c.m.Standby(now)
			c.handle(outs)
		}
	})
	switch {
	case errors.Is(err, ErrNoEligiblePeer):
		return fmt.Errorf("standby refused: %w", err)
	case err != nil:
		return fmt.Errorf("standby: %w", err)
	}
	return nil
}

// Takeover makes this node active: at once when no peer is active, else by
// asking the active peer to hand over (the RoleEvent follows on Events; a
// request the peer does not answer lapses after deadtime and is logged).
// It fails with ErrMaintenance, ErrNotEligible or ErrNotRunning.
func (c *Cluster) Takeover() error {
	err := ErrNotRunning
	c.exec(func(now time.Time, running bool) {
		if running {
			var outs []Output
			outs, err = c.m.Takeover(now)
			c.handle(outs)
		}
	})
	if err != nil {
		return fmt.Errorf("takeover: %w", err)
	}
	return nil
}

// SetCarrier reports the carrier of an interface (the daemon calls it from
// linkmon events, including the initial state). Only interfaces listed in
// cluster.monitor count; carrier is assumed up until reported. It may be
// called before Run.
func (c *Cluster) SetCarrier(iface string, up bool) {
	c.mu.Lock()
	c.carrier[iface] = up
	c.mu.Unlock()
	c.exec(func(now time.Time, running bool) {
		if running {
			c.handle(c.m.SetCarrier(now, iface, up))
		}
	})
}

// SetMaintenance switches maintenance mode (see Machine.SetMaintenance).
// It may be called before Run.
func (c *Cluster) SetMaintenance(on bool) {
	c.mu.Lock()
	c.maint = on
	c.mu.Unlock()
	c.exec(func(now time.Time, running bool) {
		if running {
			c.handle(c.m.SetMaintenance(now, on))
		}
	})
}

// Status returns a snapshot. Before Run it shows the configured node in
// RoleInit.
func (c *Cluster) Status() Status {
	var st Status
	c.exec(func(now time.Time, _ bool) { st = c.status(now) })
	return st
}

func (c *Cluster) status(now time.Time) Status {
	m := c.m
	if m == nil {
		m = c.newMachine(now)
	}
	st := m.Status(now)
	if c.lastTrans != nil {
		t := *c.lastTrans
		st.LastTransition = &t
	}
	if c.epoch != 0 {
		st.Epoch, st.Started = c.epoch, c.started
	} else {
		st.Started = time.Time{}
	}
	st.LateTimers = c.lateTimers.Load()
	st.Drops = map[string]uint64{}
	for r := DropReason(1); r < numDropReasons; r++ {
		st.Drops[r.String()] = c.drops[r].Load()
	}
	for i := range c.links {
		l := &c.links[i]
		ls := LinkStatus{Name: l.name, Kind: l.kind, Open: true, Sent: l.sent.Load(), SendErrors: l.errs.Load(), Received: l.recv.Load()}
		if c.s != nil {
			_, dead := c.s.links[i].(*deadLink)
			ls.Open = !dead
		}
		if e := l.lastErr.Load(); e != nil {
			ls.LastError = *e
		}
		st.Links = append(st.Links, ls)
	}
	for i, a := range c.cl.PingNodes {
		st.PingTargets = append(st.PingTargets, PingTarget{Addr: a, Reachable: c.pingUp[i]})
	}
	return st
}

// rateLog limits repeated warnings to one line per period.
type rateLog struct {
	every   time.Duration
	last    time.Time
	lates   uint64
	maxLate time.Duration
	drops   [numDropReasons]uint64
	errs    []uint64
}

func (r *rateLog) late(d time.Duration) {
	r.lates++
	r.maxLate = max(r.maxLate, d)
}

// rateLogs writes the rate-limited lines: late timers, drops by reason,
// send errors per link.
func (c *Cluster) rateLogs(r *rateLog, now time.Time) {
	if now.Sub(r.last) < r.every {
		return
	}
	r.last = now
	if r.lates > 0 {
		c.note.write(slog.LevelWarn, "heartbeat timer late", "count", r.lates, "max_late", fmtDur(r.maxLate))
		r.lates, r.maxLate = 0, 0
	}
	var drops []string
	for i := DropReason(1); i < numDropReasons; i++ {
		if v := c.drops[i].Load(); v != r.drops[i] {
			drops = append(drops, fmt.Sprintf("%s=%d", i, v-r.drops[i]))
			r.drops[i] = v
		}
	}
	if len(drops) > 0 {
		c.note.write(slog.LevelWarn, "heartbeats dropped", "drops", strings.Join(drops, " "))
	}
	if r.errs == nil {
		r.errs = make([]uint64, len(c.links))
	}
	for i := range c.links {
		if v := c.links[i].errs.Load(); v != r.errs[i] {
			e := ""
			if p := c.links[i].lastErr.Load(); p != nil {
				e = *p
			}
			c.note.write(slog.LevelWarn, "heartbeat send failed", "link", c.links[i].name, "count", v-r.errs[i], "err", e)
			r.errs[i] = v
		}
	}
}

// PingTarget is one ping node's reachability.
type PingTarget struct {
	Addr      netip.Addr `json:"addr"`
	Reachable bool       `json:"reachable"`
}

// notifier writes log lines and delivers events off the heartbeat path.
type notifier struct {
	log    *slog.Logger
	events chan<- RoleEvent

	mu      sync.Mutex // guards q, stopped, dropped
	q       []note
	stopped bool
	dropped int
	wake    chan struct{}
	quit    chan struct{} // closed by stop
}

type note struct {
	ev    *RoleEvent
	level slog.Level
	msg   string
	attrs []any
}

const maxNotes = 1024

func newNotifier(log *slog.Logger, events chan<- RoleEvent) *notifier {
	return &notifier{log: log, events: events, wake: make(chan struct{}, 1), quit: make(chan struct{})}
}

func (n *notifier) push(x note) {
	n.mu.Lock()
	if x.ev == nil && len(n.q) >= maxNotes {
		n.dropped++ // log lines only; events are never dropped
	} else {
		n.q = append(n.q, x)
	}
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

func (n *notifier) write(level slog.Level, msg string, attrs ...any) {
	if n == nil {
		return
	}
	n.push(note{level: level, msg: msg, attrs: attrs})
}

func (n *notifier) event(ev RoleEvent, msg string, attrs ...any) {
	if n == nil {
		return
	}
	n.push(note{ev: &ev, level: slog.LevelInfo, msg: msg, attrs: attrs})
}

func (n *notifier) stop() {
	n.mu.Lock()
	n.stopped = true
	n.mu.Unlock()
	close(n.quit)
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

func (n *notifier) run() {
	for range n.wake {
		n.mu.Lock()
		q, stopped, dropped := n.q, n.stopped, n.dropped
		n.q, n.dropped = nil, 0
		n.mu.Unlock()
		if dropped > 0 {
			n.log.Warn("cluster log lines dropped (log sink too slow)", "count", dropped)
		}
		for _, x := range q {
			n.log.Log(context.Background(), x.level, x.msg, x.attrs...)
			if x.ev == nil {
				continue
			}
			select {
			case n.events <- *x.ev:
			case <-n.quit:
				select { // Run is ending: deliver if there is room
				case n.events <- *x.ev:
				default:
				}
			}
		}
		if stopped {
			return
		}
	}
}
