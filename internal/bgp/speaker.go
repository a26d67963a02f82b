package bgp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/havpn/havpn/internal/config"
	"github.com/havpn/havpn/internal/fib"
	"github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
	"github.com/prometheus/client_golang/prometheus"
)

// RouteSource reads the kernel routes that redistribution announces.
// fib.Netlink implements it.
type RouteSource interface {
	// Routes lists every route of protocol proto in table.
	Routes(table uint32, proto uint8) ([]fib.Route, error)
	// Addrs lists the addresses on the box with their prefix lengths.
	Addrs() ([]netip.Prefix, error)
	// WatchRoutes calls changed (which must not block) on every route or
	// address change except routes of protocol ignore, until ctx is done.
	WatchRoutes(ctx context.Context, ignore uint8, changed func()) error
}

// LinkWatcher reports interfaces going down. fib.Netlink implements it.
type LinkWatcher interface {
	// WatchLinkDown calls down with the prefixes of an interface's
	// addresses (and point-to-point peers) each time it loses its carrier,
	// is set down or deleted, until ctx is done.
	WatchLinkDown(ctx context.Context, down func(prefixes []netip.Prefix)) error
}

// Options are a Speaker's dependencies and knobs. The zero value is
// usable: netlink in the process's namespace, no metrics, no logs.
type Options struct {
	// Log receives the speaker's own messages (component=bgp); nil
	// discards.
	Log *slog.Logger
	// GoBGPLevel is the level of GoBGP's own log lines (logged to Log with
	// component=gobgp and GoBGP's keys); nil means warnings and errors.
	GoBGPLevel *slog.LevelVar
	// Registerer gets the havpn_bgp_* and havpn_fib_* collectors; nil means
	// no metrics.
	Registerer prometheus.Registerer
	// Kernel is where best paths are installed; nil opens fib.NewNetlink
	// in the process's namespace (closed by Close).
	Kernel fib.Kernel
	// Source is where redistributed routes are read; nil uses Kernel when
	// it is a RouteSource (fib.Netlink is).
	Source RouteSource
	// Links tells which interfaces go down, so that sessions with
	// neighbors on them are reset at once rather than after the hold time
	// (like FRR's fast-external-failover, for iBGP too); nil uses Kernel
	// when it is a LinkWatcher (fib.Netlink is), else sessions end on the
	// hold timer.
	Links LinkWatcher
	// Metric is the priority of installed routes; 0 means fib.DefaultMetric.
	Metric uint32
	// StaleTime bounds how long routes left in the kernel by an earlier run
	// wait to be learned again before they are removed; 0 means 60s.
	StaleTime time.Duration
	// ConnectRetry is the interval between connection attempts to a
	// neighbor; 0 means 5s (GoBGP's default is 120s).
	ConnectRetry time.Duration
	// PeerPort is the TCP port of the neighbors; 0 means 179. For tests
	// that run several speakers on one host.
	PeerPort uint16
	// ListenAddresses restricts the listener (bgp.listen_port) to these
	// addresses; nil listens on all. LocalAddress, if valid, is the source
	// address of outgoing sessions. For tests on loopback.
	ListenAddresses []netip.Addr
	LocalAddress    netip.Addr
	// Debounce is how long kernel changes are collected before
	// redistribution and connected-route checks look again; 0 means 100ms.
	Debounce time.Duration
	// Inherited returns, at each Start, the routes the previous active
	// node had installed (from state sync); nil or empty means none. They
	// go into the kernel before the sessions come up, so forwarding goes
	// on, and the speaker then restarts gracefully (RFC 4724 restarting
	// speaker: Restart State and Forwarding State bits set towards
	// graceful-restart neighbors, which keep our routes meanwhile).
	Inherited func() []fib.Route
	// HandOver makes Stop leave our routes with graceful-restart
	// neighbors: no withdrawal, and the sessions end with a Cease
	// (Administrative Reset) that a neighbor which negotiated RFC 8538's
	// N bit treats as a restart, keeping our routes as stale until the
	// node taking over has its session up. For a node in a cluster;
	// without it (a node shutting down for good) Stop withdraws.
	HandOver bool
}

