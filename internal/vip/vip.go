package vip

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"
)

// Defaults for Config fields left zero.
const (
	// DefaultLifetime is the valid and preferred lifetime of a held VIP,
	// in seconds: the smallest the kernel accepts.
	DefaultLifetime = 1
	// DefaultRefresh is how often a held VIP's lifetime is reset.
	DefaultRefresh = 300 * time.Millisecond
)

// Config describes one virtual IP.
type Config struct {
	// Interface is the name of the interface the address goes on.
	Interface string
	// Address is the host address with its prefix length, e.g.
	// 192.168.1.1/24 (the prefix route comes with it, as with `ip addr add`).
	Address netip.Prefix
	// AnnounceCount is how many GARP/NA packets follow an Acquire (0: none).
	// The first is sent before Acquire returns, the rest in the background.
	AnnounceCount int
	// AnnounceInterval is the spacing of those packets.
	AnnounceInterval time.Duration
	// Lifetime is the valid and preferred lifetime in seconds (0: 1).
	Lifetime uint32
	// Refresh is the refresh period (0: 300 ms); it must be below Lifetime.
	Refresh time.Duration
}

func (c Config) withDefaults() Config {
	if c.Lifetime == 0 {
		c.Lifetime = DefaultLifetime
	}
	if c.Refresh == 0 {
		c.Refresh = DefaultRefresh
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.Interface == "":
		return fmt.Errorf("%w: no interface", ErrInvalidConfig)
	case !c.Address.IsValid():
		return fmt.Errorf("%w: no address", ErrInvalidConfig)
	case c.Refresh <= 0 || c.Refresh >= time.Duration(c.Lifetime)*time.Second:
		return fmt.Errorf("%w: refresh %s not in (0, lifetime %ds)", ErrInvalidConfig, c.Refresh, c.Lifetime)
	case c.AnnounceCount < 0:
		return fmt.Errorf("%w: negative announce count", ErrInvalidConfig)
	case c.AnnounceCount > 1 && c.AnnounceInterval <= 0:
		return fmt.Errorf("%w: announce interval must be > 0", ErrInvalidConfig)
	}
	return nil
}

// Status is a snapshot of a VIP, plain data for `havpn status`.
type Status struct {
	Interface string       `json:"interface"`
	Address   netip.Prefix `json:"address"`
	Held      bool         `json:"held"`
	// Since is when the VIP was last acquired or released.
	Since time.Time `json:"since,omitzero"`
	// LastRefresh is when the lifetime was last reset successfully.
	LastRefresh time.Time `json:"last_refresh,omitzero"`
	// RefreshError is the last refresh failure while it persists.
	RefreshError string `json:"refresh_error,omitempty"`
	// Announced counts GARP/NA packets sent since the last Acquire.
	Announced int `json:"announced"`
}

// VIP is one virtual IP on one interface. Its states:
//
//	released --Acquire--> held --Release--> released
//
// While held, a goroutine resets the address lifetime every Refresh.
// A *VIP is safe for concurrent use.
type VIP struct {
	cfg   Config
	addrs AddrManager
	ann   Announcer
	log   *slog.Logger
	m     vipMetrics

	// opMu serialises Acquire and Release.
	opMu sync.Mutex
	// wg counts the refresh and announce goroutines of the current hold.
	wg sync.WaitGroup
	// stop is closed to end the current hold's goroutines; nil when released.
	stop chan struct{}

	// mu guards the fields below, read by Status and written by the goroutines.
	mu          sync.Mutex
	held        bool
	since       time.Time
	lastRefresh time.Time
	refreshErr  error
	announced   int
}

// New returns a released VIP. ann may be nil when cfg.AnnounceCount is 0.
// log must not be nil; m may be nil.
func New(cfg Config, addrs AddrManager, ann Announcer, log *slog.Logger, m *Metrics) (*VIP, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("vip %s on %s: %w", cfg.Address, cfg.Interface, err)
	}
	if addrs == nil || (ann == nil && cfg.AnnounceCount > 0) {
		return nil, fmt.Errorf("vip %s on %s: %w: missing backend", cfg.Address, cfg.Interface, ErrInvalidConfig)
	}
	return &VIP{
		cfg:   cfg,
		addrs: addrs,
		ann:   ann,
		log:   log.With("component", "vip", "vip", cfg.Address.String(), "iface", cfg.Interface),
		m:     m.forVIP(cfg.Address.String()),
	}, nil
}

// Config returns the VIP's configuration with defaults applied.
func (v *VIP) Config() Config { return v.cfg }

// Acquire adds the address (present already is fine), starts refreshing its
// lifetime and announces it: the first GARP/NA is sent before Acquire
// returns, the other AnnounceCount-1 at AnnounceInterval in the background.
// The refresh outlives ctx, which only bounds Acquire itself. Acquiring a
// held VIP re-asserts the address and sends nothing.
//
// On error the VIP may be held (address added, announcement failed); call
// Release to clean up.
func (v *VIP) Acquire(ctx context.Context) error {
	v.opMu.Lock()
	defer v.opMu.Unlock()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("adding vip %s to %s: %w", v.cfg.Address, v.cfg.Interface, err)
	}
	if err := v.replace(); err != nil {
		return err
	}
	if v.stop != nil {
		return nil
	}
	now := time.Now()
	v.mu.Lock()
	v.held, v.since, v.lastRefresh, v.refreshErr, v.announced = true, now, now, nil, 0
	v.mu.Unlock()
	setGauge(v.m.held, 1)
	v.stop = make(chan struct{})
	v.wg.Add(1)
	go v.refresh(v.stop)
	v.log.Info("vip added", "valid_lft", v.cfg.Lifetime, "refresh", v.cfg.Refresh)
	return v.startAnnounce()
}

