package ike

import (
	"fmt"
	"time"

	"github.com/havpn/havpn/internal/ike/ikecrypto"
	"github.com/havpn/havpn/internal/ike/wire"
)

// authData computes our AUTH payload over octets (RFC 7296 §2.15,
// RFC 7427).
func (sa *ikeSA) authData(octets []byte) (*wire.Auth, error) {
	c := &sa.e.cfg
	if len(c.PSK) > 0 {
		return &wire.Auth{Method: wire.AuthSharedKey, Data: ikecrypto.PSKAuth(sa.prf, c.PSK, octets)}, nil
	}
	d, err := ikecrypto.Sign(c.Key, octets, sa.peerHash, ikecrypto.SignOptions{RSAPKCS1: c.RSAPKCS1}, sa.e.rand)
	if err != nil {
		return nil, err
	}
	return &wire.Auth{Method: wire.AuthDigitalSig, Data: d}, nil
}

// verifyAuth checks the peer's AUTH payload for identity id over octets;
// with certificates, the CERT payloads in ps must prove id.
func (sa *ikeSA) verifyAuth(now time.Time, ps []wire.Payload, id Identity, auth *wire.Auth, octets []byte) error {
	c := &sa.e.cfg
	if len(c.PSK) > 0 {
		if auth.Method != wire.AuthSharedKey {
			return fmt.Errorf("peer authenticates with %s, we use a PSK: %w", auth.Method, ikecrypto.ErrSignature)
		}
		return ikecrypto.VerifyPSK(sa.prf, c.PSK, octets, auth.Data)
	}
	if auth.Method != wire.AuthDigitalSig {
		return fmt.Errorf("peer authenticates with %s, we want %s: %w", auth.Method, wire.AuthDigitalSig, ikecrypto.ErrSignature)
	}
	var chain [][]byte
	for _, p := range ps {
		if cp, ok := p.(*wire.Cert); ok && cp.Encoding == wire.CertX509Signature {
			chain = append(chain, cp.Data)
		}
	}
	pub, err := c.Verifier.Verify(chain, id, now)
	if err != nil {
		return err
	}
	return ikecrypto.Verify(pub, auth.Data, octets)
}

// ownCredentials returns our ID payload, certificates and CERTREQ.
func (sa *ikeSA) certPayloads() []wire.Payload {
	var out []wire.Payload
	for _, der := range sa.e.cfg.Certificates {
		out = append(out, &wire.Cert{Encoding: wire.CertX509Signature, Data: der})
	}
	return out
}

// sendAuth sends the IKE_AUTH request with the first child SA (initiator,
// RFC 7296 §1.2).
func (sa *ikeSA) sendAuth(now time.Time) {
	c := &sa.e.cfg
	p := sa.peer.cfg
	idi := c.LocalID.payload(false)
	auth, err := sa.authData(ikecrypto.SignedOctets(sa.prf, sa.initReq, sa.nr, sa.keys.Pi, idi.Body()))
	if err != nil {
		sa.fail(now, "auth", err)
		return
	}
	ps := []wire.Payload{idi}
	ps = append(ps, sa.certPayloads()...)
	if !sa.peer.contacted {
		ps = append(ps, &wire.Notify{NotifyType: wire.InitialContact})
	}
	if c.certAuth() && len(c.CAs) > 0 {
		ps = append(ps, &wire.CertReq{Encoding: wire.CertX509Signature, Data: c.caHashes()})
	}
	ps = append(ps, p.RemoteID.payload(true), auth)
	offer := sa.newChildOffer(false)
	sa.authChild = offer
	ps = append(ps, offer.payloads()...)
	sa.enqueue(now, &request{exchange: wire.IKEAuth, payloads: ps, onResponse: sa.handleAuthResponse,
		onTimeout: func(now time.Time) { sa.fail(now, "timeout", fmt.Errorf("no IKE_AUTH response")) }})
}

