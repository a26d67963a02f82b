package cluster

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"time"
)

// Heartbeat wire format, version 1. All integers are big-endian.
//
//	off  len  field
//	  0    4  magic "HVHB"
//	  4    1  version (1)
//	  5    1  sender node id (1..255)
//	  6    1  role (0 init, 1 standby, 2 active)
//	  7    1  priority
//	  8    2  flags (Flag*; undefined bits are zero)
//	 10    1  ping nodes the sender reaches
//	 11    1  handover target node id (0: none)
//	 12    1  n: number of alive node ids that follow the fixed part (0..16)
//	 13    3  reserved, zero
//	 16    8  epoch: the sender's start time, unix nanoseconds (new per start)
//	 24    8  sequence number (>= 1, +1 per message within an epoch)
//	 32    8  uptime: monotonic nanoseconds since the sender started
//	 40    8  send time: the sender's wall clock, unix nanoseconds
//	 48    8  config hash (first 8 bytes of the shared config's hash)
//	 56    n  node ids the sender currently hears (alive), strictly increasing
//	56+n  32  HMAC-SHA256(key, bytes 0 .. 56+n)
//
// A frame is exactly 88+n bytes; anything else is malformed. The same bytes
// travel in one UDP datagram, or on a serial line inside a frame (frame.go).
const (
	// Version is the heartbeat protocol version this package speaks.
	Version = 1
	// MaxAlive is the largest number of alive node ids in one message, and
	// so the largest cluster size (self + 16 peers is refused by New).
	MaxAlive = 16
	// MACLen is the length of the HMAC-SHA256 trailer.
	MACLen = sha256.Size
	// MinMessageLen and MaxMessageLen bound a marshaled heartbeat.
	MinMessageLen = headerLen + MACLen
	MaxMessageLen = MinMessageLen + MaxAlive

	headerLen = 56
)

// magic starts every heartbeat message.
var magic = [4]byte{'H', 'V', 'H', 'B'}

// Flags are the state bits a node announces about itself.
type Flags uint16

// Flag bits.
const (
	// FlagMaintenance: the sender is in maintenance mode (never takes over).
	FlagMaintenance Flags = 1 << iota
	// FlagEligible: the sender may become active: not in maintenance and
	// carrier up on every monitored interface.
	FlagEligible
	// FlagCarrierOK: carrier is up on all the sender's monitored interfaces.
	FlagCarrierOK
	// FlagTakeoverReq: an operator asked the sender to take over; the active
	// node hands over to it.
	FlagTakeoverReq
	// FlagPreferred: the sender became active by an operator's takeover and
	// ranks above every priority until the operator says otherwise.
	FlagPreferred
	// FlagStandbyPref: an operator put the sender in standby; it ranks below
	// every priority (it still takes over when it is the only candidate).
	FlagStandbyPref
	// FlagYield: the sender is not a candidate for active right now (its own
	// handover is pending, or it just recovered from a stall).
	FlagYield
	// FlagLeaving: the sender is shutting down; treat it as dead now.
	FlagLeaving

	flagsDefined = FlagLeaving<<1 - 1
)

// ConfigHash identifies the shared part of a cluster member's configuration.
// Members with different hashes are not eligible to each other for planned
// handovers.
type ConfigHash [8]byte

// String returns the hash as 16 hex digits.
func (h ConfigHash) String() string { return hex.EncodeToString(h[:]) }

