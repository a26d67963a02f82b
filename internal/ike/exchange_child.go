package ike

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/havpn/havpn/internal/ike/ikecrypto"
	"github.com/havpn/havpn/internal/ike/wire"
)

// childSA is one installed child SA pair.
type childSA struct {
	inSPI, outSPI     uint32
	prop              Proposal
	mode              ChildMode
	localTS, remoteTS []TrafficSelector
	inKey, outKey     []byte
	created           time.Time
	rekeyAt, expireAt time.Time
	rekeying          bool      // our CREATE_CHILD_SA rekey is in flight
	deleting          bool      // our Delete is in flight
	successor         *childSA  // rekeyed by the peer; we wait for its Delete
	replacedAt        time.Time // when successor was set
	inactive          bool      // installed without activating its outbound SA
}

func (ch *childSA) nextTimer(c *Config) time.Time {
	switch {
	case ch.successor != nil:
		return ch.replacedAt.Add(c.RetransmitTimeout)
	case ch.deleting:
		return time.Time{}
	case ch.rekeying:
		return ch.expireAt
	}
	if ch.rekeyAt.Before(ch.expireAt) {
		return ch.rekeyAt
	}
	return ch.expireAt
}

// childOffer is a child SA we proposed and wait an answer for.
type childOffer struct {
	inSPI             uint32
	props             []Proposal
	withDH            bool // CREATE_CHILD_SA: proposals carry the PFS group
	ke                *ikecrypto.KeyExchange
	ni                []byte
	mode              ChildMode
	localTS, remoteTS []TrafficSelector
}

// notifyError is a child negotiation failure to report to the peer.
type notifyError struct {
	t    wire.NotifyType
	data []byte
	msg  string
}

func (n *notifyError) Error() string { return fmt.Sprintf("%s: %s", n.t, n.msg) }

// newChildOffer prepares a child SA proposal for the peer. Outside
// IKE_AUTH (withDH) the proposals keep their PFS groups and a KE is made
// for the first one.
func (sa *ikeSA) newChildOffer(withDH bool) *childOffer {
	p := sa.peer.cfg
	o := &childOffer{inSPI: sa.e.newChildSPI(), props: slices.Clone(sa.e.cfg.ESPProposals), withDH: withDH, mode: p.Mode}
	o.localTS, o.remoteTS = p.selectors()
	if !withDH {
		for i := range o.props {
			o.props[i].DH = 0
		}
	} else {
		o.ni = sa.e.randBytes(32)
		if g := o.props[0].DH; g != 0 {
			ke, err := ikecrypto.NewKeyExchange(g, sa.e.rand)
			if err == nil {
				o.ke = ke
			}
		}
	}
	return o
}

// payloads returns [N(USE_TRANSPORT_MODE)], SA, [Ni, [KEi]], TSi, TSr.
func (o *childOffer) payloads() []wire.Payload {
	var ps []wire.Payload
	if o.mode == ModeGRE {
		ps = append(ps, &wire.Notify{NotifyType: wire.UseTransportMode})
	}
	ps = append(ps, saPayload(o.props, wire.ProtoESP, spiBytes32(o.inSPI), o.withDH))
	if o.ni != nil {
		ps = append(ps, &wire.Nonce{Data: o.ni})
	}
	if o.ke != nil {
		ps = append(ps, &wire.KE{Group: o.ke.Group(), Data: o.ke.PublicKey()})
	}
	return append(ps, &wire.TS{Selectors: o.localTS}, &wire.TS{Responder: true, Selectors: o.remoteTS})
}

