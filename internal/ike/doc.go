// Package ike is havpn's IKEv2 (RFC 7296): it negotiates and rekeys the
// ESP SAs of the tunnels and hands them to the dataplane.
//
// Layers:
//
//   - wire: message and payload codec (RFC 7296 §3, RFC 7383 SKF).
//   - ikecrypto: key exchange (groups 19, 20, 31), HMAC-SHA2 PRFs and prf+,
//     SKEYSEED/SK_*/KEYMAT, SK payload protection (AES-GCM-16,
//     ChaCha20-Poly1305, AES-CBC+HMAC-SHA2), PSK and RFC 7427 AUTH.
//   - pki: CA and gateway certificates for `havpn pki` and the lab.
//   - ike (this package): Engine, the exchange state machine, pure: its
//     inputs are datagrams and the current time, its outputs datagrams
//     (Deps.Send) and child SAs (SAInstaller); and Daemon, which runs an
//     Engine over UDP on the IKE and NAT-T ports.
//
// What the Engine does: IKE_SA_INIT with cookies once more than
// Config.CookieThreshold SAs are half open (§2.6), INVALID_KE_PAYLOAD
// retry, NAT detection (§2.23: the NAT_DETECTION_* hashes name the address
// and port each IKE_SA_INIT message is sent from and to, so SAInfo tells
// a direct path from a NAT; the SA moves to the NAT-T port in any case,
// because the dataplane only does ESP in UDP, RFC 3948), forced UDP
// encapsulation for third-party peers (Peer.ForceEncap: a fake
// NAT_DETECTION_SOURCE_IP, as strongSwan's encap=yes) and NAT-T keepalives
// when behind a NAT,
// fragmentation (RFC 7383); IKE_AUTH with a PSK or certificates (RFC 7427
// signatures with RSASSA-PSS, RSASSA-PKCS1-v1_5, ECDSA, Ed25519; the peer's
// identity, FQDN, address or DN, must be in its certificate, which must
// chain to a configured CA), INITIAL_CONTACT and one IKE SA per peer;
// CREATE_CHILD_SA for child rekeys (make-before-break, with PFS when the
// ESP proposal has a group) and IKE rekeys; INFORMATIONAL deletes and
// liveness checks (DPD); retransmission with exponential backoff and a
// message-ID window of one. Weak algorithms cannot be configured
// (ParseProposal) nor chosen (only configured proposals match).
//
// Child SAs: between two havpn gateways (ModeGRE) the ESP payload is GRE
// between the two tunnel addresses, negotiated as transport mode with
// traffic selectors local/32 and remote/32, IP protocol 47; third-party
// peers (ModeTunnel) get tunnel mode with subnet selectors, narrowed as
// RFC 7296 §2.9 allows.
//
// IKE SA life cycle (see saState):
//
//	initiator: CONNECTING (IKE_SA_INIT sent) -> CONNECTING (IKE_AUTH sent) -> ESTABLISHED
//	responder: CONNECTING (half open)         -> ESTABLISHED
//	ESTABLISHED -> REKEYED (replaced by a rekey; waits for its Delete) -> gone
//	ESTABLISHED -> DELETING (our Delete sent) -> gone
//	any failure or lost peer -> gone; an initiator peer retries with backoff
//
// Rekey timing: an SA is rekeyed RekeyMargin before its hard lifetime
// (minus random jitter) by the original IKE initiator, and half a margin
// later by the responder if the initiator did not; a collision is answered
// with TEMPORARY_FAILURE by the original initiator (RFC 7296 §2.8.1 allows
// it), whose own rekey then wins. A rekey responder installs the new child
// inactive and switches its sending SA only when the initiator deletes the
// old child, so no packet is sent under keys the peer does not have yet.
//
// Not implemented: EAP, MOBIKE, IKE SA resumption, address pools (CP is
// decoded only), child SAs with several traffic selector sets per
// direction beyond narrowing, export/import of IKE SAs for a standby
// (statesync), IPv6-only underlay tests, changing the dataplane's peer
// endpoint when a NAT mapping changes after the child is installed, RFC 4754
// (methods 9-11) and SHA-1 signatures (refused on purpose).
package ike