// MarshalText encodes the hash as 16 hex digits.
func (h ConfigHash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// ParseConfigHash turns a config hash string into a ConfigHash: 16 hex
// digits (config.Config.Hash's format) are decoded as they are, any other
// string is hashed with SHA-256 and the first 8 bytes are kept.
func ParseConfigHash(s string) ConfigHash {
	var h ConfigHash
	if len(s) == 2*len(h) {
		if _, err := hex.Decode(h[:], []byte(s)); err == nil {
			return h
		}
	}
	sum := sha256.Sum256([]byte(s))
	copy(h[:], sum[:])
	return h
}

// Message is one decoded heartbeat. It is plain data; the zero value is not
// a valid message (NodeID and Seq must be set).
type Message struct {
	NodeID        uint8
	Role          Role
	Priority      uint8
	Flags         Flags
	PingReachable uint8
	HandoverTo    uint8
	Epoch         uint64
	Seq           uint64
	Uptime        time.Duration
	SendTime      int64 // unix nanoseconds
	ConfigHash    ConfigHash
	NAlive        uint8
	Alive         [MaxAlive]uint8 // Alive[:NAlive] strictly increasing, the rest zero
}

// Hears reports whether the sender lists id among the nodes it hears.
func (m *Message) Hears(id uint8) bool {
	for _, a := range m.Alive[:min(int(m.NAlive), MaxAlive)] {
		if a == id {
			return true
		}
	}
	return false
}

// Len returns the marshaled length of m.
func (m *Message) Len() int { return MinMessageLen + int(m.NAlive) }

// check reports whether m's fields are encodable (everything but the MAC).
func (m *Message) check() error {
	if m.NodeID == 0 || !m.Role.valid() || m.Flags&^flagsDefined != 0 || m.Seq == 0 ||
		m.Uptime < 0 || int(m.NAlive) > MaxAlive || m.HandoverTo == m.NodeID {
		return ErrMalformed
	}
	prev := 0
	for i, a := range m.Alive {
		switch {
		case i >= int(m.NAlive):
			if a != 0 {
				return ErrMalformed
			}
		case int(a) <= prev:
			return ErrMalformed
		default:
			prev = int(a)
		}
	}
	return nil
}

// Codec marshals and unmarshals authenticated heartbeats with one key.
// A Codec is not safe for concurrent use: give each goroutine its own.
// Marshal and Unmarshal do not allocate.
type Codec struct {
	mac hash.Hash
	sum [MACLen]byte
}

// NewCodec returns a Codec for the shared cluster key.
func NewCodec(key []byte) *Codec {
	return &Codec{mac: hmac.New(sha256.New, key)}
}

// Marshal appends the encoding of m, HMAC included, to dst. It returns
// ErrMalformed (and dst unchanged) when m has a field that the format
// cannot carry (NodeID or Seq zero, more than MaxAlive ids, ids not
// strictly increasing or unused entries not zero, undefined flags, an invalid role, a negative uptime,
// HandoverTo equal to NodeID).
func (c *Codec) Marshal(dst []byte, m *Message) ([]byte, error) {
	if err := m.check(); err != nil {
		return dst, err
	}
	start := len(dst)
	var h [headerLen]byte
	copy(h[0:4], magic[:])
	h[4] = Version
	h[5] = m.NodeID
	h[6] = byte(m.Role)
	h[7] = m.Priority
	binary.BigEndian.PutUint16(h[8:10], uint16(m.Flags))
	h[10] = m.PingReachable
	h[11] = m.HandoverTo
	h[12] = m.NAlive
	binary.BigEndian.PutUint64(h[16:24], m.Epoch)
	binary.BigEndian.PutUint64(h[24:32], m.Seq)
	binary.BigEndian.PutUint64(h[32:40], uint64(m.Uptime))
	binary.BigEndian.PutUint64(h[40:48], uint64(m.SendTime))
	copy(h[48:56], m.ConfigHash[:])
	dst = append(dst, h[:]...)
	dst = append(dst, m.Alive[:m.NAlive]...)
	c.mac.Reset()
	c.mac.Write(dst[start:])
	return append(dst, c.mac.Sum(c.sum[:0])...), nil
}

// Unmarshal decodes b, which must be exactly one message, into m. It checks
// in this order: the length bounds, magic and version (ErrMalformed,
// ErrVersion), the exact length the header announces (ErrMalformed), the
// HMAC (ErrAuth), then every field (ErrMalformed). Only an authenticated,
// well-formed message is written to m; on error m is unchanged. Unmarshal
// does not check sequence numbers or epochs: that needs the receiver's state
// (Machine.Receive).
func (c *Codec) Unmarshal(b []byte, m *Message) error {
	if len(b) < MinMessageLen || len(b) > MaxMessageLen || [4]byte(b[0:4]) != magic {
		return ErrMalformed
	}
	if b[4] != Version {
		return ErrVersion
	}
	n := int(b[12])
	if n > MaxAlive || len(b) != MinMessageLen+n {
		return ErrMalformed
	}
	body := b[:headerLen+n]
	c.mac.Reset()
	c.mac.Write(body)
	if !hmac.Equal(c.mac.Sum(c.sum[:0]), b[headerLen+n:]) {
		return ErrAuth
	}
	if b[13] != 0 || b[14] != 0 || b[15] != 0 {
		return ErrMalformed
	}
	var d Message
	d.NodeID = b[5]
	d.Role = Role(b[6])
	d.Priority = b[7]
	d.Flags = Flags(binary.BigEndian.Uint16(b[8:10]))
	d.PingReachable = b[10]
	d.HandoverTo = b[11]
	d.NAlive = uint8(n)
	d.Epoch = binary.BigEndian.Uint64(b[16:24])
	d.Seq = binary.BigEndian.Uint64(b[24:32])
	d.Uptime = time.Duration(binary.BigEndian.Uint64(b[32:40]))
	d.SendTime = int64(binary.BigEndian.Uint64(b[40:48]))
	copy(d.ConfigHash[:], b[48:56])
	copy(d.Alive[:n], b[headerLen:headerLen+n])
	if err := d.check(); err != nil {
		return err
	}
	*m = d
	return nil
}
