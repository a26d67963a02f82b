package ike

import "net/netip"

// ChildMode is what a child SA's ESP payload carries.
type ChildMode uint8

// Child SA modes.
const (
	// ModeGRE is havpn <-> havpn: transport mode (RFC 7296 §1.3.1
	// USE_TRANSPORT_MODE) between the two gateway addresses, IP protocol 47:
	// the ESP payload is a GRE packet.
	ModeGRE ChildMode = iota + 1
	// ModeTunnel is third-party peers: tunnel mode with subnet traffic
	// selectors; the ESP payload is an IP packet.
	ModeTunnel
)

// String returns "gre" or "tunnel".
func (m ChildMode) String() string {
	switch m {
	case ModeGRE:
		return "gre"
	case ModeTunnel:
		return "tunnel"
	}
	return "unknown"
}

// ChildKeys is one direction of a child SA as plain data.
type ChildKeys struct {
	// Cipher is the dataplane cipher name: "aes-gcm-128", "aes-gcm-256" or
	// "chacha20-poly1305" (esp.ParseCipher accepts these).
	Cipher string
	// SPI is the SPI in the ESP header of this direction's packets.
	SPI uint32
	// Key is key | 4-byte salt (20 or 36 bytes).
	Key []byte
	// ESN says extended sequence numbers were negotiated.
	ESN bool
}

// Child is a negotiated child SA pair handed to the dataplane.
type Child struct {
	// Tunnel is the Peer.Name the child belongs to.
	Tunnel string
	// In decrypts packets from the peer; Out encrypts packets to it.
	In, Out ChildKeys
	// Local and Remote are the outer UDP endpoints (RFC 3948: ESP is always
	// UDP-encapsulated, on the NAT-T ports after a NAT float).
	Local, Remote netip.AddrPort
	// Mode says whether the payload is GRE (transport) or IP (tunnel).
	Mode ChildMode
	// LocalTS and RemoteTS are the negotiated traffic selectors.
	LocalTS, RemoteTS []TrafficSelector
	// Activate says whether Out is to be used for sending right away. It is
	// false on the responder of a rekey: the old outbound SA stays in use
	// until ActivateOutbound, so that the peer has the new keys before the
	// first packet under them arrives (make-before-break, RFC 7296 §2.8).
	Activate bool
}

// SAInstaller is the dataplane seam. The daemon adapts it to the tunnel's
// SA table. Calls come from the goroutine that owns the Engine; an
// implementation must not call back into the Engine.
//
// Contract: InstallChild adds c.In to the inbound SAs (older inbound SAs of
// the tunnel keep working) and, when c.Activate is set, makes c.Out the
// tunnel's sending SA. ActivateOutbound switches sending to the outbound
// SA with SPI outSPI installed earlier. RemoveChild deletes both
// directions of a child; removing the SA that is currently sending leaves
// the tunnel without one until the next InstallChild. An InstallChild error
// refuses the child (TEMPORARY_FAILURE to the peer's request; our own
// request is retried later, or for the first child the IKE SA is
// restarted); ActivateOutbound and RemoveChild errors are only logged.
type SAInstaller interface {
	InstallChild(c Child) error
	ActivateOutbound(tunnel string, outSPI uint32) error
	RemoveChild(tunnel string, inSPI, outSPI uint32) error
}

// NopInstaller installs nothing; for tests and for peers whose keys are
// only inspected.
type NopInstaller struct{}

// InstallChild does nothing.
func (NopInstaller) InstallChild(Child) error { return nil }

// ActivateOutbound does nothing.
func (NopInstaller) ActivateOutbound(string, uint32) error { return nil }

// RemoveChild does nothing.
func (NopInstaller) RemoveChild(string, uint32, uint32) error { return nil }