// handleAuthResponse completes the IKE SA and the first child (initiator).
func (sa *ikeSA) handleAuthResponse(now time.Time, ps []wire.Payload) {
	idr, _ := wire.Find(ps, wire.PayloadIDr).(*wire.ID)
	auth, _ := wire.Find(ps, wire.PayloadAUTH).(*wire.Auth)
	if idr == nil || auth == nil {
		err := fmt.Errorf("IKE_AUTH response without IDr/AUTH")
		if n := firstError(ps); n != nil {
			err = fmt.Errorf("peer answered %s", n.NotifyType)
		}
		sa.fail(now, "auth_refused", err)
		return
	}
	id := identityOf(idr)
	if !id.Equal(sa.peer.cfg.RemoteID) {
		sa.fail(now, "identity", fmt.Errorf("peer identity %s, want %s", id, sa.peer.cfg.RemoteID))
		return
	}
	octets := ikecrypto.SignedOctets(sa.prf, sa.initResp, sa.ni, sa.keys.Pr, idr.Body())
	if err := sa.verifyAuth(now, ps, id, auth, octets); err != nil {
		sa.fail(now, "authentication", err)
		return
	}
	sa.remoteID = id
	offer := sa.authChild
	sa.authChild = nil
	ni, nr := sa.ni, sa.nr
	sa.establish(now)
	sa.logger().Info("IKE SA established", "ike_role", "initiator", "proposal", sa.prop.String(), "remote_id", id.String())
	if _, err := sa.completeChild(now, offer, ps, ni, nr); err != nil {
		// A gateway without its child SA is useless: start over.
		sa.e.freeChildSPI(offer.inSPI)
		sa.logger().Warn("first child SA not established", errLog(err))
		sa.e.m.fail("child")
		sa.deleteIKE(now)
		if p := sa.peer; p != nil {
			sa.e.peerFailed(now, p)
		}
	}
}

// handleAuthRequest authenticates the initiator and answers with our
// AUTH and the first child SA (responder).
func (sa *ikeSA) handleAuthRequest(now time.Time, ps []wire.Payload) ([]wire.Payload, func(time.Time)) {
	e := sa.e
	c := &e.cfg
	failAuth := func(reason string, err error) ([]wire.Payload, func(time.Time)) {
		sa.logger().Warn("IKE_AUTH refused", "reason", reason, errLog(err))
		e.m.fail(reason)
		return notify(wire.AuthenticationFailed, nil), func(now time.Time) { sa.destroy(now, reason, false) }
	}
	idi, _ := wire.Find(ps, wire.PayloadIDi).(*wire.ID)
	auth, _ := wire.Find(ps, wire.PayloadAUTH).(*wire.Auth)
	if idi == nil || auth == nil {
		return failAuth("syntax", fmt.Errorf("IKE_AUTH without IDi/AUTH: %w", wire.ErrSyntax))
	}
	id := identityOf(idi)
	peer := e.peerByID(id, sa.remote.Addr())
	if peer == nil {
		return failAuth("unknown_identity", fmt.Errorf("no peer with identity %s", id))
	}
	sa.peer = peer
	if idr, _ := wire.Find(ps, wire.PayloadIDr).(*wire.ID); idr != nil && !identityOf(idr).Equal(c.LocalID) {
		return failAuth("identity", fmt.Errorf("initiator wants to talk to %s, we are %s", identityOf(idr), c.LocalID))
	}
	if err := sa.verifyAuth(now, ps, id, auth, ikecrypto.SignedOctets(sa.prf, sa.initReq, sa.nr, sa.keys.Pi, idi.Body())); err != nil {
		return failAuth("authentication", err)
	}
	idr := c.LocalID.payload(true)
	ourAuth, err := sa.authData(ikecrypto.SignedOctets(sa.prf, sa.initResp, sa.ni, sa.keys.Pr, idr.Body()))
	if err != nil {
		return failAuth("auth", err)
	}
	sa.remoteID = id
	// Older IKE SAs with this peer go away: silently when the peer says it
	// lost them (INITIAL_CONTACT, RFC 7296 §2.4), else with a Delete
	// (uniqueness, one IKE SA per peer).
	initial := wire.FindNotify(ps, wire.InitialContact) != nil
	for _, other := range e.sasSnapshot() {
		if other != sa && other.peer == peer && other.state != stDead {
			if !initial && other.state == stEstablished {
				other.sendDeleteNoWait(now)
			}
			other.destroy(now, "replaced by a new IKE SA", false)
		}
	}
	ni, nr := sa.ni, sa.nr
	sa.establish(now)
	sa.logger().Info("IKE SA established", "ike_role", "responder", "proposal", sa.prop.String(), "remote_id", id.String())
	out := []wire.Payload{idr}
	out = append(out, sa.certPayloads()...)
	out = append(out, ourAuth)
	childPs, _, err := sa.acceptChild(now, ps, true, ni, nr, nil)
	if err != nil {
		sa.logger().Warn("first child SA refused", errLog(err))
		e.m.fail("child")
	}
	return append(out, childPs...), nil
}
