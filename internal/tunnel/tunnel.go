package tunnel

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/havpn/havpn/internal/config"
	"github.com/havpn/havpn/internal/tunnel/esp"
	"github.com/havpn/havpn/internal/tunnel/gre"
	"github.com/havpn/havpn/internal/tunnel/tun"
)

// Tunnel is one configured tunnel of a Manager: its interface, its SAs and
// its counters. Its methods are safe for concurrent use.
type Tunnel struct {
	m      *Manager
	cfg    config.Tunnel
	name   string
	cipher esp.Cipher
	dev    tun.Device
	sock   *socket
	remote netip.AddrPort
	gre    bool // mode gre
	hasKey bool
	key    uint32
	greLen int // GRE header length sent (0 in mode ip)
	mtu    int

	c counters

	out     atomic.Pointer[outSA] // the sending SA, nil = none
	pending map[uint32]*outSA     // installed, not yet active; guarded by m.saMu

	tunMu sync.Mutex // serialises writes to dev (receive loop, ICMP errors)

	// Liveness: the loops set the flags, livenessLoop reads and clears them.
	rxSeen, txSeen atomic.Bool
	stateMu        sync.Mutex // guards up, since, lastRx
	up             bool
	since          time.Time
	lastRx         time.Time
}

func newTunnel(m *Manager, cfg config.Tunnel, c esp.Cipher) *Tunnel {
	t := &Tunnel{
		m:       m,
		cfg:     cfg,
		name:    cfg.Name,
		cipher:  c,
		remote:  netip.AddrPortFrom(cfg.Remote.Unmap(), cfg.Port),
		gre:     cfg.Mode != config.ModeIP,
		mtu:     cfg.MTU,
		pending: map[uint32]*outSA{},
		since:   m.now(),
	}
	if cfg.GREKey != nil {
		t.hasKey, t.key = true, *cfg.GREKey
	}
	if t.gre {
		t.greLen = gre.HeaderLen(t.hasKey)
	}
	return t
}

// Name returns the tunnel's (and its interface's) name.
func (t *Tunnel) Name() string { return t.name }

// Up reports whether the peer was heard from within the dead interval.
func (t *Tunnel) Up() bool {
	t.stateMu.Lock()
	defer t.stateMu.Unlock()
	return t.up
}

// Status is a tunnel's state and counters as plain data, for
// `havpn tunnels -o json`.
type Status struct {
	Name   string         `json:"name"`
	Mode   string         `json:"mode"`
	Local  netip.AddrPort `json:"local"`
	Remote netip.AddrPort `json:"remote"`
	MTU    int            `json:"mtu"`
	// State is "up" or "down" (liveness), since Since.
	State  string    `json:"state"`
	Since  time.Time `json:"since"`
	LastRx time.Time `json:"last_rx,omitzero"`
	// Tx and Rx count inner packets and bytes through the tunnel.
	TxPackets uint64 `json:"tx_packets"`
	TxBytes   uint64 `json:"tx_bytes"`
	RxPackets uint64 `json:"rx_packets"`
	RxBytes   uint64 `json:"rx_bytes"`
	// KeepalivesSent and KeepalivesReceived count ESP dummy packets.
	KeepalivesSent     uint64 `json:"keepalives_sent"`
	KeepalivesReceived uint64 `json:"keepalives_received"`
	// ICMPSent counts PMTU errors written back into the interface,
	// ICMPLimited those suppressed by the rate limit.
	ICMPSent    uint64 `json:"icmp_sent"`
	ICMPLimited uint64 `json:"icmp_limited"`
	// DropsIn and DropsOut count dropped packets by reason; every reason
	// is present.
	DropsIn  map[string]uint64 `json:"drops_in"`
	DropsOut map[string]uint64 `json:"drops_out"`
	SAs      []SAStatus        `json:"sas"`
}

// SAStatus is one SA in a Status (no key material).
type SAStatus struct {
	Dir    string `json:"dir"` // "in" or "out"
	SPI    uint32 `json:"spi"`
	Cipher string `json:"cipher"`
	ESN    bool   `json:"esn"`
	// Active is set on the sending outbound SA.
	Active bool `json:"active"`
	// Seq is the last sequence number sent (out) or highest accepted (in).
	Seq uint64 `json:"seq"`
	// Expires is when a retired inbound SA goes away.
	Expires time.Time `json:"expires,omitzero"`
	esp.Stats
}

