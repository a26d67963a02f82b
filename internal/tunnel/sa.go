package tunnel

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"sort"
	"sync/atomic"
	"time"

	"github.com/havpn/havpn/internal/tunnel/esp"
)

// SA is one direction of an ESP SA as plain data: what InstallInbound and
// InstallOutbound take and ExportSAs gives (for state sync to a standby).
type SA struct {
	// State holds cipher, SPI, key||salt, ESN, sequence number and replay
	// window. A non-zero Seq restores the SA mid-life
	// (esp.NewInboundFromState / NewOutboundFromState): a standby taking
	// over installs the exported SAs, with Seq of outbound SAs moved ahead
	// by a margin. Window 0 = the tunnel's replay_window.
	esp.State
	// Pair is, for an outbound SA, the SPI of the inbound SA negotiated
	// with it (the same child SA); that inbound SA must be installed
	// first. Unused for inbound SAs.
	Pair uint32
	// Remote is, for an outbound SA, where its packets go (after a NAT
	// the peer's public address and port); the zero value means the
	// tunnel's remote address and port.
	Remote netip.AddrPort
	// Local is, for an outbound SA, the local endpoint to send from; it
	// must be a configured tunnel's local address and port. The zero
	// value means the tunnel's.
	Local netip.AddrPort
}

type inSA struct {
	t       *Tunnel
	in      *esp.Inbound
	expires atomic.Int64 // unix nanoseconds; 0 = no expiry
}

type outSA struct {
	out    *esp.Outbound
	pair   uint32
	remote netip.AddrPort
	sock   *socket
}

// SAInfo is one installed SA with its place in the table, as ExportSAs
// returns it. It contains key material: do not log it.
type SAInfo struct {
	Tunnel  string
	Inbound bool
	// Active marks the outbound SA the tunnel sends with; installed but
	// inactive outbound SAs (InstallOutbound with activate false) are
	// listed with Active false.
	Active bool
	// Expires is set on an inbound SA in its grace period.
	Expires time.Time
	SA      SA
	Stats   esp.Stats
}

// InstallInbound adds an inbound SA to a tunnel. Older inbound SAs of the
// tunnel keep working. Inbound SPIs are unique per Manager (ErrSPIInUse).
// Install the inbound SA of a child before its outbound SA, so that the
// peer's first packets under the new keys are accepted.
func (m *Manager) InstallInbound(tunnel string, sa SA) error {
	t := m.byName[tunnel]
	if t == nil {
		return fmt.Errorf("installing inbound SA %#x: %w: %s", sa.SPI, ErrUnknownTunnel, tunnel)
	}
	if sa.Window == 0 {
		sa.Window = t.cfg.ReplayWindow
	}
	var in *esp.Inbound
	var err error
	if sa.Seq != 0 {
		in, err = esp.NewInboundFromState(sa.State)
	} else {
		in, err = esp.NewInbound(sa.Cipher, sa.SPI, sa.Key, sa.ESN, sa.Window)
	}
	if err != nil {
		return fmt.Errorf("installing inbound SA %#x of %s: %w", sa.SPI, tunnel, err)
	}
	m.saMu.Lock()
	defer m.saMu.Unlock()
	cur := *m.inbound.Load()
	if _, used := cur[sa.SPI]; used {
		return fmt.Errorf("installing inbound SA %#x of %s: %w", sa.SPI, tunnel, ErrSPIInUse)
	}
	next := maps.Clone(cur)
	next[sa.SPI] = &inSA{t: t, in: in}
	m.inbound.Store(&next)
	m.log.Info("inbound SA installed", "tunnel", tunnel, "spi", fmt.Sprintf("%#x", sa.SPI), "cipher", sa.Cipher.String())
	return nil
}