// completeChild processes the responder's answer to offer o and installs
// the child (we are the exchange initiator: out = initiator keys).
func (sa *ikeSA) completeChild(now time.Time, o *childOffer, ps []wire.Payload, ni, nr []byte) (*childSA, error) {
	if n := firstError(ps); n != nil {
		return nil, &notifyError{t: n.NotifyType, data: n.Data, msg: "refused by the peer"}
	}
	sar, _ := wire.Find(ps, wire.PayloadSA).(*wire.SA)
	prop, w, ok := acceptChoice(o.props, sar, wire.ProtoESP, o.withDH)
	if !ok || len(w.SPI) != 4 {
		return nil, fmt.Errorf("child SA: responder chose a proposal we did not offer: %w", wire.ErrSyntax)
	}
	if transport := wire.FindNotify(ps, wire.UseTransportMode) != nil; transport != (o.mode == ModeGRE) {
		return nil, fmt.Errorf("child SA: peer does not agree on transport mode (%v): %w", transport, wire.ErrSyntax)
	}
	tsi, _ := wire.Find(ps, wire.PayloadTSi).(*wire.TS)
	tsr, _ := wire.Find(ps, wire.PayloadTSr).(*wire.TS)
	exact := o.mode == ModeGRE
	if tsi == nil || tsr == nil || !acceptNarrowed(o.localTS, tsi.Selectors, exact) || !acceptNarrowed(o.remoteTS, tsr.Selectors, exact) {
		return nil, fmt.Errorf("child SA: unacceptable traffic selectors: %w", wire.ErrSyntax)
	}
	var gir []byte
	if o.withDH && prop.DH != 0 {
		ker, _ := wire.Find(ps, wire.PayloadKE).(*wire.KE)
		if ker == nil || o.ke == nil || ker.Group != prop.DH || o.ke.Group() != prop.DH {
			return nil, fmt.Errorf("child SA: missing or wrong KE for group %d: %w", prop.DH, wire.ErrSyntax)
		}
		var err error
		if gir, err = o.ke.SharedSecret(ker.Data); err != nil {
			return nil, err
		}
	}
	encLen, err := ikecrypto.EncrKeyLen(prop.Encr, prop.KeyBits)
	if err != nil {
		return nil, err
	}
	k := ikecrypto.DeriveChildKeys(sa.prf, sa.keys.D, gir, ni, nr, encLen, 0)
	ch := &childSA{inSPI: o.inSPI, outSPI: be32(w.SPI), prop: prop, mode: o.mode,
		localTS: tsi.Selectors, remoteTS: tsr.Selectors, inKey: k.EncR, outKey: k.EncI}
	// The keys come from this SA's SK_d; the child belongs to whichever IKE
	// SA replaced this one meanwhile (a rekey by the peer).
	if err := sa.owner().installChild(now, ch, true); err != nil {
		return nil, err
	}
	return ch, nil
}

// acceptChild answers a child SA request (we are the exchange responder:
// out = responder keys). It returns the response payloads (or an error
// notify to send instead).
func (sa *ikeSA) acceptChild(now time.Time, ps []wire.Payload, inAuth bool, ni, nr []byte, rekeyOf *childSA) ([]wire.Payload, *childSA, error) {
	e := sa.e
	p := sa.peer.cfg
	refuse := func(t wire.NotifyType, data []byte, msg string) ([]wire.Payload, *childSA, error) {
		return notify(t, data), nil, &notifyError{t: t, data: data, msg: msg}
	}
	sai, _ := wire.Find(ps, wire.PayloadSA).(*wire.SA)
	tsi, _ := wire.Find(ps, wire.PayloadTSi).(*wire.TS)
	tsr, _ := wire.Find(ps, wire.PayloadTSr).(*wire.TS)
	if sai == nil || tsi == nil || tsr == nil {
		return refuse(wire.InvalidSyntax, nil, "child SA request without SA/TSi/TSr")
	}
	var prop Proposal
	var w wire.Proposal
	var ok bool
	if kei, _ := wire.Find(ps, wire.PayloadKE).(*wire.KE); kei != nil && !inAuth {
		prop, w, ok = selectProposalKE(e.cfg.ESPProposals, sai, wire.ProtoESP, kei.Group)
	} else {
		prop, w, ok = selectProposal(e.cfg.ESPProposals, sai, wire.ProtoESP, inAuth)
	}
	if !ok || len(w.SPI) != 4 {
		return refuse(wire.NoProposalChosen, nil, "no acceptable ESP proposal")
	}
	if inAuth {
		prop.DH = 0
	}
	transport := wire.FindNotify(ps, wire.UseTransportMode) != nil
	if p.Mode == ModeGRE && !transport {
		return refuse(wire.NoProposalChosen, nil, "GRE tunnels need transport mode")
	}
	local, remote := p.selectors()
	exact := p.Mode == ModeGRE
	nri, ok1 := narrow(remote, tsi.Selectors, exact)
	nrr, ok2 := narrow(local, tsr.Selectors, exact)
	if !ok1 || !ok2 {
		return refuse(wire.TSUnacceptable, nil, "traffic selectors do not match the configuration")
	}
	var gir []byte
	var ker *wire.KE
	if !inAuth && prop.DH != 0 {
		kei, _ := wire.Find(ps, wire.PayloadKE).(*wire.KE)
		if kei == nil || kei.Group != prop.DH {
			return refuse(wire.InvalidKEPayload, binary.BigEndian.AppendUint16(nil, prop.DH), "KE group differs from the chosen proposal")
		}
		ke, err := ikecrypto.NewKeyExchange(prop.DH, e.rand)
		if err != nil {
			return refuse(wire.NoProposalChosen, nil, err.Error())
		}
		if gir, err = ke.SharedSecret(kei.Data); err != nil {
			return refuse(wire.InvalidSyntax, nil, err.Error())
		}
		ker = &wire.KE{Group: prop.DH, Data: ke.PublicKey()}
	}
	encLen, err := ikecrypto.EncrKeyLen(prop.Encr, prop.KeyBits)
	if err != nil {
		return refuse(wire.NoProposalChosen, nil, err.Error())
	}
	inSPI := e.newChildSPI()
	k := ikecrypto.DeriveChildKeys(sa.prf, sa.keys.D, gir, ni, nr, encLen, 0)
	ch := &childSA{inSPI: inSPI, outSPI: be32(w.SPI), prop: prop, mode: p.Mode,
		localTS: nrr, remoteTS: nri, inKey: k.EncI, outKey: k.EncR}
	if err := sa.installChild(now, ch, rekeyOf == nil); err != nil {
		e.freeChildSPI(inSPI)
		return refuse(wire.TemporaryFailure, nil, err.Error())
	}
	var out []wire.Payload
	if transport && p.Mode == ModeGRE {
		out = append(out, &wire.Notify{NotifyType: wire.UseTransportMode})
	}
	out = append(out, &wire.SA{Proposals: []wire.Proposal{prop.toWire(w.Num, wire.ProtoESP, spiBytes32(inSPI), !inAuth)}})
	if !inAuth {
		out = append(out, &wire.Nonce{Data: nr})
		if ker != nil {
			out = append(out, ker)
		}
	}
	out = append(out, &wire.TS{Selectors: nri}, &wire.TS{Responder: true, Selectors: nrr})
	return out, ch, nil
}

