package ike

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/havpn/havpn/internal/ike/wire"
)

// Deps are the Engine's I/O seams.
type Deps struct {
	// Send transmits one UDP payload from local to remote. Payloads sent
	// from the NAT-T port already start with the non-ESP marker (RFC 3948
	// §2.2); a NAT keepalive is the single byte 0xFF (RFC 3948 §2.3). Send
	// must not block for long and must not call back into the Engine.
	Send func(payload []byte, local, remote netip.AddrPort)
	// Installer receives negotiated child SAs; nil = NopInstaller.
	Installer SAInstaller
	// Rand is the randomness source; nil = crypto/rand.
	Rand io.Reader
	// Log receives the engine's events; nil = discard.
	Log *slog.Logger
	// Registerer takes the havpn_ike_* metrics; nil = none.
	Registerer prometheus.Registerer
}

// Engine runs IKEv2 (RFC 7296) for a set of peers: a pure state machine
// whose input is datagrams and time, and whose output is datagrams (through
// Deps.Send) and child SAs (through Deps.Installer).
//
// An Engine is not safe for concurrent use: one goroutine owns it (Daemon
// does) and calls HandlePacket, Tick, Initiate, SAs and Shutdown. Every
// method takes the current time; the Engine never reads a clock.
type Engine struct {
	cfg       Config
	send      func([]byte, netip.AddrPort, netip.AddrPort)
	installer SAInstaller
	rand      io.Reader
	log       *slog.Logger
	m         *metrics

	sas      map[uint64]*ikeSA   // by our SPI
	halfOpen map[halfKey]*ikeSA  // responder SAs by initiator SPI and address
	peers    []*peerState        // configuration order
	inSPIs   map[uint32]struct{} // child SPIs we allocated
	secret   [32]byte            // cookie secret (RFC 7296 §2.6)
}

type halfKey struct {
	spii   uint64
	remote netip.AddrPort
}

// peerState is the engine's state for one configured peer.
type peerState struct {
	cfg         *Peer
	sa          *ikeSA    // the current IKE SA (connecting or established), or nil
	nextAttempt time.Time // initiator: when to (re)connect
	failures    int
	contacted   bool // an IKE SA with this peer was established since start
	down        bool // Terminate was called: no automatic (re)connect
}

// NewEngine validates cfg, applies defaults and returns an engine. It
// initiates nothing until the first Tick.
func NewEngine(cfg Config, d Deps) (*Engine, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if d.Send == nil {
		return nil, fmt.Errorf("no Send function: %w", ErrConfig)
	}
	e := &Engine{
		cfg: c, send: d.Send, installer: d.Installer, rand: d.Rand, log: d.Log,
		sas: map[uint64]*ikeSA{}, halfOpen: map[halfKey]*ikeSA{}, inSPIs: map[uint32]struct{}{},
	}
	if e.installer == nil {
		e.installer = NopInstaller{}
	}
	if e.rand == nil {
		e.rand = rand.Reader
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	e.m = newMetrics(d.Registerer)
	if _, err := io.ReadFull(e.rand, e.secret[:]); err != nil {
		return nil, fmt.Errorf("cookie secret: %w", err)
	}
	for i := range e.cfg.Peers {
		e.peers = append(e.peers, &peerState{cfg: &e.cfg.Peers[i]})
	}
	if len(c.PSK) > 0 {
		e.log.Warn("IKE uses a pre-shared key; certificates are recommended")
	}
	return e, nil
}

// randBytes returns n random bytes.
func (e *Engine) randBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := io.ReadFull(e.rand, b); err != nil {
		panic(fmt.Sprintf("ike: reading randomness: %v", err))
	}
	return b
}

// newSPI returns an unused non-zero IKE SPI.
func (e *Engine) newSPI() uint64 {
	for {
		s := binary.BigEndian.Uint64(e.randBytes(8))
		if _, used := e.sas[s]; s != 0 && !used {
			return s
		}
	}
}

// newChildSPI returns an unused inbound ESP SPI (>= 256, RFC 4303 §2.1).
func (e *Engine) newChildSPI() uint32 {
	for {
		s := binary.BigEndian.Uint32(e.randBytes(4))
		if _, used := e.inSPIs[s]; s >= 256 && !used {
			e.inSPIs[s] = struct{}{}
			return s
		}
	}
}

func (e *Engine) freeChildSPI(s uint32) { delete(e.inSPIs, s) }

// sendDatagram sends an IKE message, adding the non-ESP marker on the
// NAT-T port.
func (e *Engine) sendDatagram(msg []byte, local, remote netip.AddrPort) {
	if local.Port() == e.cfg.NATPort {
		b := make([]byte, 4+len(msg))
		copy(b[4:], msg)
		msg = b
	}
	e.send(msg, local, remote)
}