// InstallOutbound adds an outbound SA to a tunnel. Its inbound pair
// (sa.Pair) must be installed already (ErrNoInbound). With activate it
// becomes the sending SA at once (make-before-break): the previous sending
// SA is dropped, and its inbound pair stays for the grace period so that
// packets still in flight from the peer under the old keys are accepted.
// Without activate it waits for ActivateOutbound (the IKE responder of a
// rekey does this).
func (m *Manager) InstallOutbound(tunnel string, sa SA, activate bool) error {
	t := m.byName[tunnel]
	if t == nil {
		return fmt.Errorf("installing outbound SA %#x: %w: %s", sa.SPI, ErrUnknownTunnel, tunnel)
	}
	o := &outSA{pair: sa.Pair, remote: t.remote, sock: t.sock}
	if sa.Remote.IsValid() {
		o.remote = netip.AddrPortFrom(sa.Remote.Addr().Unmap(), sa.Remote.Port())
	}
	if sa.Local.IsValid() {
		o.sock = m.sockBy[netip.AddrPortFrom(sa.Local.Addr().Unmap(), sa.Local.Port())]
		if o.sock == nil {
			return fmt.Errorf("installing outbound SA %#x of %s from %s: %w", sa.SPI, tunnel, sa.Local, ErrNoSocket)
		}
	}
	if o.remote.Addr().Is4() != o.sock.local.Addr().Is4() {
		return fmt.Errorf("installing outbound SA %#x of %s: remote %s and local %s differ in family", sa.SPI, tunnel, o.remote, o.sock.local)
	}
	var err error
	if sa.Seq != 0 {
		o.out, err = esp.NewOutboundFromState(sa.State)
	} else {
		o.out, err = esp.NewOutbound(sa.Cipher, sa.SPI, sa.Key, sa.ESN)
	}
	if err != nil {
		return fmt.Errorf("installing outbound SA %#x of %s: %w", sa.SPI, tunnel, err)
	}
	m.saMu.Lock()
	defer m.saMu.Unlock()
	if in := (*m.inbound.Load())[sa.Pair]; in == nil || in.t != t {
		return fmt.Errorf("installing outbound SA %#x of %s: inbound %#x: %w", sa.SPI, tunnel, sa.Pair, ErrNoInbound)
	}
	if cur := t.out.Load(); cur != nil && cur.out.SPI() == sa.SPI {
		return fmt.Errorf("installing outbound SA %#x of %s: %w", sa.SPI, tunnel, ErrSPIInUse)
	}
	if activate {
		m.activateLocked(t, o)
	} else {
		t.pending[sa.SPI] = o
	}
	m.log.Info("outbound SA installed", "tunnel", tunnel, "spi", fmt.Sprintf("%#x", sa.SPI), "pair", fmt.Sprintf("%#x", sa.Pair), "active", activate, "remote", o.remote)
	return nil
}

// InstallChild installs both directions of a negotiated child SA: in as an
// inbound SA, then out as an outbound SA paired with it (out.Pair is set
// to in.SPI), made the sending SA at once when activate is set (see
// InstallOutbound). When the outbound SA is refused the inbound SA is
// removed again, so that a failed call leaves the table as it was. This is
// the shape of ike.SAInstaller's InstallChild, as RemoveChild is of its
// RemoveChild: an adapter only converts the key material.
func (m *Manager) InstallChild(tunnel string, in, out SA, activate bool) error {
	if err := m.InstallInbound(tunnel, in); err != nil {
		return err
	}
	out.Pair = in.SPI
	if err := m.InstallOutbound(tunnel, out, activate); err != nil {
		return errors.Join(err, m.RemoveInbound(tunnel, in.SPI))
	}
	return nil
}

// activateLocked makes o the sending SA; the old one's inbound pair
// retires after the grace period. m.saMu is held.
func (m *Manager) activateLocked(t *Tunnel, o *outSA) {
	old := t.out.Swap(o)
	delete(t.pending, o.out.SPI())
	if old == nil || old.pair == o.pair {
		return
	}
	if in := (*m.inbound.Load())[old.pair]; in != nil && in.expires.Load() == 0 {
		in.expires.Store(m.now().Add(m.grace).UnixNano())
	}
}

// ActivateOutbound makes the inactive outbound SA spi the sending SA of
// the tunnel, as InstallOutbound with activate does.
func (m *Manager) ActivateOutbound(tunnel string, spi uint32) error {
	t := m.byName[tunnel]
	if t == nil {
		return fmt.Errorf("activating outbound SA %#x: %w: %s", spi, ErrUnknownTunnel, tunnel)
	}
	m.saMu.Lock()
	defer m.saMu.Unlock()
	if cur := t.out.Load(); cur != nil && cur.out.SPI() == spi {
		return nil
	}
	o := t.pending[spi]
	if o == nil {
		return fmt.Errorf("activating outbound SA %#x of %s: %w", spi, tunnel, ErrNoSA)
	}
	m.activateLocked(t, o)
	m.log.Info("outbound SA activated", "tunnel", tunnel, "spi", fmt.Sprintf("%#x", spi))
	return nil
}

// RemoveInbound deletes an inbound SA at once.
func (m *Manager) RemoveInbound(tunnel string, spi uint32) error {
	m.saMu.Lock()
	defer m.saMu.Unlock()
	return m.removeInboundLocked(tunnel, spi)
}

func (m *Manager) removeInboundLocked(tunnel string, spi uint32) error {
	cur := *m.inbound.Load()
	in := cur[spi]
	if in == nil || in.t.name != tunnel {
		return fmt.Errorf("removing inbound SA %#x of %s: %w", spi, tunnel, ErrNoSA)
	}
	next := maps.Clone(cur)
	delete(next, spi)
	m.inbound.Store(&next)
	m.log.Info("inbound SA removed", "tunnel", tunnel, "spi", fmt.Sprintf("%#x", spi))
	return nil
}

