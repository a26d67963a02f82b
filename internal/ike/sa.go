package ike

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"github.com/havpn/havpn/internal/ike/ikecrypto"
	"github.com/havpn/havpn/internal/ike/wire"
)

// saState is the life cycle of an IKE SA:
//
//	initiator: initSent --IKE_SA_INIT resp--> authSent --IKE_AUTH resp--> established
//	responder: (IKE_SA_INIT req) halfOpen --IKE_AUTH req--> established
//	established --we send Delete--> deleting --answer/timeout--> (gone)
//	established --IKE rekey done--> rekeyed --Delete exchange/timeout--> (gone)
//
// Failures in any state remove the SA and its child SAs ("gone"); an
// initiator peer then retries with backoff.
type saState uint8

const (
	stInitSent saState = iota + 1
	stAuthSent
	stHalfOpen
	stEstablished
	stDeleting
	stRekeyed
	stDead
)

// String returns the state's name as shown by SAs.
func (s saState) String() string {
	switch s {
	case stInitSent, stAuthSent, stHalfOpen:
		return "CONNECTING"
	case stEstablished:
		return "ESTABLISHED"
	case stDeleting:
		return "DELETING"
	case stRekeyed:
		return "REKEYED"
	case stDead:
		return "DEAD"
	}
	return "UNKNOWN"
}

// ikeSA is one IKE SA and its child SAs. Owned by the Engine's goroutine.
type ikeSA struct {
	e         *Engine
	peer      *peerState // nil on a responder until IKE_AUTH
	initiator bool       // we are the original initiator (I flag)
	spiI      uint64
	spiR      uint64
	local     netip.AddrPort
	remote    netip.AddrPort
	state     saState
	created   time.Time
	estAt     time.Time

	prop Proposal
	prf  ikecrypto.PRF
	keys ikecrypto.IKEKeys
	in   ikecrypto.SKCipher // protects messages from the peer
	out  ikecrypto.SKCipher // protects messages to the peer

	ke        *ikecrypto.KeyExchange
	ni, nr    []byte
	initReq   []byte // IKE_SA_INIT request as sent (signed octets)
	initResp  []byte
	cookie    []byte
	retries   int  // IKE_SA_INIT restarts (cookie, INVALID_KE)
	natLocal  bool // this side is behind a NAT (RFC 7296 §2.23)
	natRemote bool // the peer is behind a NAT (or claims to be, to force encapsulation)
	natFake   bool // we claimed to be behind a NAT (Peer.ForceEncap), see natSource
	fragOK    bool // both sides announced RFC 7383
	peerHash  []uint16
	remoteID  Identity
	authChild *childOffer
	hk        halfKey // responder: key in Engine.halfOpen

	nextID   uint32 // our next request's message ID
	req      *request
	queue    []*request
	peerNext uint32   // next request ID expected from the peer
	lastResp [][]byte // datagrams of our response to peerNext-1
	reasm    [2]*reassembly

	children    []*childSA
	lastRecv    time.Time
	rekeyAt     time.Time
	expireAt    time.Time
	keepaliveAt time.Time
	rekeying    bool
	goneAt      time.Time // stRekeyed/stDeleting: drop at the latest then
	successor   *ikeSA    // the IKE SA that replaced this one (rekey)
}

// request is one of our outstanding (or queued) requests.
type request struct {
	exchange   wire.ExchangeType
	payloads   []wire.Payload
	msgID      uint32
	pkts       [][]byte
	next       time.Time
	interval   time.Duration
	deadline   time.Time
	timeout    time.Duration // 0 = Config.RetransmitTimeout
	onResponse func(now time.Time, ps []wire.Payload)
	onTimeout  func(now time.Time) // nil = the peer is lost
}

type reassembly struct {
	msgID uint32
	total uint16
	first wire.PayloadType
	parts [][]byte
	have  int
}

// owner returns the IKE SA that now owns this SA's children: sa itself, or
// its successor after rekeys.
func (sa *ikeSA) owner() *ikeSA {
	for sa.successor != nil {
		sa = sa.successor
	}
	return sa
}

func (sa *ikeSA) localSPI() uint64 {
	if sa.initiator {
		return sa.spiI
	}
	return sa.spiR
}

func (sa *ikeSA) peerSPI() uint64 {
	if sa.initiator {
		return sa.spiR
	}
	return sa.spiI
}