// Speaker is the embedded BGP speaker. All methods are safe for concurrent
// use; Start, Stop and Close are serialized.
type Speaker struct {
	cfg     *config.BGP
	o       Options
	log     *slog.Logger // component=bgp
	baseLog *slog.Logger // Options.Log or a discarding logger
	lists   map[string]prefixList
	kern    fib.Kernel
	src     RouteSource
	links   LinkWatcher
	ownKern io.Closer // the kernel handle New opened, or nil
	fib     *fib.Reconciler
	m       *metrics

	life   sync.Mutex               // serializes Start, Stop and Close; guards closed
	closed bool                     //
	cur    atomic.Pointer[session]  // the running session, nil when stopped
	peers  map[netip.Addr]*peerStat // per configured neighbor; fixed after New
}

// New checks cfg and builds a stopped Speaker. It opens a netlink handle
// when Options.Kernel is nil; Close releases it.
func New(cfg *config.BGP, o Options) (*Speaker, error) {
	if cfg == nil {
		return nil, errors.New("bgp: no bgp section in config")
	}
	if !cfg.RouterID.Is4() {
		return nil, fmt.Errorf("bgp: router id %s: not an IPv4 address", cfg.RouterID)
	}
	lists := newPrefixLists(cfg.PrefixLists)
	for _, r := range cfg.Redistribute {
		if _, ok := lists[r.PrefixList]; r.PrefixList != "" && !ok {
			return nil, fmt.Errorf("bgp: redistribute %s: prefix list %q: %w", r.Source, r.PrefixList, ErrNoPrefixList)
		}
	}
	if _, _, _, err := policies(cfg); err != nil {
		return nil, fmt.Errorf("bgp: %w", err)
	}
	s := &Speaker{cfg: cfg, o: o, log: o.Log, lists: lists, kern: o.Kernel, src: o.Source, links: o.Links}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.baseLog = s.log
	s.log = s.log.With("component", "bgp")
	if s.o.StaleTime == 0 {
		s.o.StaleTime = 60 * time.Second
	}
	if s.o.ConnectRetry == 0 {
		s.o.ConnectRetry = 5 * time.Second
	}
	if s.o.Debounce == 0 {
		s.o.Debounce = 100 * time.Millisecond
	}
	s.peers = make(map[netip.Addr]*peerStat, len(cfg.Neighbors))
	for _, n := range cfg.Neighbors {
		s.peers[n.Address] = &peerStat{}
	}
	m, err := newMetrics(o.Registerer, s)
	if err != nil {
		return nil, err
	}
	s.m = m
	if s.kern == nil {
		k, err := fib.NewNetlink(fib.NetlinkOptions{})
		if err != nil {
			return nil, fmt.Errorf("bgp: %w", err)
		}
		s.kern, s.ownKern = k, k
	}
	if s.src == nil {
		if rs, ok := s.kern.(RouteSource); ok {
			s.src = rs
		}
	}
	if s.links == nil {
		if lw, ok := s.kern.(LinkWatcher); ok {
			s.links = lw
		}
	}
	if len(cfg.Redistribute) > 0 && s.src == nil {
		s.closeKernel()
		return nil, fmt.Errorf("bgp: %w", ErrNoRouteSource)
	}
	r, err := fib.New(s.kern, cfg.FIB, fib.Options{Log: s.baseLog.With("component", "fib"), Registerer: o.Registerer, Metric: o.Metric, Debounce: s.o.Debounce})
	if err != nil {
		s.closeKernel()
		return nil, fmt.Errorf("bgp: %w", err)
	}
	s.fib = r
	return s, nil
}