// RemoveOutbound deletes an outbound SA at once; removing the sending SA
// leaves the tunnel without one (its packets are dropped as no_sa) until
// the next activation.
func (m *Manager) RemoveOutbound(tunnel string, spi uint32) error {
	t := m.byName[tunnel]
	if t == nil {
		return fmt.Errorf("removing outbound SA %#x: %w: %s", spi, ErrUnknownTunnel, tunnel)
	}
	m.saMu.Lock()
	defer m.saMu.Unlock()
	return m.removeOutboundLocked(t, spi)
}

func (m *Manager) removeOutboundLocked(t *Tunnel, spi uint32) error {
	if cur := t.out.Load(); cur != nil && cur.out.SPI() == spi {
		t.out.Store(nil)
	} else if _, ok := t.pending[spi]; ok {
		delete(t.pending, spi)
	} else {
		return fmt.Errorf("removing outbound SA %#x of %s: %w", spi, t.name, ErrNoSA)
	}
	m.log.Info("outbound SA removed", "tunnel", t.name, "spi", fmt.Sprintf("%#x", spi))
	return nil
}

// RemoveChild deletes a child SA pair the way a peer's Delete asks for:
// the outbound SA at once, the inbound SA after the grace period (packets
// already in flight still arrive). Either SPI may be gone already; only
// when both are unknown is the result ErrNoSA. This is the shape of
// ike.SAInstaller's RemoveChild.
func (m *Manager) RemoveChild(tunnel string, inSPI, outSPI uint32) error {
	t := m.byName[tunnel]
	if t == nil {
		return fmt.Errorf("removing child %#x/%#x: %w: %s", inSPI, outSPI, ErrUnknownTunnel, tunnel)
	}
	m.saMu.Lock()
	defer m.saMu.Unlock()
	outErr := m.removeOutboundLocked(t, outSPI)
	in := (*m.inbound.Load())[inSPI]
	if in == nil || in.t != t {
		if outErr != nil {
			return fmt.Errorf("removing child %#x/%#x of %s: %w", inSPI, outSPI, tunnel, ErrNoSA)
		}
		return nil
	}
	if in.expires.Load() == 0 {
		in.expires.Store(m.now().Add(m.grace).UnixNano())
	}
	return nil
}

// expire removes the inbound SAs whose grace period ended before now.
func (m *Manager) expire(now time.Time) {
	cur := *m.inbound.Load()
	due := false
	for _, in := range cur {
		if e := in.expires.Load(); e != 0 && e <= now.UnixNano() {
			due = true
			break
		}
	}
	if !due {
		return
	}
	m.saMu.Lock()
	defer m.saMu.Unlock()
	cur = *m.inbound.Load()
	next := maps.Clone(cur)
	for spi, in := range cur {
		if e := in.expires.Load(); e != 0 && e <= now.UnixNano() {
			delete(next, spi)
			m.log.Info("inbound SA expired", "tunnel", in.t.name, "spi", fmt.Sprintf("%#x", spi))
		}
	}
	m.inbound.Store(&next)
}

// ExportSAs returns every installed SA as plain data (key material
// included), ordered by tunnel, direction and SPI.
func (m *Manager) ExportSAs() []SAInfo {
	var out []SAInfo
	for _, t := range m.tunnels {
		out = append(out, m.tunnelSAs(t)...)
	}
	return out
}

func (m *Manager) tunnelSAs(t *Tunnel) []SAInfo {
	m.saMu.Lock()
	defer m.saMu.Unlock()
	var out []SAInfo
	for _, in := range *m.inbound.Load() {
		if in.t != t {
			continue
		}
		info := SAInfo{Tunnel: t.name, Inbound: true, SA: SA{State: in.in.Export()}, Stats: in.in.Stats()}
		if e := in.expires.Load(); e != 0 {
			info.Expires = time.Unix(0, e)
		}
		out = append(out, info)
	}
	outInfo := func(o *outSA, active bool) SAInfo {
		sa := SA{State: o.out.Export(), Pair: o.pair, Remote: o.remote}
		if o.sock != t.sock {
			sa.Local = o.sock.local
		}
		return SAInfo{Tunnel: t.name, Active: active, SA: sa, Stats: o.out.Stats()}
	}
	if o := t.out.Load(); o != nil {
		out = append(out, outInfo(o, true))
	}
	for _, o := range t.pending {
		out = append(out, outInfo(o, false))
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Inbound != out[j].Inbound {
			return out[i].Inbound
		}
		return out[i].SA.SPI < out[j].SA.SPI
	})
	return out
}