func (sa *ikeSA) peerName() string {
	if sa.peer != nil {
		return sa.peer.cfg.Name
	}
	return sa.remote.String()
}

func (sa *ikeSA) logger() *slog.Logger {
	return sa.e.log.With("peer", sa.peerName(), "spi", fmt.Sprintf("%016x_i %016x_r", sa.spiI, sa.spiR))
}

// deriveKeys computes SK_* from skeyseed and sets up the SK ciphers.
func (sa *ikeSA) deriveKeys(prop Proposal, skeyseed []byte) error {
	prf, err := ikecrypto.NewPRF(prop.PRF)
	if err != nil {
		return err
	}
	encLen, err := ikecrypto.EncrKeyLen(prop.Encr, prop.KeyBits)
	if err != nil {
		return err
	}
	integLen, err := ikecrypto.IntegKeyLen(prop.Integ)
	if err != nil {
		return err
	}
	sa.prop, sa.prf = prop, prf
	sa.keys = ikecrypto.DeriveIKEKeys(prf, skeyseed, sa.ni, sa.nr, sa.spiI, sa.spiR, integLen, encLen)
	ci, err := ikecrypto.NewSKCipher(prop.Encr, sa.keys.Ei, prop.Integ, sa.keys.Ai)
	if err != nil {
		return err
	}
	cr, err := ikecrypto.NewSKCipher(prop.Encr, sa.keys.Er, prop.Integ, sa.keys.Ar)
	if err != nil {
		return err
	}
	if sa.initiator {
		sa.out, sa.in = ci, cr
	} else {
		sa.out, sa.in = cr, ci
	}
	return nil
}

// maxMessage is the largest IKE message that fits FragmentSize on the
// current path (IP and UDP headers and the non-ESP marker subtracted).
func (sa *ikeSA) maxMessage() int {
	n := sa.e.cfg.FragmentSize - 8
	if sa.remote.Addr().Unmap().Is4() {
		n -= 20
	} else {
		n -= 40
	}
	if sa.local.Port() == sa.e.cfg.NATPort {
		n -= 4
	}
	return n
}

// protect encodes payloads as one SK message, or as SKF fragments when the
// message would exceed the path limit and the peer supports RFC 7383.
func (sa *ikeSA) protect(ex wire.ExchangeType, msgID uint32, response bool, ps []wire.Payload) ([][]byte, error) {
	inner, first, err := wire.AppendPayloads(nil, ps)
	if err != nil {
		return nil, fmt.Errorf("encoding %s payloads: %w", ex, err)
	}
	h := wire.Header{SPIi: sa.spiI, SPIr: sa.spiR, Exchange: ex, MessageID: msgID}
	if sa.initiator {
		h.Flags |= wire.FlagInitiator
	}
	if response {
		h.Flags |= wire.FlagResponse
	}
	limit := sa.maxMessage()
	total := wire.HeaderLen + 4 + sa.out.SealedLen(len(inner))
	if !sa.fragOK || total <= limit || ex == wire.IKESAInit {
		h.NextPayload, h.Length = wire.PayloadSK, uint32(total)
		b := wire.AppendHeader(make([]byte, 0, total), &h)
		sealed := uint16(4 + sa.out.SealedLen(len(inner)))
		b = append(b, byte(first), 0, byte(sealed>>8), byte(sealed))
		out, err := sa.out.Seal(b, inner, sa.e.rand)
		if err != nil {
			return nil, err
		}
		return [][]byte{out}, nil
	}
	// RFC 7383 §2.5: split the inner payloads; each fragment is protected
	// on its own.
	const fragHdr = wire.HeaderLen + 4 + wire.FragmentHeaderLen
	chunk := limit - fragHdr - sa.out.SealedLen(0)
	for chunk > 1 && fragHdr+sa.out.SealedLen(chunk) > limit {
		chunk--
	}
	if chunk < 64 {
		return nil, fmt.Errorf("fragment size %d too small: %w", sa.e.cfg.FragmentSize, ErrConfig)
	}
	n := (len(inner) + chunk - 1) / chunk
	var pkts [][]byte
	for i := 0; i < n; i++ {
		part := inner[i*chunk : min(len(inner), (i+1)*chunk)]
		sealed := 4 + wire.FragmentHeaderLen + sa.out.SealedLen(len(part))
		h.NextPayload, h.Length = wire.PayloadSKF, uint32(wire.HeaderLen+sealed)
		b := wire.AppendHeader(make([]byte, 0, int(h.Length)), &h)
		next := byte(0)
		if i == 0 {
			next = byte(first)
		}
		b = append(b, next, 0, byte(sealed>>8), byte(sealed), byte((i+1)>>8), byte(i+1), byte(n>>8), byte(n))
		out, err := sa.out.Seal(b, part, sa.e.rand)
		if err != nil {
			return nil, err
		}
		pkts = append(pkts, out)
	}
	return pkts, nil
}

