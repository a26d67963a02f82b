package ike

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/havpn/havpn/internal/ike/ikecrypto"
	"github.com/havpn/havpn/internal/ike/wire"
)

// natHash is the NAT_DETECTION_*_IP data: SHA-1(SPIi | SPIr | IP | Port)
// (RFC 7296 §2.23).
func natHash(spii, spir uint64, ap netip.AddrPort) []byte {
	h := sha1.New()
	var b [16]byte
	binary.BigEndian.PutUint64(b[:], spii)
	binary.BigEndian.PutUint64(b[8:], spir)
	h.Write(b[:])
	h.Write(ap.Addr().Unmap().AsSlice())
	h.Write([]byte{byte(ap.Port() >> 8), byte(ap.Port())})
	return h.Sum(nil)
}

// natSource is the NAT_DETECTION_SOURCE_IP notification of a message sent
// from `from` (RFC 7296 §2.23: the hash of the SPIs, IP address and port
// from which this packet was sent). With fake it carries random bytes
// that match nothing instead: the peer then believes that we are behind a
// NAT and encapsulates its ESP in UDP (RFC 3948), as strongSwan does with
// encap=yes or with its userspace kernel-libipsec. Our dataplane receives
// ESP only in UDP, so third-party peers on a NAT-free path need this
// (Peer.ForceEncap); havpn peers always encapsulate and get the true hash.
func (e *Engine) natSource(spii, spir uint64, from netip.AddrPort, fake bool) *wire.Notify {
	if fake {
		return &wire.Notify{NotifyType: wire.NATDetectionSourceIP, Data: e.randBytes(sha1.Size)}
	}
	return &wire.Notify{NotifyType: wire.NATDetectionSourceIP, Data: natHash(spii, spir, from)}
}

// forceEncapFor reports whether the peer configured for this pair of
// addresses wants forced UDP encapsulation (Peer.ForceEncap). A responder
// knows its peer only by address at IKE_SA_INIT; a peer that is not found
// that way is behind a NAT (or unknown) and encapsulates anyway.
func (e *Engine) forceEncapFor(local, remote netip.AddrPort) bool {
	for _, p := range e.peers {
		if p.cfg.Remote.Unmap() == remote.Addr().Unmap() && p.cfg.Local.Unmap() == local.Addr().Unmap() {
			return p.cfg.ForceEncap
		}
	}
	return false
}

// natMismatch reports whether notifications of type t are present and none
// matches ap.
func natMismatch(ps []wire.Payload, t wire.NotifyType, spii, spir uint64, ap netip.AddrPort) bool {
	want := natHash(spii, spir, ap)
	seen := false
	for _, n := range wire.Notifies(ps) {
		if n.NotifyType == t {
			seen = true
			if bytes.Equal(n.Data, want) {
				return false
			}
		}
	}
	return seen
}

// parseHashes decodes SIGNATURE_HASH_ALGORITHMS (RFC 7427 §4).
func parseHashes(ps []wire.Payload) []uint16 {
	n := wire.FindNotify(ps, wire.SignatureHashAlgorithms)
	if n == nil {
		return nil
	}
	var out []uint16
	for i := 0; i+1 < len(n.Data); i += 2 {
		out = append(out, binary.BigEndian.Uint16(n.Data[i:]))
	}
	return out
}

func hashesNotify() *wire.Notify {
	var d []byte
	for _, h := range ikecrypto.SignatureHashes() {
		d = binary.BigEndian.AppendUint16(d, h)
	}
	return &wire.Notify{NotifyType: wire.SignatureHashAlgorithms, Data: d}
}

// initiate starts a new IKE SA with p (IKE_SA_INIT request).
func (e *Engine) initiate(now time.Time, p *peerState) {
	sa := &ikeSA{
		e: e, peer: p, initiator: true, spiI: e.newSPI(), state: stInitSent, created: now,
		local:    netip.AddrPortFrom(p.cfg.Local, e.cfg.Port),
		remote:   netip.AddrPortFrom(p.cfg.Remote, e.cfg.Port),
		remoteID: p.cfg.RemoteID,
		ni:       e.randBytes(32),
		natFake:  p.cfg.ForceEncap,
	}
	ke, err := ikecrypto.NewKeyExchange(e.cfg.Proposals[0].DH, e.rand)
	if err != nil {
		sa.logger().Error("creating key exchange", errLog(err))
		e.peerFailed(now, p)
		return
	}
	sa.ke = ke
	e.sas[sa.spiI] = sa
	p.sa = sa
	sa.logger().Info("initiating IKE SA", "remote", sa.remote.String())
	sa.sendInit(now)
}

