// Package daemon is havpn's composition root: it builds every part from a
// config.Config, runs them under one errgroup, serves the control socket and
// metrics, and shuts down in two phases (drain, then stop serving).
//
// Lifecycle:
//
//	New -> Run(ctx) -> [ctx done] -> STOPPING: drain (release what it holds) -> servers stop -> Run returns
//
// Reload (SIGHUP or `havpn reload`) builds a whole new Config; a config that
// does not validate is rejected with its errors logged and the running one
// is kept untouched.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/havpn/havpn/internal/buildinfo"
	"github.com/havpn/havpn/internal/config"
	"github.com/havpn/havpn/internal/ctl"
	"github.com/havpn/havpn/internal/metrics"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"golang.org/x/sync/errgroup"
)

// drainTimeout bounds the drain phase of shutdown.
const drainTimeout = 10 * time.Second

// Options are the daemon's injected dependencies.
type Options struct {
	Log    *slog.Logger
	Level  *slog.LevelVar // changed by reload and `havpn log-level`
	Notify Notifier       // service manager; nil means systemd's sd_notify
}

// Daemon is one havpn gateway. Its methods are safe for concurrent use.
type Daemon struct {
	log     *slog.Logger
	level   *slog.LevelVar
	notify  Notifier
	reg     *prometheus.Registry
	started time.Time
	m       daemonMetrics
	ready   chan struct{} // closed once the servers listen

	mu          sync.Mutex // guards the fields below
	metricsAddr net.Addr
	cfg         *config.Config
	loadedAt    time.Time
	reloads     int
	lastReload  string // result of the last reload, for status
	role        string
	roleReason  string
	roleSince   time.Time

	parts *parts // set by Run before serving, read-only afterwards
	// gatherers are per-run registries of parts that are rebuilt while the
	// daemon runs (a tunnel's dataplane), served next to reg.
	gatherers map[string]prometheus.Gatherer
}

// setGatherer serves g's metrics under key, replacing the previous one.
func (d *Daemon) setGatherer(key string, g prometheus.Gatherer) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.gatherers == nil {
		d.gatherers = map[string]prometheus.Gatherer{}
	}
	d.gatherers[key] = g
}

// gather is what /metrics serves: the daemon's registry and every part's.
func (d *Daemon) gather() ([]*dto.MetricFamily, error) {
	d.mu.Lock()
	gs := prometheus.Gatherers{d.reg}
	for _, g := range d.gatherers {
		gs = append(gs, g)
	}
	d.mu.Unlock()
	return gs.Gather()
}

type daemonMetrics struct {
	reloads *prometheus.CounterVec
}

// New validates nothing itself: cfg comes from config.Load.
func New(cfg *config.Config, opts Options) (*Daemon, error) {
	if opts.Log == nil || opts.Level == nil {
		return nil, errors.New("daemon: Log and Level are required")
	}
	if opts.Notify == nil {
		opts.Notify = systemdNotifier{}
	}
	d := &Daemon{
		log:      opts.Log,
		level:    opts.Level,
		notify:   opts.Notify,
		reg:      metrics.NewRegistry(buildinfo.String()),
		started:  time.Now(),
		cfg:      cfg,
		loadedAt: time.Now(),
		ready:    make(chan struct{}),
	}
	d.m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metrics.Namespace, Name: "config_reloads_total",
		Help: "Config reloads by result (ok, rejected).",
	}, []string{"result"})
	d.reg.MustRegister(d.m.reloads)
	return d, nil
}

// Config returns the running config.
func (d *Daemon) Config() *config.Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}

// Ready is closed once Run listens on the control socket and metrics.
func (d *Daemon) Ready() <-chan struct{} { return d.ready }

// MetricsAddr is the metrics listener's address once Ready, else nil.
func (d *Daemon) MetricsAddr() net.Addr {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.metricsAddr
}