func (sa *ikeSA) transmit(pkts [][]byte, ex wire.ExchangeType) {
	for _, p := range pkts {
		sa.e.sendDatagram(p, sa.local, sa.remote)
	}
	sa.e.m.message(ex.String(), "out")
}

// enqueue queues a request; it is sent once the previous one is answered
// (window size 1, RFC 7296 §2.3).
func (sa *ikeSA) enqueue(now time.Time, r *request) {
	sa.queue = append(sa.queue, r)
	sa.sendNext(now)
}

func (sa *ikeSA) sendNext(now time.Time) {
	for sa.req == nil && len(sa.queue) > 0 && (sa.state == stEstablished || sa.state == stAuthSent || sa.state == stRekeyed || sa.state == stDeleting) {
		r := sa.queue[0]
		sa.queue = sa.queue[1:]
		r.msgID = sa.nextID
		pkts, err := sa.protect(r.exchange, r.msgID, false, r.payloads)
		if err != nil {
			sa.logger().Error("building IKE request", "exchange", r.exchange.String(), errLog(err))
			continue
		}
		sa.nextID++
		sa.start(now, r, pkts)
	}
}

// start makes r the outstanding request and sends it.
func (sa *ikeSA) start(now time.Time, r *request, pkts [][]byte) {
	r.pkts = pkts
	r.interval = sa.e.cfg.RetransmitBase
	to := r.timeout
	if to == 0 {
		to = sa.e.cfg.RetransmitTimeout
	}
	r.deadline = now.Add(to)
	r.next = now.Add(r.interval)
	if r.next.After(r.deadline) {
		r.next = r.deadline
	}
	sa.req = r
	sa.transmit(pkts, r.exchange)
}

// respond sends a response and keeps it for retransmitted requests.
func (sa *ikeSA) respond(ex wire.ExchangeType, msgID uint32, ps []wire.Payload) {
	pkts, err := sa.protect(ex, msgID, true, ps)
	if err != nil {
		sa.logger().Error("building IKE response", "exchange", ex.String(), errLog(err))
		return
	}
	sa.lastResp = pkts
	sa.transmit(pkts, ex)
}

