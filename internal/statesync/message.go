package statesync

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// Entry is one outbound SA's sequence number.
type Entry struct {
	Tunnel string `json:"tunnel"`
	SPI    uint32 `json:"spi"`
	Seq    uint64 `json:"seq"`
}

// Message is one state update.
type Message struct {
	Node    uint8
	Epoch   uint64
	Seq     uint64
	Entries []Entry
}

const (
	magic     = "HVSS"
	version   = 1
	headerLen = 4 + 1 + 1 + 8 + 8 + 2
	macLen    = sha256.Size
	// MaxEntries bounds a message so that it fits one datagram.
	MaxEntries = 200
)

// Errors from Unmarshal; every one means "drop the datagram".
var (
	ErrMalformed = errors.New("malformed state message")
	ErrAuth      = errors.New("state message fails authentication")
)

// Marshal encodes and authenticates m with key.
func Marshal(m Message, key []byte) ([]byte, error) {
	if len(m.Entries) > MaxEntries {
		return nil, fmt.Errorf("state message: %d entries, at most %d", len(m.Entries), MaxEntries)
	}
	b := make([]byte, 0, headerLen+len(m.Entries)*32+macLen)
	b = append(b, magic...)
	b = append(b, version, m.Node)
	b = binary.BigEndian.AppendUint64(b, m.Epoch)
	b = binary.BigEndian.AppendUint64(b, m.Seq)
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.Entries)))
	for _, e := range m.Entries {
		if len(e.Tunnel) == 0 || len(e.Tunnel) > 255 {
			return nil, fmt.Errorf("state message: tunnel name %q: 1..255 bytes", e.Tunnel)
		}
		b = append(b, byte(len(e.Tunnel)))
		b = append(b, e.Tunnel...)
		b = binary.BigEndian.AppendUint32(b, e.SPI)
		b = binary.BigEndian.AppendUint64(b, e.Seq)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write(b)
	return mac.Sum(b), nil
}

// Unmarshal checks and decodes a datagram.
func Unmarshal(b, key []byte) (Message, error) {
	var m Message
	if len(b) < headerLen+macLen || string(b[:4]) != magic {
		return m, ErrMalformed
	}
	body, sum := b[:len(b)-macLen], b[len(b)-macLen:]
	mac := hmac.New(sha256.New, key)
	mac.Write(body)
	if !hmac.Equal(mac.Sum(nil), sum) {
		return m, ErrAuth
	}
	if body[4] != version {
		return m, fmt.Errorf("%w: version %d", ErrMalformed, body[4])
	}
	m.Node = body[5]
	m.Epoch = binary.BigEndian.Uint64(body[6:])
	m.Seq = binary.BigEndian.Uint64(body[14:])
	n := int(binary.BigEndian.Uint16(body[22:]))
	if n > MaxEntries {
		return m, fmt.Errorf("%w: %d entries", ErrMalformed, n)
	}
	p := body[headerLen:]
	m.Entries = make([]Entry, 0, n)
	for range n {
		if len(p) < 1 || p[0] == 0 || len(p) < 1+int(p[0])+12 {
			return m, fmt.Errorf("%w: truncated entry", ErrMalformed)
		}
		l := int(p[0])
		m.Entries = append(m.Entries, Entry{
			Tunnel: string(p[1 : 1+l]),
			SPI:    binary.BigEndian.Uint32(p[1+l:]),
			Seq:    binary.BigEndian.Uint64(p[5+l:]),
		})
		p = p[1+l+12:]
	}
	if len(p) != 0 {
		return m, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(p))
	}
	return m, nil
}
