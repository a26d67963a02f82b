package esp

import "encoding/binary"

const (
	// HeaderLen is the ESP header as sent: SPI(4) + sequence number(4) + IV(8).
	HeaderLen = 16
	// ICVLen is the length of the integrity check value of every supported cipher.
	ICVLen = 16
	// MaxTrailer is the most Seal appends after the payload: padding to
	// 4-byte alignment (at most 3), pad length, next header and ICV.
	MaxTrailer = 3 + 2 + ICVLen

	// minPacket is the shortest ESP packet Open can accept: header, empty
	// payload, pad length and next header, ICV.
	minPacket = HeaderLen + 2 + ICVLen
)

// Next header values the dataplane uses (IANA protocol numbers).
const (
	NextHeaderIPv4   = 4  // IPv4 in ESP (tunnel mode)
	NextHeaderIPv6   = 41 // IPv6 in ESP (tunnel mode)
	NextHeaderGRE    = 47 // GRE in ESP
	NextHeaderNoNext = 59 // dummy packet (RFC 4303 §2.6): the receiver discards it
)

// padLen returns the padding that aligns payload + pad length + next header
// to 4 bytes (RFC 4303 §2.4).
func padLen(n int) int { return (4 - (n+2)&3) & 3 }

// Overhead returns the bytes Seal adds to a payload of payloadLen bytes:
// HeaderLen, the padding to 4-byte alignment, pad length, next header and
// ICV. Add the outer IP and UDP headers for the wire MTU.
func Overhead(payloadLen int) int {
	return HeaderLen + padLen(payloadLen) + 2 + ICVLen
}

// SPIOf returns the SPI of an ESP packet. ok is false when pkt is shorter
// than SPI and sequence number or the SPI is in the reserved range 0..255
// (RFC 4303 §2.1), which no SA can have.
func SPIOf(pkt []byte) (spi uint32, ok bool) {
	if len(pkt) < 8 {
		return 0, false
	}
	spi = binary.BigEndian.Uint32(pkt)
	return spi, spi > 255
}

// InferSeq returns the full 64-bit sequence number of a received packet
// carrying the low 32 bits low, given top, the highest sequence number the
// window has accepted, and the window size: RFC 4304 Appendix A. The result
// is the candidate closest to the window; the ICV check confirms it (the high
// half is in the AAD). Below the first 2^32 packets nothing precedes the
// window, so a low value "before" it is taken as ahead.
func InferSeq(top uint64, window int, low uint32) uint64 {
	th, tl := uint32(top>>32), uint32(top)
	w := uint32(1)
	if window > 1 {
		w = uint32(min(window, 1<<31))
	}
	bottom := tl - w + 1 // wraps in case B
	hi := th
	if tl >= w-1 {
		// Case A: the window lies within one 2^32 subspace.
		if low < bottom {
			hi = th + 1
		}
	} else if low >= bottom && th > 0 {
		// Case B: the window spans two subspaces and low is in the lower one.
		hi = th - 1
	}
	return uint64(hi)<<32 | uint64(low)
}

// UDPKind is what a UDP payload on the NAT-T port is (RFC 3948 §2).
type UDPKind uint8

// Kinds of UDP-encapsulated payloads.
const (
	// KindESP is an ESP packet: the first 4 bytes are a non-zero SPI.
	KindESP UDPKind = iota + 1
	// KindIKE is an IKE message behind the 4-byte non-ESP marker (zeros);
	// the IKE message starts at payload[4:].
	KindIKE
	// KindKeepalive is a NAT-keepalive: one byte 0xFF (RFC 3948 §2.3). Drop it.
	KindKeepalive
	// KindInvalid is anything else: too short, or a reserved SPI 1..255.
	KindInvalid
)

// String returns the kind's name.
func (k UDPKind) String() string {
	switch k {
	case KindESP:
		return "esp"
	case KindIKE:
		return "ike"
	case KindKeepalive:
		return "keepalive"
	case KindInvalid:
		return "invalid"
	}
	return "unknown"
}

// ikeHeaderLen is the fixed IKE header (RFC 7296 §3.1).
const ikeHeaderLen = 28

// ClassifyUDP sorts a UDP payload received on the NAT-T port (RFC 3948 §2):
// a single 0xFF byte is a NAT-keepalive; a zero non-ESP marker followed by
// at least an IKE header is IKE; a non-zero SPI above 255 with at least SPI
// and sequence number is ESP; everything else is invalid.
func ClassifyUDP(payload []byte) UDPKind {
	switch {
	case len(payload) == 1 && payload[0] == 0xff:
		return KindKeepalive
	case len(payload) < 8:
		return KindInvalid
	}
	switch spi := binary.BigEndian.Uint32(payload); {
	case spi == 0:
		if len(payload) >= 4+ikeHeaderLen {
			return KindIKE
		}
		return KindInvalid
	case spi <= 255:
		return KindInvalid
	}
	return KindESP
}

// State is an SA as plain data, for state sync to a standby and for status.
// Key is the key material (key || salt). For an Outbound SA, Seq is the last
// sequence number sent (0: none) and Window is 0; for an Inbound SA, Seq is
// the highest sequence number accepted and Window the replay window size.
type State struct {
	Cipher Cipher
	SPI    uint32
	Key    []byte
	ESN    bool
	Seq    uint64
	Window int
}

// Stats are the counters of one SA. Packets and Bytes count packets that
// went through and their inner payload bytes; the others count drops by
// reason (Inbound: Replay, Auth, Short, Padding; Outbound: Short for a too
// small buffer). ErrSPI and ErrSeqExhausted are not counted here: the first
// means the caller picked the wrong SA, the second is an SA-wide condition
// the caller acts on (rekey).
type Stats struct {
	Packets, Bytes, Replay, Auth, Short, Padding uint64
}

// scratch holds the nonce and AAD of one Seal/Open. Passing stack arrays to
// the cipher.AEAD interface makes them escape to the heap, so each SA keeps
// a sync.Pool of these instead: 0 allocations per packet.
type scratch struct {
	nonce [saltLen + 8]byte
	aad   [12]byte
}

func newScratch() any { return new(scratch) }