// Reannounce sends the announcement burst again for a held VIP: after both
// nodes were active, the peer may have poisoned the neighbours' caches.
// It does nothing for a released VIP.
func (v *VIP) Reannounce(ctx context.Context) error {
	v.opMu.Lock()
	defer v.opMu.Unlock()
	if v.stop == nil || ctx.Err() != nil {
		return ctx.Err()
	}
	return v.startAnnounce()
}

// startAnnounce sends the first announcement now and the rest of the burst
// in the background. The caller holds opMu and the VIP is held.
func (v *VIP) startAnnounce() error {
	if v.cfg.AnnounceCount == 0 {
		return nil
	}
	s, err := v.ann.Open(v.cfg.Interface, v.cfg.Address.Addr())
	if err != nil {
		inc(v.m.announceErrors)
		return fmt.Errorf("announcing vip %s on %s: %w", v.cfg.Address, v.cfg.Interface, err)
	}
	if err := v.send(s); err != nil {
		s.Close()
		return fmt.Errorf("announcing vip %s on %s: %w", v.cfg.Address, v.cfg.Interface, err)
	}
	if v.cfg.AnnounceCount == 1 {
		return s.Close()
	}
	v.wg.Add(1)
	go v.announce(s, v.stop)
	return nil
}

// Release stops refreshing and announcing and deletes the address, also
// when ctx is already done. Releasing a released VIP deletes the address
// again (it may be a leftover of an earlier process) and is otherwise a
// no-op.
func (v *VIP) Release(ctx context.Context) error {
	v.opMu.Lock()
	defer v.opMu.Unlock()
	if v.stop != nil {
		close(v.stop)
		v.wg.Wait()
		v.stop = nil
	}
	v.mu.Lock()
	wasHeld := v.held
	v.held, v.since = false, time.Now()
	v.mu.Unlock()
	setGauge(v.m.held, 0)
	// Deleted even when ctx is done: one netlink request, and a release
	// that leaves the address would make a dual owner for a second.
	if err := v.addrs.DelAddr(v.cfg.Interface, v.cfg.Address); err != nil {
		return fmt.Errorf("deleting vip %s from %s: %w", v.cfg.Address, v.cfg.Interface, err)
	}
	if wasHeld {
		v.log.Info("vip deleted")
	}
	return nil
}

// Held reports whether the VIP is held (acquired and not released).
func (v *VIP) Held() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.held
}

// Present asks the kernel whether the address is on the interface.
func (v *VIP) Present() (bool, error) {
	ok, err := v.addrs.HasAddr(v.cfg.Interface, v.cfg.Address)
	if err != nil {
		return false, fmt.Errorf("looking up vip %s on %s: %w", v.cfg.Address, v.cfg.Interface, err)
	}
	return ok, nil
}

// Status returns a snapshot of the VIP.
func (v *VIP) Status() Status {
	v.mu.Lock()
	defer v.mu.Unlock()
	s := Status{
		Interface:   v.cfg.Interface,
		Address:     v.cfg.Address,
		Held:        v.held,
		Since:       v.since,
		LastRefresh: v.lastRefresh,
		Announced:   v.announced,
	}
	if v.refreshErr != nil {
		s.RefreshError = v.refreshErr.Error()
	}
	return s
}

func (v *VIP) replace() error {
	if err := v.addrs.ReplaceAddr(v.cfg.Interface, v.cfg.Address, v.cfg.Lifetime, v.cfg.Lifetime); err != nil {
		return fmt.Errorf("adding vip %s to %s: %w", v.cfg.Address, v.cfg.Interface, err)
	}
	return nil
}

// refresh resets the address lifetime every Refresh until stop is closed.
// It logs the first failure of a run of failures and the recovery.
func (v *VIP) refresh(stop <-chan struct{}) {
	defer v.wg.Done()
	t := time.NewTicker(v.cfg.Refresh)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		err := v.replace()
		v.mu.Lock()
		prev := v.refreshErr
		v.refreshErr = err
		if err == nil {
			v.lastRefresh = time.Now()
		}
		v.mu.Unlock()
		switch {
		case err != nil:
			inc(v.m.refreshErrors)
			if prev == nil {
				v.log.Warn("vip refresh failed; the address expires unless a refresh succeeds", "err", err)
			}
		case prev != nil:
			v.log.Info("vip refresh works again")
		}
	}
}

// announce sends the rest of the burst and closes s.
func (v *VIP) announce(s Sender, stop <-chan struct{}) {
	defer v.wg.Done()
	defer s.Close()
	t := time.NewTimer(v.cfg.AnnounceInterval)
	defer t.Stop()
	var firstErr error
	for i := 1; i < v.cfg.AnnounceCount; i++ {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if err := v.send(s); err != nil && firstErr == nil {
			firstErr = err
			v.log.Warn("vip announcement failed", "err", err)
		}
		t.Reset(v.cfg.AnnounceInterval)
	}
}

func (v *VIP) send(s Sender) error {
	if err := s.Send(); err != nil {
		inc(v.m.announceErrors)
		return err
	}
	inc(v.m.announcements)
	v.mu.Lock()
	v.announced++
	v.mu.Unlock()
	return nil
}