// installChild hands a child to the dataplane and arms its timers.
func (sa *ikeSA) installChild(now time.Time, ch *childSA, activate bool) error {
	c := &sa.e.cfg
	ch.created = now
	ch.expireAt = now.Add(c.ChildLifetime)
	ch.rekeyAt = now.Add(sa.rekeyTime(c.ChildLifetime))
	ch.inactive = !activate
	cipher := ch.prop.ESPCipher()
	err := sa.e.installer.InstallChild(Child{
		Tunnel:   sa.peer.cfg.Name,
		In:       ChildKeys{Cipher: cipher, SPI: ch.inSPI, Key: ch.inKey, ESN: ch.prop.ESN},
		Out:      ChildKeys{Cipher: cipher, SPI: ch.outSPI, Key: ch.outKey, ESN: ch.prop.ESN},
		Local:    sa.local,
		Remote:   sa.remote,
		Mode:     ch.mode,
		LocalTS:  ch.localTS,
		RemoteTS: ch.remoteTS,
		Activate: activate,
	})
	if err != nil {
		return fmt.Errorf("installing child SA %08x/%08x: %w", ch.inSPI, ch.outSPI, err)
	}
	sa.children = append(sa.children, ch)
	sa.e.m.establish("child")
	sa.logger().Info("child SA installed", "in_spi", fmt.Sprintf("%08x", ch.inSPI), "out_spi", fmt.Sprintf("%08x", ch.outSPI),
		"cipher", cipher, "mode", ch.mode.String(), "active", activate)
	return nil
}

// activate switches the dataplane's sending SA to ch.
func (sa *ikeSA) activate(ch *childSA) {
	if !ch.inactive {
		return
	}
	ch.inactive = false
	if err := sa.e.installer.ActivateOutbound(sa.peer.cfg.Name, ch.outSPI); err != nil {
		sa.logger().Error("activating outbound SA", "out_spi", fmt.Sprintf("%08x", ch.outSPI), errLog(err))
	}
}

// removeChild removes ch from the dataplane and the SA.
func (sa *ikeSA) removeChild(ch *childSA) {
	if sa.peer != nil {
		if err := sa.e.installer.RemoveChild(sa.peer.cfg.Name, ch.inSPI, ch.outSPI); err != nil {
			sa.logger().Error("removing child SA", "in_spi", fmt.Sprintf("%08x", ch.inSPI), errLog(err))
		}
	}
	sa.e.freeChildSPI(ch.inSPI)
	sa.children = slices.DeleteFunc(sa.children, func(c *childSA) bool { return c == ch })
}

