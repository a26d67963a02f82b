package wire

import (
	"encoding/binary"
	"fmt"
)

// HeaderLen is the length of the IKE header (RFC 7296 §3.1).
const HeaderLen = 28

// Version2 is the version byte of IKEv2 (major 2, minor 0).
const Version2 = 0x20

// MaxMessage is the largest message Decode accepts (the IKE header's
// length field is 32 bits, but a UDP datagram carries at most 65507 bytes).
const MaxMessage = 65535

// Header is the IKE header (RFC 7296 §3.1).
type Header struct {
	SPIi        uint64
	SPIr        uint64
	NextPayload PayloadType
	Version     uint8 // 0x20 for IKEv2; Encode writes Version2 when 0
	Exchange    ExchangeType
	Flags       Flags
	MessageID   uint32
	Length      uint32 // set by Encode/AppendHeader callers; checked by Decode
}

// IsResponse reports whether the R flag is set.
func (h *Header) IsResponse() bool { return h.Flags&FlagResponse != 0 }

// FromInitiator reports whether the I flag is set (the sender is the
// original initiator of the IKE SA).
func (h *Header) FromInitiator() bool { return h.Flags&FlagInitiator != 0 }

// AppendHeader appends the 28-byte header h to b.
func AppendHeader(b []byte, h *Header) []byte {
	v := h.Version
	if v == 0 {
		v = Version2
	}
	b = binary.BigEndian.AppendUint64(b, h.SPIi)
	b = binary.BigEndian.AppendUint64(b, h.SPIr)
	b = append(b, byte(h.NextPayload), v, byte(h.Exchange), byte(h.Flags))
	b = binary.BigEndian.AppendUint32(b, h.MessageID)
	return binary.BigEndian.AppendUint32(b, h.Length)
}

// DecodeHeader decodes the IKE header at the start of b. It checks only
// that 28 bytes are present and that the major version is 2 (the
// returned header is valid also with ErrVersion, so that the caller can
// answer INVALID_MAJOR_VERSION).
func DecodeHeader(b []byte) (Header, error) {
	if len(b) < HeaderLen {
		return Header{}, fmt.Errorf("IKE header: %w", ErrShort)
	}
	h := Header{
		SPIi:        binary.BigEndian.Uint64(b),
		SPIr:        binary.BigEndian.Uint64(b[8:]),
		NextPayload: PayloadType(b[16]),
		Version:     b[17],
		Exchange:    ExchangeType(b[18]),
		Flags:       Flags(b[19]),
		MessageID:   binary.BigEndian.Uint32(b[20:]),
		Length:      binary.BigEndian.Uint32(b[24:]),
	}
	if h.Version>>4 != 2 {
		return h, fmt.Errorf("IKE header version %#x: %w", h.Version, ErrVersion)
	}
	return h, nil
}

// Message is a decoded IKE message. For a protected message the last
// payload is *Encrypted or *Fragment and the inner payloads are still
// encrypted; Raw and EncOffset let the caller check integrity and decrypt.
type Message struct {
	Header   Header
	Payloads []Payload
	// Raw is a copy of the whole message as received (set by Decode only).
	Raw []byte
	// EncOffset is the offset in Raw of the SK or SKF generic payload header,
	// or -1 when the message has none (set by Decode only).
	EncOffset int
}

// Decode decodes one IKE message. It rejects a message whose length field
// differs from len(b), any payload length that does not fit, an SK/SKF
// payload that is not last, and bytes after the last payload.
func Decode(b []byte) (*Message, error) {
	h, err := DecodeHeader(b)
	if err != nil {
		return nil, err
	}
	if int64(h.Length) != int64(len(b)) || len(b) > MaxMessage {
		return nil, fmt.Errorf("IKE header length %d, datagram %d: %w", h.Length, len(b), ErrLength)
	}
	m := &Message{Header: h, Raw: clone(b), EncOffset: -1}
	ps, encOff, err := decodeChain(h.NextPayload, m.Raw, HeaderLen, true)
	if err != nil {
		return nil, fmt.Errorf("%s message %d: %w", h.Exchange, h.MessageID, err)
	}
	m.Payloads, m.EncOffset = ps, encOff
	return m, nil
}

// DecodePayloads decodes a payload chain whose first payload has type
// first, for example the decrypted content of an SK payload. SK and SKF
// payloads are not allowed inside (RFC 7296 §3.14).
func DecodePayloads(first PayloadType, b []byte) ([]Payload, error) {
	ps, _, err := decodeChain(first, b, 0, false)
	return ps, err
}