// sendInit (re)builds and sends the IKE_SA_INIT request (RFC 7296 §1.2).
func (sa *ikeSA) sendInit(now time.Time) {
	e := sa.e
	var ps []wire.Payload
	if sa.cookie != nil {
		ps = append(ps, &wire.Notify{NotifyType: wire.Cookie, Data: sa.cookie})
	}
	ps = append(ps,
		saPayload(e.cfg.Proposals, wire.ProtoIKE, nil, true),
		&wire.KE{Group: sa.ke.Group(), Data: sa.ke.PublicKey()},
		&wire.Nonce{Data: sa.ni},
		// RFC 7296 §2.23: SPIr is zero in the request's hashes.
		e.natSource(sa.spiI, 0, sa.local, sa.natFake),
		&wire.Notify{NotifyType: wire.NATDetectionDestinationIP, Data: natHash(sa.spiI, 0, sa.remote)},
	)
	if e.cfg.Fragmentation {
		ps = append(ps, &wire.Notify{NotifyType: wire.IKEv2FragmentationSupported})
	}
	ps = append(ps, hashesNotify())
	msg, err := (&wire.Message{Header: wire.Header{SPIi: sa.spiI, Exchange: wire.IKESAInit, Flags: wire.FlagInitiator}, Payloads: ps}).Encode()
	if err != nil {
		sa.fail(now, "encode", err)
		return
	}
	sa.initReq = msg
	sa.nextID = 1
	sa.start(now, &request{exchange: wire.IKESAInit, onResponse: func(time.Time, []wire.Payload) {}}, [][]byte{msg})
}

// handleInitResponse processes the IKE_SA_INIT response (initiator).
func (sa *ikeSA) handleInitResponse(now time.Time, h wire.Header, pkt []byte, local, remote netip.AddrPort) {
	e := sa.e
	m, err := wire.Decode(pkt)
	if err != nil {
		e.m.drop("syntax")
		return
	}
	ps := m.Payloads
	e.m.message(wire.IKESAInit.String(), "in")
	if n := wire.FindNotify(ps, wire.Cookie); n != nil && sa.retries < 3 && len(n.Data) >= 1 && len(n.Data) <= 64 {
		sa.retries++
		sa.cookie = slices.Clone(n.Data)
		sa.req = nil
		sa.sendInit(now)
		return
	}
	if n := wire.FindNotify(ps, wire.InvalidKEPayload); n != nil && sa.retries < 3 && len(n.Data) == 2 {
		g := binary.BigEndian.Uint16(n.Data)
		offered := slices.ContainsFunc(e.cfg.Proposals, func(p Proposal) bool { return p.DH == g })
		if offered && g != sa.ke.Group() {
			ke, err := ikecrypto.NewKeyExchange(g, e.rand)
			if err == nil {
				sa.retries++
				sa.ke = ke
				sa.req = nil
				sa.sendInit(now)
				return
			}
		}
	}
	if n := firstError(ps); n != nil {
		sa.fail(now, "ike_sa_init_refused", fmt.Errorf("peer answered %s", n.NotifyType))
		return
	}
	sar, _ := wire.Find(ps, wire.PayloadSA).(*wire.SA)
	ker, _ := wire.Find(ps, wire.PayloadKE).(*wire.KE)
	nr, _ := wire.Find(ps, wire.PayloadNonce).(*wire.Nonce)
	if sar == nil || ker == nil || nr == nil || h.SPIr == 0 {
		sa.fail(now, "syntax", fmt.Errorf("IKE_SA_INIT response without SA, KE, nonce or SPI: %w", wire.ErrSyntax))
		return
	}
	prop, _, ok := acceptChoice(e.cfg.Proposals, sar, wire.ProtoIKE, true)
	if !ok || prop.DH != sa.ke.Group() || ker.Group != prop.DH {
		sa.fail(now, "bad_proposal", fmt.Errorf("responder chose a proposal we did not offer: %w", wire.ErrSyntax))
		return
	}
	gir, err := sa.ke.SharedSecret(ker.Data)
	if err != nil {
		sa.fail(now, "bad_ke", err)
		return
	}
	sa.req = nil
	sa.spiR = h.SPIr
	sa.nr = slices.Clone(nr.Data)
	sa.initResp = slices.Clone(pkt)
	if err := sa.deriveKeys(prop, ikecrypto.SKEYSEED(mustPRF(prop.PRF), sa.ni, sa.nr, gir)); err != nil {
		sa.fail(now, "keys", err)
		return
	}
	sa.natRemote = natMismatch(ps, wire.NATDetectionSourceIP, sa.spiI, sa.spiR, remote)
	sa.natLocal = natMismatch(ps, wire.NATDetectionDestinationIP, sa.spiI, sa.spiR, local)
	sa.fragOK = e.cfg.Fragmentation && wire.FindNotify(ps, wire.IKEv2FragmentationSupported) != nil
	sa.peerHash = parseHashes(ps)
	// RFC 7296 §2.23: with a NAT continue on the NAT-T port; here always,
	// because our ESP is always UDP-encapsulated (either side may
	// encapsulate without a NAT, and must then not use port 500).
	sa.local = netip.AddrPortFrom(local.Addr(), e.cfg.NATPort)
	sa.remote = netip.AddrPortFrom(remote.Addr(), e.cfg.NATPort)
	sa.state = stAuthSent
	sa.sendAuth(now)
}