// tickChild runs one child's timers.
func (sa *ikeSA) tickChild(now time.Time, ch *childSA) {
	c := &sa.e.cfg
	switch {
	case ch.successor != nil:
		if !now.Before(ch.replacedAt.Add(c.RetransmitTimeout)) { // the peer never deleted it
			sa.activate(ch.successor)
			sa.deleteChild(now, ch)
		}
	case ch.deleting:
	case !now.Before(ch.expireAt):
		sa.logger().Info("child SA hard lifetime reached", "in_spi", fmt.Sprintf("%08x", ch.inSPI))
		sa.deleteChild(now, ch)
	case !ch.rekeying && !now.Before(ch.rekeyAt):
		if sa.rekeying {
			ch.rekeyAt = now.Add(time.Second) // not while the IKE SA is rekeyed
			return
		}
		sa.rekeyChild(now, ch)
	}
}

// rekeyChild rekeys ch (RFC 7296 §2.8, §1.3.3): new SA first, then delete
// the old one.
func (sa *ikeSA) rekeyChild(now time.Time, ch *childSA) {
	ch.rekeying = true
	o := sa.newChildOffer(true)
	ps := append([]wire.Payload{&wire.Notify{Protocol: wire.ProtoESP, SPI: spiBytes32(ch.inSPI), NotifyType: wire.RekeySA}}, o.payloads()...)
	sa.logger().Debug("rekeying child SA", "in_spi", fmt.Sprintf("%08x", ch.inSPI))
	sa.enqueue(now, &request{exchange: wire.CreateChildSA, payloads: ps, onResponse: func(now time.Time, rps []wire.Payload) {
		if !slices.Contains(sa.owner().children, ch) {
			sa.e.freeChildSPI(o.inSPI)
			return
		}
		nr, _ := wire.Find(rps, wire.PayloadNonce).(*wire.Nonce)
		var nc *childSA
		err := fmt.Errorf("no nonce: %w", wire.ErrSyntax)
		if nr != nil {
			nc, err = sa.completeChild(now, o, rps, o.ni, nr.Data)
		}
		if err != nil {
			sa.e.freeChildSPI(o.inSPI)
			ch.rekeying = false
			retry := time.Second + sa.jitter(5*time.Second)
			var ne *notifyError
			if errors.As(err, &ne) && ne.t == wire.TemporaryFailure {
				sa.logger().Debug("child rekey collided, retrying", "in_spi", fmt.Sprintf("%08x", ch.inSPI))
			} else {
				sa.logger().Warn("child SA rekey failed", "in_spi", fmt.Sprintf("%08x", ch.inSPI), errLog(err))
				sa.e.m.fail("child_rekey")
				retry = 10 * time.Second
			}
			ch.rekeyAt = now.Add(retry)
			return
		}
		sa.logger().Info("child SA rekeyed", "old_in_spi", fmt.Sprintf("%08x", ch.inSPI), "new_in_spi", fmt.Sprintf("%08x", nc.inSPI))
		sa.owner().deleteChild(now, ch)
	}})
}

// deleteChild deletes ch with the peer (INFORMATIONAL Delete of our
// inbound SPI) and then locally.
func (sa *ikeSA) deleteChild(now time.Time, ch *childSA) {
	if ch.deleting {
		return
	}
	ch.deleting = true
	sa.enqueue(now, &request{
		exchange: wire.Informational,
		payloads: []wire.Payload{&wire.Delete{Protocol: wire.ProtoESP, SPISize: 4, SPIs: [][]byte{spiBytes32(ch.inSPI)}}},
		onResponse: func(now time.Time, _ []wire.Payload) {
			if o := sa.owner(); slices.Contains(o.children, ch) {
				o.removeChild(ch)
			}
		},
	})
}