func (s *Speaker) closeKernel() {
	if s.ownKern != nil {
		s.ownKern.Close()
		s.ownKern = nil
	}
}

// session is one Start..Stop lifetime of the speaker.
type session struct {
	srv     *server.BgpServer
	cancel  context.CancelFunc // stops the goroutines below and the watch
	wg      sync.WaitGroup     // the goroutines of this session
	served  chan struct{}      // closed when the server goroutine returned
	feed    *feed
	redist  *redistributor
	started time.Time

	// restarting: this start inherited routes and restarts gracefully;
	// GoBGP then selects best paths only after every End-of-RIB, so
	// End-of-RIB cannot trigger the stale sweep (the quiet period does).
	restarting bool

	eorMu   sync.Mutex // guards eorFrom and swept
	eorFrom map[netip.Addr]bool
	swept   bool
}

// Running reports whether the speaker is started.
func (s *Speaker) Running() bool { return s.cur.Load() != nil }

// Start starts the speaker; see the package doc for what it does. Starting
// a running speaker does nothing. On error everything started is undone.
// ctx bounds the start itself, not the speaker's lifetime.
func (s *Speaker) Start(ctx context.Context) error {
	s.life.Lock()
	defer s.life.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.cur.Load() != nil {
		return nil
	}
	ss, err := s.start(ctx)
	if err != nil {
		return fmt.Errorf("starting bgp: %w", err)
	}
	s.cur.Store(ss)
	s.m.running.Set(1)
	s.log.Info("bgp started", "asn", s.cfg.ASN, "router_id", s.cfg.RouterID, "neighbors", len(s.cfg.Neighbors))
	return nil
}

func (s *Speaker) start(ctx context.Context) (_ *session, err error) {
	passwords := make(map[netip.Addr]string)
	for _, n := range s.cfg.Neighbors {
		if n.PasswordFile == "" {
			continue
		}
		b, err := os.ReadFile(n.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("neighbor %s: reading password: %w", n.Address, err)
		}
		passwords[n.Address] = strings.TrimRight(string(b), "\r\n")
	}
	restarting := s.inherit()
	if err := s.fib.Adopt(); err != nil {
		// Refused deletes of leftovers are not fatal: they are retried.
		s.log.Warn("adopting routes of an earlier run", "err", err)
	}

	lvl := s.o.GoBGPLevel
	if lvl == nil {
		lvl = new(slog.LevelVar)
		lvl.Set(slog.LevelWarn)
	}
	srv := server.NewBgpServer(server.LoggerOption(s.baseLog.With("component", "gobgp"), lvl))
	rctx, cancel := context.WithCancel(context.Background())
	ss := &session{srv: srv, cancel: cancel, served: make(chan struct{}), started: time.Now(), eorFrom: make(map[netip.Addr]bool), restarting: restarting}
	go func() {
		defer close(ss.served)
		srv.Serve()
	}()
	defer func() {
		if err != nil {
			_ = s.teardown(context.WithoutCancel(ctx), ss)
		}
	}()

	global := &api.Global{
		Asn:              s.cfg.ASN,
		RouterId:         s.cfg.RouterID.String(),
		ListenPort:       s.cfg.ListenPort,
		UseMultiplePaths: s.cfg.FIB.Multipath,
	}
	for _, a := range s.o.ListenAddresses {
		global.ListenAddresses = append(global.ListenAddresses, a.String())
	}
	if err := srv.StartBgp(ctx, &api.StartBgpRequest{Global: global}); err != nil {
		return nil, fmt.Errorf("starting gobgp: %w", err)
	}
	if err := s.setPolicies(ctx, srv); err != nil {
		return nil, err
	}

	ss.feed = newFeed(s.cfg.FIB.Multipath)
	err = srv.WatchEvent(rctx, server.WatchEventMessageCallbacks{
		OnBestPath:   ss.feed.onBestPath,
		OnPeerUpdate: func(ev *apiutil.WatchEventMessage_PeerEvent, at time.Time) { s.onPeer(ev, at) },
		OnPathEor:    func(p *apiutil.Path, _ time.Time) { s.onEOR(ss, p) },
	}, server.WatchBestPath(true), server.WatchPeer(), server.WatchEor(true))
	if err != nil {
		return nil, fmt.Errorf("watching gobgp: %w", err)
	}
	ss.wg.Add(2)
	go func() {
		defer ss.wg.Done()
		s.runFeed(rctx, ss)
	}()
	go func() {
		defer ss.wg.Done()
		if err := s.fib.Run(rctx); err != nil {
			s.log.Warn("watching connected routes", "err", err)
		}
	}()

	for _, n := range s.cfg.Neighbors {
		if err := srv.AddPeer(ctx, &api.AddPeerRequest{Peer: s.peer(n, passwords[n.Address], restarting)}); err != nil {
			return nil, fmt.Errorf("adding neighbor %s: %w", n.Address, err)
		}
	}

	if err := announce(srv, s.cfg.Networks); err != nil {
		return nil, fmt.Errorf("announcing networks: %w", err)
	}
	if len(s.cfg.Redistribute) > 0 {
		ss.redist = newRedistributor(s.cfg, s.lists, s.src, s.log)
		if err := ss.redist.sync(srv); err != nil {
			s.log.Warn("redistributing kernel routes", "err", err)
		}
		ss.wg.Add(1)
		go func() {
			defer ss.wg.Done()
			ss.redist.run(rctx, srv, s.o.Debounce)
		}()
	}
	ss.wg.Add(1)
	go func() {
		defer ss.wg.Done()
		s.staleTimer(rctx, ss)
	}()
	if s.links != nil && len(s.cfg.Neighbors) > 0 {
		ss.wg.Add(1)
		go func() {
			defer ss.wg.Done()
			err := s.links.WatchLinkDown(rctx, func(ps []netip.Prefix) { s.onLinkDown(rctx, ss, ps) })
			if err != nil {
				s.log.Warn("watching links; sessions on a dead link end only on their hold timer", "err", err)
			}
		}()
	}
	return ss, nil
}

