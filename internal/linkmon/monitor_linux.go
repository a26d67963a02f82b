package linkmon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/havpn/havpn/internal/netnsutil"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Monitor watches a fixed set of interfaces. Create it with New, then call
// Run once; read Events or poll State. Safe for concurrent use.
type Monitor struct {
	ifaces  []string
	ns      string
	poll    time.Duration
	log     *slog.Logger
	m       *metrics
	events  chan Event
	running atomic.Bool

	// mu guards state.
	mu    sync.Mutex
	state map[string]Event
}

// New returns a monitor for ifaces and reads their current state, so that
// State answers at once and the first len(ifaces) Events are the initial
// state of each interface (Present false for one that does not exist yet).
func New(ifaces []string, opts Options) (*Monitor, error) {
	if opts.Log == nil {
		return nil, errors.New("creating link monitor: no logger")
	}
	m := &Monitor{
		ns:    opts.NetNS,
		poll:  opts.Poll,
		log:   opts.Log.With("component", "linkmon"),
		state: make(map[string]Event),
	}
	for _, i := range ifaces {
		if i != "" && !slices.Contains(m.ifaces, i) {
			m.ifaces = append(m.ifaces, i)
		}
	}
	var err error
	if m.m, err = newMetrics(opts.Registerer); err != nil {
		return nil, err
	}
	if m.poll == 0 {
		m.poll = DefaultPoll
	}
	m.events = make(chan Event, 64+len(m.ifaces))
	if err := m.readInitial(); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Monitor) handle() (*netlink.Handle, error) {
	if m.ns == "" {
		return netlink.NewHandle(unix.NETLINK_ROUTE)
	}
	return netnsutil.Handle(m.ns)
}

func (m *Monitor) readInitial() error {
	h, err := m.handle()
	if err != nil {
		return fmt.Errorf("creating link monitor: %w", err)
	}
	defer h.Close()
	now := time.Now()
	for _, name := range m.ifaces {
		l, err := h.LinkByName(name)
		if _, ok := errors.AsType[netlink.LinkNotFoundError](err); ok {
			m.emitInitial(Event{Iface: name, OperState: OperNotPresent, At: now})
			continue
		}
		if err != nil {
			return fmt.Errorf("creating link monitor: reading %s: %w", name, err)
		}
		e := eventFromAttrs(l.Attrs(), now)
		e.Iface = name
		m.emitInitial(e)
	}
	return nil
}

func (m *Monitor) emitInitial(e Event) {
	m.mu.Lock()
	m.state[e.Iface] = e
	m.mu.Unlock()
	m.m.carrier.WithLabelValues(e.Iface).Set(b2f(e.Carrier))
	m.events <- e // buffered for every interface
}

func eventFromAttrs(a *netlink.LinkAttrs, at time.Time) Event {
	return Event{
		Iface:     a.Name,
		Index:     a.Index,
		Present:   true,
		Carrier:   a.RawFlags&unix.IFF_LOWER_UP != 0,
		AdminUp:   a.RawFlags&unix.IFF_UP != 0,
		OperState: a.OperState.String(),
		At:        at,
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Events returns the channel of changes: the initial state of every
// interface, then one Event per change of presence, carrier, admin or
// operational state (not for other attribute updates). Run blocks while the
// channel is full, so drain it. It is closed when Run returns.
func (m *Monitor) Events() <-chan Event { return m.events }

// State returns the last known state of iface, and false if iface is not
// monitored.
func (m *Monitor) State(iface string) (Event, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.state[iface]
	return e, ok
}

// States returns the last known state of every monitored interface, in the
// order given to New.
func (m *Monitor) States() []Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Event, 0, len(m.ifaces))
	for _, i := range m.ifaces {
		out = append(out, m.state[i])
	}
	return out
}