// Run serves until ctx is done, then drains and returns. It returns an
// error only if something failed to start or a server died.
func (d *Daemon) Run(ctx context.Context) error {
	cfg := d.Config()
	p, err := d.buildParts(cfg)
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.parts = p
	d.mu.Unlock()
	srv, err := ctl.Listen(cfg.Control.Socket, d.log.With("component", "ctl"))
	if err != nil {
		return errors.Join(err, p.close())
	}
	d.registerHandlers(srv)
	var ms *metrics.Server
	if cfg.Metrics.Listen != "" {
		if ms, err = metrics.Listen(cfg.Metrics.Listen, prometheus.GathererFunc(d.gather), d.log.With("component", "metrics")); err != nil {
			return errors.Join(err, srv.Close(), p.close())
		}
	}

	// serveCtx outlives ctx so that the control socket still answers while
	// the daemon drains.
	serveCtx, stopServing := context.WithCancel(context.Background())
	defer stopServing()
	g, gctx := errgroup.WithContext(serveCtx)
	g.Go(func() error { return srv.Serve(gctx) })
	if ms != nil {
		g.Go(func() error { return ms.Run(gctx) })
	}
	g.Go(func() error { return d.watchdog(gctx) })

	d.log.Info("havpn started", "node", cfg.Node.Name, "site", cfg.Node.Site,
		"version", buildinfo.String(), "config", cfg.Path, "config_hash", cfg.Hash(),
		"control", srv.Path(), "pid", os.Getpid())
	if ms != nil {
		d.mu.Lock()
		d.metricsAddr = ms.Addr()
		d.mu.Unlock()
	}
	close(d.ready)
	d.notifyf("READY=1\nSTATUS=running\nMAINPID=%d", os.Getpid())
	if cfg.Cluster == nil {
		if err := d.becomeActive(ctx, "standalone: no cluster configured"); err != nil {
			d.log.Error("starting the resource group", "err", err)
		}
	} else {
		d.setRole("init", "waiting for the cluster to decide")
		d.runCluster(serveCtx, p)
	}
	d.startAlwaysOn(ctx, p) // after the VIPs: a slow BGP start must not delay them

	var runErr error
	select {
	case <-ctx.Done():
	case <-gctx.Done():
		runErr = fmt.Errorf("a daemon server stopped: %w", context.Cause(gctx))
	}
	d.notifyf("STOPPING=1\nSTATUS=draining")
	d.log.Info("havpn stopping")
	dctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	drainErr := d.drain(dctx)
	cancel()
	stopServing()
	return errors.Join(runErr, drainErr, g.Wait())
}

// drain releases what the daemon holds (VIPs, routes, SAs) before exit.
func (d *Daemon) drain(ctx context.Context) error {
	errs := []error{d.stopCluster(ctx)}
	errs = append(errs, d.release(ctx, "shutting down"), d.parts.close())
	return errors.Join(errs...)
}

// Reload loads the config file again. A config that fails validation
// changes nothing; the error lists every problem.
func (d *Daemon) Reload() error {
	old := d.Config()
	next, err := config.Load(old.Path)
	if err != nil {
		d.m.reloads.WithLabelValues("rejected").Inc()
		d.setReloadResult("rejected: " + err.Error())
		d.log.Error("config reload rejected, keeping the running config", "config", old.Path, "err", err)
		return err
	}
	if err := checkReloadable(old, next); err != nil {
		d.m.reloads.WithLabelValues("rejected").Inc()
		d.setReloadResult("rejected: " + err.Error())
		d.log.Error("config reload rejected, keeping the running config", "config", old.Path, "err", err)
		return err
	}
	d.apply(next)
	d.m.reloads.WithLabelValues("ok").Inc()
	d.log.Info("config reloaded", "config", next.Path, "config_hash", next.Hash())
	return nil
}

func (d *Daemon) setReloadResult(s string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lastReload = s
}

// apply swaps in a validated config and pushes its live-changeable parts.
func (d *Daemon) apply(next *config.Config) {
	if lvl, err := parseLevel(next.Log.Level); err == nil {
		d.level.Set(lvl)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cfg = next
	d.loadedAt = time.Now()
	d.reloads++
	d.lastReload = "ok"
}

// checkReloadable refuses changes that need a restart, naming the field,
// rather than half-applying them.
func checkReloadable(old, next *config.Config) error {
	var errs []error
	if old.Node.Name != next.Node.Name {
		errs = append(errs, fmt.Errorf("node.name: changing %q to %q needs a restart", old.Node.Name, next.Node.Name))
	}
	if old.Control.Socket != next.Control.Socket {
		errs = append(errs, fmt.Errorf("control.socket: changing it needs a restart"))
	}
	if old.Metrics.Listen != next.Metrics.Listen {
		errs = append(errs, fmt.Errorf("metrics.listen: changing it needs a restart"))
	}
	if old.Log.Format != next.Log.Format {
		errs = append(errs, fmt.Errorf("log.format: changing it needs a restart"))
	}
	errs = append(errs, checkRestartOnly(old, next)...)
	return errors.Join(errs...)
}

// parseLevel maps a config log level to slog.
func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("log level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// NewLogger builds the daemon's logger from the config's log section.
func NewLogger(cfg *config.Config, w *os.File) (*slog.Logger, *slog.LevelVar, error) {
	lvl, err := parseLevel(cfg.Log.Level)
	if err != nil {
		return nil, nil, err
	}
	lv := new(slog.LevelVar)
	lv.Set(lvl)
	o := &slog.HandlerOptions{Level: lv}
	var h slog.Handler = slog.NewTextHandler(w, o)
	if cfg.Log.Format == "json" {
		h = slog.NewJSONHandler(w, o)
	}
	return slog.New(h), lv, nil
}