// inherit installs the routes handed over by the previous active node and
// reports whether there were any (then this start is a graceful restart).
func (s *Speaker) inherit() bool {
	if s.o.Inherited == nil {
		return false
	}
	rs := s.o.Inherited()
	if len(rs) == 0 {
		return false
	}
	n, err := s.fib.Inherit(rs)
	if err != nil {
		s.log.Warn("installing routes handed over by the previous active", "err", err)
	}
	s.log.Info("installed routes handed over by the previous active; restarting gracefully", "routes", n, "offered", len(rs))
	return n > 0
}

// grRestartTime is how long a graceful-restart neighbor keeps our routes
// after the session is lost (the Restart Time we advertise), and
// grDeferral how long a restarting speaker waits for every neighbor's
// End-of-RIB before it selects and sends routes anyway.
const (
	grRestartTime = 120
	grDeferral    = 10
)

// peer builds GoBGP's neighbor config for n; restarting sets the Restart
// State bit (and, in GoBGP, the Forwarding State bit of every family).
func (s *Speaker) peer(n config.Neighbor, password string, restarting bool) *api.Peer {
	p := &api.Peer{
		Conf: &api.PeerConf{
			NeighborAddress: n.Address.String(),
			PeerAsn:         n.RemoteAS,
			AuthPassword:    password,
		},
		Timers: &api.Timers{Config: &api.TimersConfig{
			ConnectRetry:           uint64(max(s.o.ConnectRetry/time.Second, 1)),
			HoldTime:               uint64(n.HoldTime.D() / time.Second),
			KeepaliveInterval:      uint64(n.Keepalive.D() / time.Second),
			IdleHoldTimeAfterReset: 1,
		}},
		Transport: &api.Transport{
			PassiveMode: n.Passive,
			RemotePort:  uint32(s.o.PeerPort),
		},
	}
	if s.o.LocalAddress.IsValid() {
		p.Transport.LocalAddress = s.o.LocalAddress.String()
	}
	for _, f := range []*api.Family{
		{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST},
		{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST},
	} {
		a := &api.AfiSafi{Config: &api.AfiSafiConfig{Family: f, Enabled: true}}
		if n.GracefulRestart {
			a.MpGracefulRestart = &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: true}}
		}
		p.AfiSafis = append(p.AfiSafis, a)
	}
	if n.GracefulRestart {
		// Both roles: keep a restarting peer's routes (as stale) until it
		// is back or its restart time is over, and list our families so
		// that the peer keeps ours when this node dies and the standby
		// takes over with the routes it inherited.
		p.GracefulRestart = &api.GracefulRestart{
			Enabled: true, RestartTime: grRestartTime, DeferralTime: grDeferral, LocalRestarting: restarting,
			NotificationEnabled: true, // RFC 8538: a Cease other than Hard Reset is a restart
		}
	}
	return p
}