// handleCreateChild answers CREATE_CHILD_SA: IKE rekey, child rekey or a
// new child (RFC 7296 §1.3).
func (sa *ikeSA) handleCreateChild(now time.Time, ps []wire.Payload) []wire.Payload {
	sai, _ := wire.Find(ps, wire.PayloadSA).(*wire.SA)
	ni, _ := wire.Find(ps, wire.PayloadNonce).(*wire.Nonce)
	if sai == nil || ni == nil || len(sai.Proposals) == 0 {
		return notify(wire.InvalidSyntax, nil)
	}
	if sai.Proposals[0].Protocol == wire.ProtoIKE {
		return sa.handleIKERekey(now, ps, sai, ni.Data)
	}
	var old *childSA
	if n := wire.FindNotify(ps, wire.RekeySA); n != nil {
		if n.Protocol != wire.ProtoESP || len(n.SPI) != 4 {
			return notify(wire.InvalidSyntax, nil)
		}
		spi := be32(n.SPI)
		for _, ch := range sa.children {
			if ch.outSPI == spi && ch.successor == nil && !ch.deleting {
				old = ch
			}
		}
		if old == nil {
			return []wire.Payload{&wire.Notify{Protocol: wire.ProtoESP, SPI: n.SPI, NotifyType: wire.ChildSANotFound}}
		}
		if old.rekeying && sa.initiator {
			// Both sides rekey the same child: the original initiator's
			// rekey wins, the other side retries (RFC 7296 §2.8.1 allows
			// TEMPORARY_FAILURE).
			return notify(wire.TemporaryFailure, nil)
		}
	}
	if sa.rekeying && sa.initiator {
		return notify(wire.TemporaryFailure, nil)
	}
	nr := sa.e.randBytes(32)
	out, nc, err := sa.acceptChild(now, ps, false, ni.Data, nr, old)
	if err != nil {
		sa.logger().Warn("child SA request refused", errLog(err))
		return out
	}
	if old != nil {
		old.successor, old.replacedAt = nc, now
		sa.logger().Info("child SA rekeyed by peer", "old_in_spi", fmt.Sprintf("%08x", old.inSPI), "new_in_spi", fmt.Sprintf("%08x", nc.inSPI))
	}
	return out
}

// startIKERekey rekeys the IKE SA (RFC 7296 §1.3.2, §2.18).
func (sa *ikeSA) startIKERekey(now time.Time) {
	e := sa.e
	sa.rekeying = true
	newSPI := e.newSPI()
	e.sas[newSPI] = nil // reserved
	ni := e.randBytes(32)
	ke, err := ikecrypto.NewKeyExchange(e.cfg.Proposals[0].DH, e.rand)
	if err != nil {
		delete(e.sas, newSPI)
		sa.logger().Error("IKE rekey", errLog(err))
		return
	}
	var send func(now time.Time)
	send = func(now time.Time) {
		ps := []wire.Payload{saPayload(e.cfg.Proposals, wire.ProtoIKE, spiBytes64(newSPI), true), &wire.Nonce{Data: ni},
			&wire.KE{Group: ke.Group(), Data: ke.PublicKey()}}
		sa.enqueue(now, &request{exchange: wire.CreateChildSA, payloads: ps, onResponse: func(now time.Time, rps []wire.Payload) {
			if n := wire.FindNotify(rps, wire.InvalidKEPayload); n != nil && len(n.Data) == 2 {
				g := binary.BigEndian.Uint16(n.Data)
				if g != ke.Group() && slices.ContainsFunc(e.cfg.Proposals, func(p Proposal) bool { return p.DH == g }) {
					if k, err := ikecrypto.NewKeyExchange(g, e.rand); err == nil {
						ke = k
						send(now)
						return
					}
				}
			}
			done := func(err error) {
				delete(e.sas, newSPI)
				sa.rekeying = false
				sa.rekeyAt = now.Add(time.Second + sa.jitter(5*time.Second))
				if err != nil {
					sa.logger().Warn("IKE SA rekey failed", errLog(err))
					e.m.fail("ike_rekey")
					sa.rekeyAt = now.Add(10 * time.Second)
				}
			}
			if n := firstError(rps); n != nil {
				if n.NotifyType == wire.TemporaryFailure {
					done(nil)
				} else {
					done(fmt.Errorf("peer answered %s", n.NotifyType))
				}
				return
			}
			sar, _ := wire.Find(rps, wire.PayloadSA).(*wire.SA)
			nr, _ := wire.Find(rps, wire.PayloadNonce).(*wire.Nonce)
			ker, _ := wire.Find(rps, wire.PayloadKE).(*wire.KE)
			prop, w, ok := acceptChoice(e.cfg.Proposals, sar, wire.ProtoIKE, true)
			if !ok || nr == nil || ker == nil || len(w.SPI) != 8 || ker.Group != prop.DH || prop.DH != ke.Group() {
				done(fmt.Errorf("bad IKE rekey response: %w", wire.ErrSyntax))
				return
			}
			gir, err := ke.SharedSecret(ker.Data)
			if err != nil {
				done(err)
				return
			}
			n, err := sa.rekeyed(now, true, newSPI, binary.BigEndian.Uint64(w.SPI), prop, gir, ni, nr.Data)
			if err != nil {
				done(err)
				return
			}
			sa.handover(now, n)
			sa.enqueue(now, &request{
				exchange:   wire.Informational,
				payloads:   []wire.Payload{&wire.Delete{Protocol: wire.ProtoIKE}},
				onResponse: func(now time.Time, _ []wire.Payload) { sa.destroy(now, "rekeyed", false) },
				onTimeout:  func(now time.Time) { sa.destroy(now, "rekeyed", false) },
			})
		}})
	}
	send(now)
}