// decodeChain walks a payload chain in b from offset off. With allowEnc,
// an SK or SKF payload ends the chain and its offset is returned.
func decodeChain(next PayloadType, b []byte, off int, allowEnc bool) ([]Payload, int, error) {
	var ps []Payload
	for next != PayloadNone {
		if len(b)-off < genericHeaderLen {
			return nil, -1, fmt.Errorf("%s payload header: %w", next, ErrShort)
		}
		hdr := b[off:]
		following := PayloadType(hdr[0])
		critical := hdr[1]&0x80 != 0
		plen := int(binary.BigEndian.Uint16(hdr[2:]))
		if plen < genericHeaderLen || plen > len(hdr) {
			return nil, -1, fmt.Errorf("%s payload length %d of %d bytes: %w", next, plen, len(hdr), ErrLength)
		}
		body := hdr[genericHeaderLen:plen]
		if next == PayloadSK || next == PayloadSKF {
			if !allowEnc {
				return nil, -1, fmt.Errorf("%s inside an encrypted payload: %w", next, ErrSyntax)
			}
			if off+plen != len(b) {
				return nil, -1, fmt.Errorf("%s payload is not the last one: %w", next, ErrSyntax)
			}
		}
		p, err := decodeBody(next, critical, body)
		if err != nil {
			return nil, -1, err
		}
		switch e := p.(type) {
		case *Encrypted:
			e.Inner = following
			return append(ps, p), off, nil
		case *Fragment:
			e.Inner = following
			if e.Number != 1 && following != PayloadNone {
				return nil, -1, fmt.Errorf("SKF fragment %d with next payload %s: %w", e.Number, following, ErrSyntax)
			}
			return append(ps, p), off, nil
		}
		ps = append(ps, p)
		off += plen
		next = following
	}
	if off != len(b) {
		return nil, -1, fmt.Errorf("%d bytes after the last payload: %w", len(b)-off, ErrLength)
	}
	return ps, -1, nil
}

// AppendPayloads appends the payload chain ps to b (each with its generic
// header) and returns the extended buffer and the type of the first
// payload (PayloadNone for an empty chain). The Next Payload field of an
// *Encrypted or *Fragment payload is its Inner type.
func AppendPayloads(b []byte, ps []Payload) ([]byte, PayloadType, error) {
	first := PayloadNone
	if len(ps) > 0 {
		first = ps[0].Type()
	}
	for i, p := range ps {
		next := PayloadNone
		switch e := p.(type) {
		case *Encrypted:
			if i != len(ps)-1 {
				return b, first, fmt.Errorf("SK payload is not the last one: %w", ErrSyntax)
			}
			next = e.Inner
		case *Fragment:
			if i != len(ps)-1 {
				return b, first, fmt.Errorf("SKF payload is not the last one: %w", ErrSyntax)
			}
			next = e.Inner
		default:
			if i+1 < len(ps) {
				next = ps[i+1].Type()
			}
		}
		start := len(b)
		var flags byte
		if u, ok := p.(*Unknown); ok && u.Critical {
			flags = 0x80
		}
		b = append(b, byte(next), flags, 0, 0)
		b = p.appendBody(b)
		l := len(b) - start
		if l > 0xffff {
			return b, first, fmt.Errorf("%s payload of %d bytes: %w", p.Type(), l, ErrLength)
		}
		binary.BigEndian.PutUint16(b[start+2:], uint16(l))
	}
	return b, first, nil
}

// Encode encodes m with the header's NextPayload and Length computed from
// the payloads (Raw and EncOffset are ignored).
func (m *Message) Encode() ([]byte, error) {
	h := m.Header
	b := make([]byte, HeaderLen, 512)
	b, first, err := AppendPayloads(b, m.Payloads)
	if err != nil {
		return nil, fmt.Errorf("encoding %s message %d: %w", h.Exchange, h.MessageID, err)
	}
	if len(b) > MaxMessage {
		return nil, fmt.Errorf("encoding %s message %d of %d bytes: %w", h.Exchange, h.MessageID, len(b), ErrLength)
	}
	h.NextPayload = first
	h.Length = uint32(len(b))
	AppendHeader(b[:0], &h)
	return b, nil
}

// Notifies returns the Notify payloads of ps.
func Notifies(ps []Payload) []*Notify {
	var ns []*Notify
	for _, p := range ps {
		if n, ok := p.(*Notify); ok {
			ns = append(ns, n)
		}
	}
	return ns
}

// FindNotify returns the first Notify of type t in ps, or nil.
func FindNotify(ps []Payload, t NotifyType) *Notify {
	for _, p := range ps {
		if n, ok := p.(*Notify); ok && n.NotifyType == t {
			return n
		}
	}
	return nil
}

// Find returns the first payload of type t in ps, or nil.
func Find(ps []Payload, t PayloadType) Payload {
	for _, p := range ps {
		if p.Type() == t {
			return p
		}
	}
	return nil
}