// setPolicies installs the prefix-list and next-hop-self policies.
func (s *Speaker) setPolicies(ctx context.Context, srv *server.BgpServer) error {
	sets, imp, exp, err := policies(s.cfg)
	if err != nil {
		return err
	}
	for _, ds := range sets {
		if err := srv.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: ds}); err != nil {
			return fmt.Errorf("defining set %s: %w", ds.Name, err)
		}
	}
	for _, a := range []struct {
		pol *api.Policy
		dir api.PolicyDirection
	}{{imp, api.PolicyDirection_POLICY_DIRECTION_IMPORT}, {exp, api.PolicyDirection_POLICY_DIRECTION_EXPORT}} {
		if len(a.pol.Statements) == 0 {
			continue
		}
		if err := srv.AddPolicy(ctx, &api.AddPolicyRequest{Policy: a.pol}); err != nil {
			return fmt.Errorf("defining policy %s: %w", a.pol.Name, err)
		}
		err := srv.AddPolicyAssignment(ctx, &api.AddPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
			Name:          "global",
			Direction:     a.dir,
			Policies:      []*api.Policy{{Name: a.pol.Name}},
			DefaultAction: api.RouteAction_ROUTE_ACTION_ACCEPT,
		}})
		if err != nil {
			return fmt.Errorf("assigning policy %s: %w", a.pol.Name, err)
		}
	}
	return nil
}

// localPath is a locally originated path for p (a network or a
// redistributed route); the unspecified next hop becomes the session's
// local address when GoBGP sends it.
func localPath(p netip.Prefix, withdraw bool) (*apiutil.Path, error) {
	nlri, err := bgp.NewIPAddrPrefix(p)
	if err != nil {
		return nil, fmt.Errorf("prefix %s: %w", p, err)
	}
	origin := bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP)
	if p.Addr().Is4() {
		nh, _ := bgp.NewPathAttributeNextHop(netip.IPv4Unspecified())
		return &apiutil.Path{Family: bgp.RF_IPv4_UC, Nlri: nlri, Attrs: []bgp.PathAttributeInterface{origin, nh}, Withdrawal: withdraw}, nil
	}
	mp, err := bgp.NewPathAttributeMpReachNLRI(bgp.RF_IPv6_UC, []bgp.PathNLRI{{NLRI: nlri}}, netip.IPv6Unspecified())
	if err != nil {
		return nil, fmt.Errorf("prefix %s: %w", p, err)
	}
	return &apiutil.Path{Family: bgp.RF_IPv6_UC, Nlri: nlri, Attrs: []bgp.PathAttributeInterface{origin, mp}, Withdrawal: withdraw}, nil
}