// handleIKERekey answers an IKE SA rekey (responder of the rekey).
func (sa *ikeSA) handleIKERekey(now time.Time, ps []wire.Payload, sai *wire.SA, ni []byte) []wire.Payload {
	e := sa.e
	if sa.rekeying && sa.initiator {
		return notify(wire.TemporaryFailure, nil)
	}
	kei, _ := wire.Find(ps, wire.PayloadKE).(*wire.KE)
	var group uint16
	if kei != nil {
		group = kei.Group
	}
	prop, w, ok := selectProposalKE(e.cfg.Proposals, sai, wire.ProtoIKE, group)
	if !ok || len(w.SPI) != 8 {
		return notify(wire.NoProposalChosen, nil)
	}
	if kei == nil || kei.Group != prop.DH {
		return notify(wire.InvalidKEPayload, binary.BigEndian.AppendUint16(nil, prop.DH))
	}
	ke, err := ikecrypto.NewKeyExchange(prop.DH, e.rand)
	if err != nil {
		return notify(wire.NoProposalChosen, nil)
	}
	gir, err := ke.SharedSecret(kei.Data)
	if err != nil {
		return notify(wire.InvalidSyntax, nil)
	}
	nr := e.randBytes(32)
	newSPI := e.newSPI()
	n, err := sa.rekeyed(now, false, binary.BigEndian.Uint64(w.SPI), newSPI, prop, gir, ni, nr)
	if err != nil {
		return notify(wire.NoProposalChosen, nil)
	}
	sa.handover(now, n)
	return []wire.Payload{
		&wire.SA{Proposals: []wire.Proposal{prop.toWire(w.Num, wire.ProtoIKE, spiBytes64(newSPI), true)}},
		&wire.Nonce{Data: nr},
		&wire.KE{Group: prop.DH, Data: ke.PublicKey()},
	}
}

// rekeyed builds the IKE SA that replaces sa: SKEYSEED = prf(SK_d (old),
// g^ir (new) | Ni | Nr) with the old SA's PRF (RFC 7296 §2.18).
func (sa *ikeSA) rekeyed(now time.Time, initiator bool, spiI, spiR uint64, prop Proposal, gir, ni, nr []byte) (*ikeSA, error) {
	n := &ikeSA{
		e: sa.e, peer: sa.peer, initiator: initiator, spiI: spiI, spiR: spiR, local: sa.local, remote: sa.remote,
		created: now, ni: slices.Clone(ni), nr: slices.Clone(nr), natLocal: sa.natLocal, natRemote: sa.natRemote, natFake: sa.natFake,
		fragOK: sa.fragOK, peerHash: sa.peerHash, remoteID: sa.remoteID,
	}
	if err := n.deriveKeys(prop, ikecrypto.RekeySKEYSEED(sa.prf, sa.keys.D, gir, ni, nr)); err != nil {
		return nil, err
	}
	return n, nil
}

// handover moves the children and the peer to n, which becomes
// established; sa waits for (or sends) its Delete.
func (sa *ikeSA) handover(now time.Time, n *ikeSA) {
	n.children, sa.children = sa.children, nil
	sa.successor = n
	sa.e.sas[n.localSPI()] = n
	sa.state = stRekeyed
	sa.rekeying = false
	sa.goneAt = now.Add(sa.e.cfg.RetransmitTimeout)
	n.establish(now)
	n.logger().Info("IKE SA rekeyed", "old_spi", fmt.Sprintf("%016x_i %016x_r", sa.spiI, sa.spiR), "proposal", n.prop.String())
}