func mustPRF(id uint16) ikecrypto.PRF {
	p, err := ikecrypto.NewPRF(id)
	if err != nil {
		panic(err) // proposals only ever hold supported PRFs
	}
	return p
}

// cookieFor computes the stateless cookie of RFC 7296 §2.6:
// version | HMAC(secret, Ni | IPi | SPIi).
func (e *Engine) cookieFor(ni []byte, remote netip.AddrPort, spii uint64) []byte {
	m := hmac.New(sha256.New, e.secret[:])
	m.Write(ni)
	m.Write(remote.Addr().Unmap().AsSlice())
	m.Write(binary.BigEndian.AppendUint64(nil, spii))
	return append([]byte{1}, m.Sum(nil)[:16]...)
}

func (e *Engine) cookieRequired() bool {
	if e.cfg.CookieThreshold < 0 {
		return true
	}
	return len(e.halfOpen) >= e.cfg.CookieThreshold
}

// sendInitError answers an IKE_SA_INIT request statelessly with a notify
// (COOKIE, INVALID_KE_PAYLOAD, NO_PROPOSAL_CHOSEN), SPIr zero.
func (e *Engine) sendInitError(h wire.Header, t wire.NotifyType, data []byte, local, remote netip.AddrPort) {
	msg, err := (&wire.Message{
		Header:   wire.Header{SPIi: h.SPIi, Exchange: wire.IKESAInit, Flags: wire.FlagResponse},
		Payloads: notify(t, data),
	}).Encode()
	if err == nil {
		e.sendDatagram(msg, local, remote)
		e.m.message(wire.IKESAInit.String(), "out")
	}
}