// announce adds local paths for ps.
func announce(srv *server.BgpServer, ps []netip.Prefix) error {
	if len(ps) == 0 {
		return nil
	}
	paths := make([]*apiutil.Path, 0, len(ps))
	for _, p := range ps {
		lp, err := localPath(p, false)
		if err != nil {
			return err
		}
		paths = append(paths, lp)
	}
	_, err := srv.AddPath(apiutil.AddPathRequest{Paths: paths})
	return err
}

// withdraw deletes the local paths for ps.
func withdraw(srv *server.BgpServer, ps []netip.Prefix) error {
	if len(ps) == 0 {
		return nil
	}
	paths := make([]*apiutil.Path, 0, len(ps))
	for _, p := range ps {
		lp, err := localPath(p, true)
		if err != nil {
			return err
		}
		paths = append(paths, lp)
	}
	return srv.DeletePath(apiutil.DeletePathRequest{Paths: paths})
}

// Stop withdraws everything announced (with Options.HandOver: leaves it to
// graceful-restart neighbors, see there), closes the sessions, stops GoBGP
// and deletes the routes installed in the kernel. Stopping a stopped
// speaker does nothing. When ctx ends first, Stop returns its error after
// still removing the kernel routes; GoBGP finishes stopping on its own.
func (s *Speaker) Stop(ctx context.Context) error {
	s.life.Lock()
	defer s.life.Unlock()
	ss := s.cur.Load()
	if ss == nil {
		return nil
	}
	s.cur.Store(nil)
	s.m.running.Set(0)
	err := s.teardown(ctx, ss)
	if err != nil {
		return fmt.Errorf("stopping bgp: %w", err)
	}
	s.log.Info("bgp stopped")
	return nil
}

// teardown undoes a (possibly partial) start.
func (s *Speaker) teardown(ctx context.Context, ss *session) error {
	var errs []error
	if s.o.HandOver {
		s.handOver(ctx, ss)
	} else if err := s.withdrawAll(ctx, ss); err != nil {
		errs = append(errs, err)
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		ss.srv.Stop() // Cease NOTIFICATION to every peer, close the listener
	}()
	select {
	case <-stopped:
		<-ss.served
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("waiting for gobgp to stop: %w", ctx.Err()))
	}
	ss.cancel()
	ss.wg.Wait()
	if err := s.fib.Flush(); err != nil {
		errs = append(errs, err)
	}
	for _, st := range s.peers {
		st.reset()
	}
	return errors.Join(errs...)
}

// withdrawAll withdraws everything we announce, so that peers drop our
// routes at once even when they would keep them as stale across a
// session loss (graceful restart).
func (s *Speaker) withdrawAll(ctx context.Context, ss *session) error {
	if err := ss.srv.DeletePath(apiutil.DeletePathRequest{DeleteAll: true}); err != nil {
		if strings.Contains(err.Error(), "hasn't started") {
			return nil
		}
		return fmt.Errorf("withdrawing routes: %w", err)
	}
	// GoBGP sends updates from per-peer goroutines; give them a moment
	// before the sessions are closed.
	select {
	case <-ctx.Done():
	case <-time.After(100 * time.Millisecond):
	}
	return nil
}