// handleProtected processes an SK/SKF message for this SA.
func (sa *ikeSA) handleProtected(now time.Time, h wire.Header, pkt []byte, local, remote netip.AddrPort) {
	e := sa.e
	if sa.in == nil {
		e.m.drop("no_keys")
		return
	}
	m, err := wire.Decode(pkt)
	if err != nil || len(m.Payloads) == 0 {
		e.m.drop("syntax")
		return
	}
	resp := h.IsResponse()
	var ps []wire.Payload
	switch p := m.Payloads[len(m.Payloads)-1].(type) {
	case *wire.Encrypted:
		inner, err := sa.in.Open(m.Raw[:m.EncOffset+4], p.Data)
		if err != nil {
			e.m.drop("integrity")
			return
		}
		if !resp && h.MessageID+1 == sa.peerNext && sa.lastResp != nil {
			sa.transmit(sa.lastResp, h.Exchange) // retransmitted request
			e.m.retransmit()
			return
		}
		if ps, err = wire.DecodePayloads(p.Inner, inner); err != nil {
			e.m.drop("syntax")
			return
		}
	case *wire.Fragment:
		if !sa.fragOK {
			e.m.drop("unexpected_fragment")
			return
		}
		inner, err := sa.in.Open(m.Raw[:m.EncOffset+4+wire.FragmentHeaderLen], p.Data)
		if err != nil {
			e.m.drop("integrity")
			return
		}
		if !resp && h.MessageID+1 == sa.peerNext && sa.lastResp != nil {
			if p.Number == 1 { // RFC 7383 §2.6.1: answer a retransmission once
				sa.transmit(sa.lastResp, h.Exchange)
				e.m.retransmit()
			}
			return
		}
		first, data, done := sa.reassemble(resp, h.MessageID, p, inner)
		if !done {
			return
		}
		if ps, err = wire.DecodePayloads(first, data); err != nil {
			e.m.drop("syntax")
			return
		}
	default:
		e.m.drop("unprotected")
		return
	}
	sa.lastRecv = now
	e.m.message(h.Exchange.String(), "in")
	if resp {
		r := sa.req
		if r == nil || r.msgID != h.MessageID || r.exchange != h.Exchange {
			e.m.drop("unexpected_response")
			return
		}
		sa.req = nil
		sa.float(local, remote)
		r.onResponse(now, ps)
		sa.sendNext(now)
		return
	}
	if h.MessageID != sa.peerNext {
		e.m.drop("message_id")
		return
	}
	sa.float(local, remote)
	for _, p := range ps {
		if u, ok := p.(*wire.Unknown); ok && u.Critical {
			sa.peerNext++
			sa.respond(h.Exchange, h.MessageID, []wire.Payload{&wire.Notify{NotifyType: wire.UnsupportedCriticalPayload, Data: []byte{byte(u.PType)}}})
			return
		}
	}
	out, after := sa.handleRequest(now, h.Exchange, ps)
	sa.peerNext++
	sa.respond(h.Exchange, h.MessageID, out)
	if after != nil {
		after(now)
	}
	sa.sendNext(now)
}

// reassemble collects SKF fragments (RFC 7383 §2.6). It keeps one message
// per direction; a fragment of a newer message replaces an older one.
func (sa *ikeSA) reassemble(resp bool, msgID uint32, f *wire.Fragment, inner []byte) (wire.PayloadType, []byte, bool) {
	i := 0
	if resp {
		i = 1
	}
	r := sa.reasm[i]
	if r == nil || r.msgID != msgID || r.total != f.Total {
		if f.Total > 128 {
			sa.e.m.drop("too_many_fragments")
			return 0, nil, false
		}
		r = &reassembly{msgID: msgID, total: f.Total, parts: make([][]byte, f.Total)}
		sa.reasm[i] = r
	}
	if r.parts[f.Number-1] != nil {
		return 0, nil, false
	}
	r.parts[f.Number-1] = inner
	r.have++
	if f.Number == 1 {
		r.first = f.Inner
	}
	if r.have < int(r.total) {
		return 0, nil, false
	}
	var data []byte
	for _, p := range r.parts {
		data = append(data, p...)
	}
	sa.reasm[i] = nil
	return r.first, data, true
}

// float follows the peer to the address and port of an authenticated
// message received on the NAT-T port (RFC 7296 §2.23).
func (sa *ikeSA) float(local, remote netip.AddrPort) {
	if local.Port() != sa.e.cfg.NATPort || (local == sa.local && remote == sa.remote) {
		return
	}
	if sa.local != local || sa.remote != remote {
		sa.logger().Debug("IKE SA endpoints changed", "local", local.String(), "remote", remote.String())
	}
	sa.local, sa.remote = local, remote
}

// handleRequest dispatches a decrypted request and returns the response
// payloads and an optional action to run after the response was sent.
func (sa *ikeSA) handleRequest(now time.Time, ex wire.ExchangeType, ps []wire.Payload) ([]wire.Payload, func(time.Time)) {
	switch {
	case ex == wire.IKEAuth && sa.state == stHalfOpen && !sa.initiator:
		return sa.handleAuthRequest(now, ps)
	case ex == wire.CreateChildSA && sa.state == stEstablished:
		return sa.handleCreateChild(now, ps), nil
	case ex == wire.CreateChildSA:
		return notify(wire.TemporaryFailure, nil), nil
	case ex == wire.Informational && sa.state >= stEstablished:
		return sa.handleInformational(now, ps)
	}
	sa.e.m.drop("unexpected_request")
	return notify(wire.InvalidSyntax, nil), nil
}

func notify(t wire.NotifyType, data []byte) []wire.Payload {
	return []wire.Payload{&wire.Notify{NotifyType: t, Data: data}}
}