// Run watches until ctx is done, then closes Events and returns nil. A
// broken subscription is renewed (with a full dump) after a short backoff.
// It returns an error only when it cannot subscribe at all at start, and
// ErrAlreadyRunning when called twice.
func (m *Monitor) Run(ctx context.Context) error {
	if !m.running.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	defer close(m.events)
	h, err := m.handle()
	if err != nil {
		return fmt.Errorf("watching links: %w", err)
	}
	defer h.Close()
	var nsh *netns.NsHandle
	if m.ns != "" {
		h, err := netns.GetFromName(m.ns)
		if err != nil {
			return fmt.Errorf("watching links in %s: %w", m.ns, err)
		}
		defer h.Close()
		nsh = &h
	}
	const minBackoff, maxBackoff = 10 * time.Millisecond, time.Second
	backoff := minBackoff
	for first := true; ; first = false {
		started := time.Now()
		err := m.watch(ctx, nsh, h)
		if ctx.Err() != nil {
			return nil
		}
		if first && errors.Is(err, errSubscribe) {
			return err
		}
		m.m.resubscribes.Inc()
		if time.Since(started) > 10*time.Second {
			backoff = minBackoff
		}
		m.log.Warn("link subscription broke; resubscribing", "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// watch runs one subscription, and the poll, until ctx is done (nil) or
// the subscription breaks.
func (m *Monitor) watch(ctx context.Context, nsh *netns.NsHandle, h *netlink.Handle) error {
	ch := make(chan netlink.LinkUpdate, 256)
	done := make(chan struct{})
	errc := make(chan error, 1)
	opts := netlink.LinkSubscribeOptions{
		Namespace:    nsh,
		ListExisting: true,
		// Dumps and bursts of updates; the default rmem can overflow.
		ReceiveBufferSize: 1 << 20,
		ErrorCallback: func(err error) {
			if errors.Is(err, netlink.ErrDumpInterrupted) {
				return // later updates carry the right state
			}
			select {
			case errc <- err:
			default:
			}
		},
	}
	if err := netlink.LinkSubscribeWithOptions(ch, done, opts); err != nil {
		return fmt.Errorf("%w: %w", errSubscribe, err)
	}
	defer func() {
		close(done)
		for range ch { // let the receiver goroutine exit
		}
	}()
	var tick <-chan time.Time
	if m.poll > 0 {
		t := time.NewTicker(m.poll)
		defer t.Stop()
		tick = t.C
	}
	send := func(evs []Event) bool {
		for _, e := range evs {
			select {
			case m.events <- e:
			case <-ctx.Done():
				return false
			}
		}
		return true
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick:
			for _, name := range m.ifaces {
				u, err := getLink(h, name)
				if err != nil {
					m.m.pollErrors.Inc()
					continue
				}
				if !send(m.apply(u, time.Now())) {
					return nil
				}
			}
		case u, ok := <-ch:
			if !ok {
				select {
				case err := <-errc:
					return err
				default:
					return errors.New("link subscription closed")
				}
			}
			if !send(m.apply(u, time.Now())) {
				return nil
			}
		}
	}
}

// getLink reads one interface as if it were a link notification: an
// RTM_DELLINK for one that does not exist.
func getLink(h *netlink.Handle, name string) (netlink.LinkUpdate, error) {
	var u netlink.LinkUpdate
	l, err := h.LinkByName(name)
	if _, ok := errors.AsType[netlink.LinkNotFoundError](err); ok {
		u.Header.Type = unix.RTM_DELLINK
		u.Link = &netlink.Device{LinkAttrs: netlink.LinkAttrs{Name: name}}
		return u, nil
	}
	if err != nil {
		return u, err
	}
	u.Header.Type = unix.RTM_NEWLINK
	u.Link = l
	return u, nil
}

// apply folds one link message into the state and returns the events for
// monitored interfaces whose state changed.
func (m *Monitor) apply(u netlink.LinkUpdate, at time.Time) []Event {
	a := u.Link.Attrs()
	var e Event
	if u.Header.Type == unix.RTM_DELLINK {
		e = Event{Iface: a.Name, OperState: OperNotPresent, At: at}
	} else {
		e = eventFromAttrs(a, at)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Event
	// A monitored name that this index carried before and no longer does
	// was renamed away: it is gone.
	for name, old := range m.state {
		if old.Present && old.Index == a.Index && name != a.Name {
			gone := Event{Iface: name, OperState: OperNotPresent, At: at}
			m.state[name] = gone
			out = append(out, gone)
		}
	}
	old, ok := m.state[a.Name]
	if ok && !old.same(e) {
		m.state[a.Name] = e
		out = append(out, e)
	}
	for _, e := range out {
		m.m.carrier.WithLabelValues(e.Iface).Set(b2f(e.Carrier))
		m.m.changes.WithLabelValues(e.Iface).Inc()
	}
	return out
}