// handOver ends the established sessions with a Cease (Administrative
// Reset) and waits, at most a second, until they are down: stopping GoBGP
// with a session still up would send Peer De-configured, which GoBGP
// turns into a Hard Reset, and the neighbor would drop our routes.
func (s *Speaker) handOver(ctx context.Context, ss *session) {
	for _, n := range s.cfg.Neighbors {
		if !s.peers[n.Address].up.Load() {
			continue
		}
		err := ss.srv.ResetPeer(ctx, &api.ResetPeerRequest{Address: n.Address.String(), Communication: "handing over to the standby"})
		if err != nil {
			s.log.Warn("ending session for the handover", "peer", n.Address, "err", err)
		}
	}
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		up := false
		for _, st := range s.peers {
			up = up || st.up.Load()
		}
		if !up {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Run starts the speaker, keeps it running until ctx is done, then stops
// it (with 10s for the withdrawals). It is for bgp.always_on; a speaker
// driven as a resource uses Start and Stop instead.
func (s *Speaker) Run(ctx context.Context) error {
	if err := s.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return s.Stop(sctx)
}

// Close stops the speaker if it runs (allowing 10s for that) and releases
// the netlink handle New opened. It is idempotent.
func (s *Speaker) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := s.Stop(ctx)
	s.life.Lock()
	defer s.life.Unlock()
	if !s.closed {
		s.closed = true
		s.closeKernel()
	}
	return err
}

// onLinkDown resets the sessions with neighbors on a link that went down:
// their routes go at once instead of after the hold time.
func (s *Speaker) onLinkDown(ctx context.Context, ss *session, ps []netip.Prefix) {
	if ctx.Err() != nil {
		return
	}
	for _, n := range s.cfg.Neighbors {
		for _, p := range ps {
			if !p.Contains(n.Address) {
				continue
			}
			s.log.Warn("link to neighbor down, resetting the session", "peer", n.Address, "prefix", p)
			err := ss.srv.ResetPeer(ctx, &api.ResetPeerRequest{Address: n.Address.String(), Communication: "link down"})
			if err != nil {
				s.log.Warn("resetting session", "peer", n.Address, "err", err)
			}
			break
		}
	}
}

// onEOR records an End-of-RIB; once every neighbor sent one, stale routes
// of an earlier run that were not learned again are swept.
func (s *Speaker) onEOR(ss *session, p *apiutil.Path) {
	if !p.PeerAddress.IsValid() || ss.restarting {
		return
	}
	ss.eorMu.Lock()
	ss.eorFrom[p.PeerAddress.Unmap()] = true
	all := true
	for _, n := range s.cfg.Neighbors {
		if !ss.eorFrom[n.Address] {
			all = false
		}
	}
	ss.eorMu.Unlock()
	if all {
		// Sweep after the feed installed what the peers sent before the
		// End-of-RIB.
		ss.feed.after(func() { s.sweep(ss, "end-of-rib from every neighbor") })
	}
}

// quietTime is how long after every neighbor is established and the last
// best-path change the table counts as converged (for peers that send no
// End-of-RIB: GoBGP sends it only with graceful restart).
const quietTime = 3 * time.Second

// staleTimer sweeps stale routes once every neighbor is established and no
// best path changed for quietTime, or after StaleTime, if End-of-RIB did
// not come first.
func (s *Speaker) staleTimer(ctx context.Context, ss *session) {
	if s.fib.Stats().Stale == 0 {
		return
	}
	t := time.NewTimer(s.o.StaleTime)
	defer t.Stop()
	tick := time.NewTicker(quietTime / 6)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.sweep(ss, "stale time over")
			return
		case now := <-tick.C:
			if s.converged(ss, now) {
				s.sweep(ss, "every neighbor established and the table quiet")
				return
			}
		}
	}
}

// converged reports whether every neighbor has been established for
// quietTime and no best path changed for as long.
func (s *Speaker) converged(ss *session, now time.Time) bool {
	if len(s.peers) == 0 {
		return false // nothing will come: leave it to StaleTime
	}
	for _, st := range s.peers {
		if !st.up.Load() || now.Sub(time.Unix(0, st.since.Load())) < quietTime {
			return false
		}
	}
	return now.Sub(time.Unix(0, ss.feed.last.Load())) >= quietTime
}

func (s *Speaker) sweep(ss *session, why string) {
	ss.eorMu.Lock()
	if ss.swept {
		ss.eorMu.Unlock()
		return
	}
	ss.swept = true
	ss.eorMu.Unlock()
	n, err := s.fib.Sweep()
	if n > 0 || err != nil {
		s.log.Info("removed stale routes of an earlier run", "routes", n, "reason", why, "err", err)
	}
}