// firstError returns the first error notification in ps.
func firstError(ps []wire.Payload) *wire.Notify {
	for _, n := range wire.Notifies(ps) {
		if n.NotifyType.IsError() {
			return n
		}
	}
	return nil
}

// jitter returns a random duration in [0, d).
func (sa *ikeSA) jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(d)))
}

// rekeyTime returns when, after creation, an SA with hard lifetime l is
// rekeyed: the IKE SA's initiator at l - margin - [0, margin/2), the
// responder at l - margin/2 - [0, margin/2), so that normally only one side
// rekeys (no collisions) and the other is the fallback.
func (sa *ikeSA) rekeyTime(l time.Duration) time.Duration {
	m := sa.e.cfg.RekeyMargin
	if sa.initiator {
		return l - m - sa.jitter(m/2)
	}
	return l - m/2 - sa.jitter(m/2)
}

// establish marks the SA established and arms its timers.
func (sa *ikeSA) establish(now time.Time) {
	c := &sa.e.cfg
	sa.state = stEstablished
	sa.estAt, sa.lastRecv = now, now
	sa.rekeyAt = now.Add(sa.rekeyTime(c.IKELifetime))
	sa.expireAt = now.Add(c.IKELifetime)
	if sa.natLocal {
		sa.keepaliveAt = now.Add(c.NATKeepalive)
	}
	sa.ke, sa.initReq, sa.initResp, sa.cookie = nil, nil, nil, nil
	if p := sa.peer; p != nil {
		p.sa, p.failures, p.contacted = sa, 0, true
	}
	if sa.e.halfOpen[sa.hk] == sa {
		delete(sa.e.halfOpen, sa.hk)
	}
	sa.e.m.establish("ike")
}

// tick runs the SA's timers.
func (sa *ikeSA) tick(now time.Time) {
	c := &sa.e.cfg
	if r := sa.req; r != nil && !now.Before(r.next) {
		if !now.Before(r.deadline) {
			sa.req = nil
			if r.onTimeout != nil {
				r.onTimeout(now)
			} else {
				sa.lost(now, fmt.Sprintf("no answer to %s request %d", r.exchange, r.msgID))
			}
			return
		}
		sa.transmit(r.pkts, r.exchange)
		sa.e.m.retransmit()
		r.interval = min(2*r.interval, c.RetransmitMax)
		r.next = now.Add(r.interval)
		if r.next.After(r.deadline) {
			r.next = r.deadline
		}
	}
	switch sa.state {
	case stHalfOpen:
		if !now.Before(sa.created.Add(c.HalfOpenTimeout)) {
			sa.destroy(now, "half-open timeout", false)
		}
	case stRekeyed, stDeleting:
		if !sa.goneAt.IsZero() && !now.Before(sa.goneAt) {
			sa.destroy(now, "superseded", false)
		}
	case stEstablished:
		if !now.Before(sa.expireAt) {
			sa.logger().Info("IKE SA hard lifetime reached")
			sa.deleteIKE(now)
			return
		}
		if !sa.rekeying && !now.Before(sa.rekeyAt) {
			if slices.ContainsFunc(sa.children, func(ch *childSA) bool { return ch.rekeying }) {
				sa.rekeyAt = now.Add(time.Second) // not while a child is rekeyed
			} else {
				sa.startIKERekey(now)
			}
		}
		if c.DPD > 0 && sa.req == nil && len(sa.queue) == 0 && !now.Before(sa.lastRecv.Add(c.DPD)) {
			sa.dpd(now)
		}
		if sa.natLocal && !now.Before(sa.keepaliveAt) {
			sa.e.send([]byte{0xff}, sa.local, sa.remote)
			sa.keepaliveAt = now.Add(c.NATKeepalive)
		}
		for _, ch := range append([]*childSA(nil), sa.children...) {
			sa.tickChild(now, ch)
		}
	}
}

// nextTimer returns the earliest time tick has something to do.
func (sa *ikeSA) nextTimer() time.Time {
	c := &sa.e.cfg
	var t time.Time
	at := func(x time.Time) {
		if !x.IsZero() && (t.IsZero() || x.Before(t)) {
			t = x
		}
	}
	if sa.req != nil {
		at(sa.req.next)
	}
	switch sa.state {
	case stHalfOpen:
		at(sa.created.Add(c.HalfOpenTimeout))
	case stRekeyed, stDeleting:
		at(sa.goneAt)
	case stEstablished:
		at(sa.expireAt)
		if !sa.rekeying {
			at(sa.rekeyAt)
		}
		if c.DPD > 0 && sa.req == nil && len(sa.queue) == 0 {
			at(sa.lastRecv.Add(c.DPD))
		}
		if sa.natLocal {
			at(sa.keepaliveAt)
		}
		for _, ch := range sa.children {
			at(ch.nextTimer(c))
		}
	}
	return t
}