// handleInitRequest answers an IKE_SA_INIT request (responder).
func (e *Engine) handleInitRequest(now time.Time, h wire.Header, pkt []byte, local, remote netip.AddrPort) {
	if old := e.halfOpen[halfKey{h.SPIi, remote}]; old != nil {
		if bytes.Equal(old.initReq, pkt) && old.initResp != nil {
			e.sendDatagram(old.initResp, local, remote)
			e.m.retransmit()
		} else {
			e.m.drop("duplicate_spi")
		}
		return
	}
	m, err := wire.Decode(pkt)
	if err != nil {
		e.m.drop("syntax")
		return
	}
	e.m.message(wire.IKESAInit.String(), "in")
	ps := m.Payloads
	sai, _ := wire.Find(ps, wire.PayloadSA).(*wire.SA)
	kei, _ := wire.Find(ps, wire.PayloadKE).(*wire.KE)
	ni, _ := wire.Find(ps, wire.PayloadNonce).(*wire.Nonce)
	if sai == nil || kei == nil || ni == nil {
		e.sendInitError(h, wire.InvalidSyntax, nil, local, remote)
		return
	}
	if e.cookieRequired() {
		want := e.cookieFor(ni.Data, remote, h.SPIi)
		if c := wire.FindNotify(ps, wire.Cookie); c == nil || !hmac.Equal(c.Data, want) {
			e.sendInitError(h, wire.Cookie, want, local, remote)
			e.m.drop("cookie_required")
			return
		}
	}
	prop, w, ok := selectProposalKE(e.cfg.Proposals, sai, wire.ProtoIKE, kei.Group)
	if !ok {
		e.log.Info("IKE_SA_INIT: no acceptable proposal", "peer", remote.String())
		e.m.fail("no_proposal_chosen")
		e.sendInitError(h, wire.NoProposalChosen, nil, local, remote)
		return
	}
	if kei.Group != prop.DH {
		e.sendInitError(h, wire.InvalidKEPayload, binary.BigEndian.AppendUint16(nil, prop.DH), local, remote)
		return
	}
	ke, err := ikecrypto.NewKeyExchange(prop.DH, e.rand)
	if err != nil {
		e.m.drop("ke")
		return
	}
	gir, err := ke.SharedSecret(kei.Data)
	if err != nil {
		e.sendInitError(h, wire.InvalidSyntax, nil, local, remote)
		return
	}
	sa := &ikeSA{
		e: e, spiI: h.SPIi, spiR: e.newSPI(), local: local, remote: remote, state: stHalfOpen, created: now,
		ni: slices.Clone(ni.Data), nr: e.randBytes(32), initReq: slices.Clone(pkt), peerNext: 1,
	}
	if err := sa.deriveKeys(prop, ikecrypto.SKEYSEED(mustPRF(prop.PRF), sa.ni, sa.nr, gir)); err != nil {
		e.m.drop("keys")
		return
	}
	sa.natRemote = natMismatch(ps, wire.NATDetectionSourceIP, sa.spiI, 0, remote)
	sa.natLocal = natMismatch(ps, wire.NATDetectionDestinationIP, sa.spiI, 0, local)
	// With a NAT on the path both sides encapsulate anyway (RFC 7296
	// §2.23); only a NAT-free path needs the fake.
	sa.natFake = !sa.natLocal && !sa.natRemote && e.forceEncapFor(local, remote)
	sa.fragOK = e.cfg.Fragmentation && wire.FindNotify(ps, wire.IKEv2FragmentationSupported) != nil
	sa.peerHash = parseHashes(ps)
	out := []wire.Payload{
		&wire.SA{Proposals: []wire.Proposal{prop.toWire(w.Num, wire.ProtoIKE, nil, true)}},
		&wire.KE{Group: prop.DH, Data: ke.PublicKey()},
		&wire.Nonce{Data: sa.nr},
		e.natSource(sa.spiI, sa.spiR, local, sa.natFake), // we answer from where the request arrived
		&wire.Notify{NotifyType: wire.NATDetectionDestinationIP, Data: natHash(sa.spiI, sa.spiR, remote)},
	}
	if e.cfg.certAuth() && len(e.cfg.CAs) > 0 {
		out = append(out, &wire.CertReq{Encoding: wire.CertX509Signature, Data: e.cfg.caHashes()})
	}
	if sa.fragOK {
		out = append(out, &wire.Notify{NotifyType: wire.IKEv2FragmentationSupported})
	}
	out = append(out, hashesNotify())
	msg, err := (&wire.Message{Header: wire.Header{SPIi: sa.spiI, SPIr: sa.spiR, Exchange: wire.IKESAInit, Flags: wire.FlagResponse}, Payloads: out}).Encode()
	if err != nil {
		e.m.drop("encode")
		return
	}
	sa.initResp = msg
	e.sas[sa.spiR] = sa
	sa.hk = halfKey{sa.spiI, remote}
	e.halfOpen[sa.hk] = sa
	e.sendDatagram(msg, local, remote)
	e.m.message(wire.IKESAInit.String(), "out")
}