// HandlePacket processes one received UDP payload. On the NAT-T port the
// payload must start with the non-ESP marker (it is stripped here;
// keepalives are ignored); on the IKE port it is the IKE message itself.
// Malformed or unauthenticated datagrams are dropped and counted.
func (e *Engine) HandlePacket(now time.Time, payload []byte, local, remote netip.AddrPort) {
	if local.Port() == e.cfg.NATPort {
		switch {
		case len(payload) == 1 && payload[0] == 0xff:
			return // NAT-T keepalive
		case len(payload) >= 4 && binary.BigEndian.Uint32(payload) == 0:
			payload = payload[4:]
		default:
			e.m.drop("esp_on_ike_socket")
			return
		}
	}
	h, err := wire.DecodeHeader(payload)
	if err != nil {
		e.m.drop("header")
		return
	}
	if h.Exchange == wire.IKESAInit {
		if !h.IsResponse() && h.FromInitiator() && h.SPIr == 0 && h.MessageID == 0 {
			e.handleInitRequest(now, h, payload, local, remote)
			return
		}
		if h.IsResponse() && !h.FromInitiator() && h.MessageID == 0 {
			if sa := e.sas[h.SPIi]; sa != nil && sa.initiator && sa.state == stInitSent {
				sa.handleInitResponse(now, h, payload, local, remote)
				return
			}
		}
		e.m.drop("unexpected_ike_sa_init")
		return
	}
	our, their := h.SPIi, h.SPIr
	if h.FromInitiator() {
		our, their = h.SPIr, h.SPIi
	}
	sa := e.sas[our]
	if sa == nil || sa.peerSPI() != their || sa.initiator == h.FromInitiator() {
		e.m.drop("unknown_spi")
		return
	}
	sa.handleProtected(now, h, payload, local, remote)
}

// Initiate starts an IKE SA with the named peer now, unless one exists,
// and undoes Terminate.
func (e *Engine) Initiate(now time.Time, name string) error {
	p := e.peer(name)
	if p == nil {
		return fmt.Errorf("initiating %q: %w", name, ErrUnknownPeer)
	}
	p.down = false
	if p.sa == nil {
		e.initiate(now, p)
	}
	return nil
}

// Terminate deletes the named peer's IKE SA (and its child SAs) with the
// peer and stops reconnecting to it until Initiate.
func (e *Engine) Terminate(now time.Time, name string) error {
	p := e.peer(name)
	if p == nil {
		return fmt.Errorf("terminating %q: %w", name, ErrUnknownPeer)
	}
	p.down = true
	for _, sa := range e.sasSnapshot() {
		if sa.peer != p {
			continue
		}
		if sa.state == stEstablished {
			sa.deleteIKE(now)
		} else if sa.state != stDeleting && sa.state != stRekeyed {
			sa.destroy(now, "terminated", false)
		}
	}
	return nil
}

func (e *Engine) peer(name string) *peerState {
	for _, p := range e.peers {
		if p.cfg.Name == name {
			return p
		}
	}
	return nil
}

// Tick runs the timers (retransmissions, DPD, rekeying, expiry, NAT
// keepalives, (re)connecting initiators) due at now and returns when it
// wants to be called next.
func (e *Engine) Tick(now time.Time) time.Time {
	for _, p := range e.peers {
		if p.cfg.Initiator && !p.down && p.sa == nil && !now.Before(p.nextAttempt) {
			e.initiate(now, p)
		}
	}
	for _, sa := range e.sasSnapshot() {
		sa.tick(now)
	}
	next := now.Add(time.Hour)
	earlier := func(t time.Time) {
		if !t.IsZero() && t.Before(next) {
			next = t
		}
	}
	for _, p := range e.peers {
		if p.cfg.Initiator && !p.down && p.sa == nil {
			earlier(p.nextAttempt)
		}
	}
	for _, sa := range e.sas {
		if sa != nil {
			earlier(sa.nextTimer())
		}
	}
	if next.Before(now) {
		next = now
	}
	e.updateGauges()
	return next
}

func (e *Engine) sasSnapshot() []*ikeSA {
	out := make([]*ikeSA, 0, len(e.sas))
	for _, sa := range e.sas {
		if sa != nil { // nil: SPI reserved for an IKE rekey
			out = append(out, sa)
		}
	}
	return out
}

func (e *Engine) updateGauges() {
	if e.m == nil {
		return
	}
	var ike, child int
	for _, sa := range e.sas {
		if sa != nil && sa.state == stEstablished {
			ike++
			child += len(sa.children)
		}
	}
	e.m.gauges(ike, child)
}

// Shutdown deletes every IKE SA: it sends a Delete to each established
// peer (without waiting for answers) and removes all child SAs.
func (e *Engine) Shutdown(now time.Time) {
	for _, sa := range e.sasSnapshot() {
		if sa.state == stEstablished {
			sa.sendDeleteNoWait(now)
		}
		sa.destroy(now, "shutdown", false)
	}
	for _, p := range e.peers {
		p.nextAttempt = time.Time{}
	}
	e.updateGauges()
}

// peerByID returns the configured peer with identity id, preferring one
// whose remote address is addr.
func (e *Engine) peerByID(id Identity, addr netip.Addr) *peerState {
	var found *peerState
	for _, p := range e.peers {
		if p.cfg.RemoteID.Equal(id) {
			if p.cfg.Remote == addr.Unmap() {
				return p
			}
			if found == nil {
				found = p
			}
		}
	}
	return found
}

// peerFailed records a failed or lost IKE SA of p and schedules the next
// attempt with exponential backoff.
func (e *Engine) peerFailed(now time.Time, p *peerState) {
	p.failures++
	d := e.cfg.RetryInterval
	for i := 1; i < p.failures && d < 2*time.Minute; i++ {
		d *= 2
	}
	d = min(d, 2*time.Minute)
	p.nextAttempt = now.Add(d)
}

// errLog is the log attribute of an error.
func errLog(err error) slog.Attr { return slog.Any("err", err) }