// Status returns the tunnel's state and counters.
func (t *Tunnel) Status() Status {
	s := Status{
		Name:               t.name,
		Mode:               string(t.cfg.Mode),
		Local:              t.sock.local,
		Remote:             t.remote,
		MTU:                t.mtu,
		TxPackets:          t.c.txPackets.Load(),
		TxBytes:            t.c.txBytes.Load(),
		RxPackets:          t.c.rxPackets.Load(),
		RxBytes:            t.c.rxBytes.Load(),
		KeepalivesSent:     t.c.kaSent.Load(),
		KeepalivesReceived: t.c.kaRecv.Load(),
		ICMPSent:           t.c.icmpSent.Load(),
		ICMPLimited:        t.c.icmpLimited.Load(),
		DropsIn:            map[string]uint64{},
		DropsOut:           map[string]uint64{},
	}
	if s.Mode == "" {
		s.Mode = string(config.ModeGRE)
	}
	if out := t.out.Load(); out != nil {
		s.Remote = out.remote
	}
	t.stateMu.Lock()
	s.State, s.Since, s.LastRx = "down", t.since, t.lastRx
	if t.up {
		s.State = "up"
	}
	t.stateMu.Unlock()
	for i := range t.c.in {
		s.DropsIn[inReasonNames[i]] = t.c.in[i].Load()
	}
	for i := range t.c.out {
		s.DropsOut[outReasonNames[i]] = t.c.out[i].Load()
	}
	for _, sa := range t.m.tunnelSAs(t) {
		st := SAStatus{Dir: "out", SPI: sa.SA.SPI, Cipher: sa.SA.Cipher.String(), ESN: sa.SA.ESN, Active: sa.Active, Seq: sa.SA.Seq, Expires: sa.Expires, Stats: sa.Stats}
		if sa.Inbound {
			st.Dir = "in"
		}
		s.SAs = append(s.SAs, st)
	}
	return s
}

// Status returns every tunnel's Status, in configuration order.
func (m *Manager) Status() []Status {
	out := make([]Status, 0, len(m.tunnels))
	for _, t := range m.tunnels {
		out = append(out, t.Status())
	}
	return out
}

// SocketStatus is a shared socket's counters of packets no tunnel owns.
type SocketStatus struct {
	Local netip.AddrPort `json:"local"`
	// ESP counts ESP packets received (all tunnels).
	ESP uint64 `json:"esp"`
	// IKE counts payloads handed to Options.IKE, IKEDropped those dropped
	// for want of a handler.
	IKE        uint64 `json:"ike"`
	IKEDropped uint64 `json:"ike_dropped"`
	// NATKeepalives counts RFC 3948 NAT-keepalives (dropped).
	NATKeepalives uint64 `json:"nat_keepalives"`
	// Invalid counts payloads that are neither ESP, IKE nor keepalive.
	Invalid uint64 `json:"invalid"`
	// NoSA counts ESP packets with an unknown SPI from a sender that is
	// no tunnel's remote (the others count in the tunnel's drops).
	NoSA uint64 `json:"no_sa"`
	// Truncated counts datagrams larger than the receive buffer.
	Truncated uint64 `json:"truncated"`
	// ReadErrors counts failed receive calls.
	ReadErrors uint64 `json:"read_errors"`
}

// Sockets returns the shared sockets' counters.
func (m *Manager) Sockets() []SocketStatus {
	out := make([]SocketStatus, 0, len(m.socks))
	for _, s := range m.socks {
		out = append(out, SocketStatus{
			Local: s.local, ESP: s.c.esp.Load(), IKE: s.c.ike.Load(), IKEDropped: s.c.ikeDropped.Load(),
			NATKeepalives: s.c.natKeepalive.Load(), Invalid: s.c.invalid.Load(), NoSA: s.c.noSA.Load(),
			Truncated: s.c.truncated.Load(), ReadErrors: s.c.readErrors.Load(),
		})
	}
	return out
}