// dpd sends an empty INFORMATIONAL request (liveness check, RFC 7296
// §1.4); no answer within DPD means the peer is dead.
func (sa *ikeSA) dpd(now time.Time) {
	sa.enqueue(now, &request{
		exchange:   wire.Informational,
		timeout:    sa.e.cfg.DPD,
		onResponse: func(time.Time, []wire.Payload) {},
	})
}

// lost drops an SA whose peer stopped answering.
func (sa *ikeSA) lost(now time.Time, why string) {
	if sa.state == stRekeyed || sa.state == stDeleting {
		sa.destroy(now, why, false)
		return
	}
	sa.logger().Warn("IKE peer lost", "reason", why)
	sa.e.m.fail("peer_lost")
	sa.destroy(now, why, true)
}

// fail aborts an SA that could not be set up.
func (sa *ikeSA) fail(now time.Time, reason string, err error) {
	sa.logger().Warn("IKE SA failed", "reason", reason, errLog(err))
	sa.e.m.fail(reason)
	sa.destroy(now, reason, true)
}

// destroy removes the SA, its child SAs (from the dataplane too) and, for
// a failure, schedules a retry of an initiator peer.
func (sa *ikeSA) destroy(now time.Time, why string, failed bool) {
	if sa.state == stDead {
		return
	}
	e := sa.e
	for _, ch := range sa.children {
		sa.removeChild(ch)
	}
	sa.children = nil
	if sa.authChild != nil {
		e.freeChildSPI(sa.authChild.inSPI)
		sa.authChild = nil
	}
	if e.sas[sa.localSPI()] == sa {
		delete(e.sas, sa.localSPI())
	}
	if e.halfOpen[sa.hk] == sa {
		delete(e.halfOpen, sa.hk)
	}
	wasEstablished := sa.state == stEstablished
	sa.state = stDead
	sa.req, sa.queue = nil, nil
	if p := sa.peer; p != nil && p.sa == sa {
		p.sa = nil
		if failed {
			e.peerFailed(now, p)
		} else {
			p.nextAttempt = now.Add(e.cfg.RetryInterval)
		}
	}
	if wasEstablished {
		sa.logger().Info("IKE SA deleted", "reason", why)
	}
}

// sendDeleteNoWait sends an INFORMATIONAL Delete of the IKE SA without
// waiting for the answer (shutdown, replaced SAs).
func (sa *ikeSA) sendDeleteNoWait(now time.Time) {
	pkts, err := sa.protect(wire.Informational, sa.nextID, false, []wire.Payload{&wire.Delete{Protocol: wire.ProtoIKE}})
	if err == nil {
		sa.nextID++
		sa.transmit(pkts, wire.Informational)
	}
}

// deleteIKE deletes the IKE SA with the peer (RFC 7296 §1.4.1) and then
// locally; children go with it.
func (sa *ikeSA) deleteIKE(now time.Time) {
	sa.queue = nil
	sa.req = nil
	sa.state = stDeleting
	sa.goneAt = now.Add(sa.e.cfg.RetransmitTimeout)
	if p := sa.peer; p != nil && p.sa == sa {
		p.sa = nil
		p.nextAttempt = now
	}
	sa.enqueue(now, &request{
		exchange:   wire.Informational,
		payloads:   []wire.Payload{&wire.Delete{Protocol: wire.ProtoIKE}},
		onResponse: func(now time.Time, _ []wire.Payload) { sa.destroy(now, "deleted", false) },
		onTimeout:  func(now time.Time) { sa.destroy(now, "delete unanswered", false) },
	})
}

func be32(b []byte) uint32 { return binary.BigEndian.Uint32(b) }

func spiBytes32(s uint32) []byte { return binary.BigEndian.AppendUint32(nil, s) }

func spiBytes64(s uint64) []byte { return binary.BigEndian.AppendUint64(nil, s) }
