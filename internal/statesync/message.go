package statesync

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// Entry is one outbound SA's sequence number.
type Entry struct {
	Tunnel string `json:"tunnel"`
	SPI    uint32 `json:"spi"`
	Seq    uint64 `json:"seq"`
}

// Route is one route the active installed (a BGP best path): what the
// standby puts in its kernel when it takes over, before its own sessions
// are up.
type Route struct {
	Prefix   netip.Prefix `json:"prefix"`
	NextHops []netip.Addr `json:"next_hops"`
}

// Message is one state update. Routes is the sender's whole routing
// snapshot (up to MaxRoutes), not a delta.
type Message struct {
	Node    uint8
	Epoch   uint64
	Seq     uint64
	Entries []Entry
	Routes  []Route
}

const (
	magic     = "HVSS"
	version   = 2
	headerLen = 4 + 1 + 1 + 8 + 8 + 2
	macLen    = sha256.Size
	// MaxEntries and MaxRoutes bound a message so that it fits one
	// datagram (about 64 KB with IPv6 routes of 4 next hops).
	MaxEntries = 200
	MaxRoutes  = 1000
	// maxHops bounds the next hops of one route.
	maxHops = 16
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
	b := make([]byte, 0, headerLen+len(m.Entries)*32+2+len(m.Routes)*24+macLen)
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
	b, err := appendRoutes(b, m.Routes)
	if err != nil {
		return nil, err
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
	var err error
	if m.Routes, p, err = parseRoutes(p); err != nil {
		return m, err
	}
	if len(p) != 0 {
		return m, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(p))
	}
	return m, nil
}

// appendRoutes encodes the route section:
//
//	count (2) | count x { family (1: 4 or 6) | prefix length (1) |
//	  address (4 or 16) | hop count (1) | hops x address (4 or 16) }
func appendRoutes(b []byte, rs []Route) ([]byte, error) {
	if len(rs) > MaxRoutes {
		return nil, fmt.Errorf("state message: %d routes, at most %d", len(rs), MaxRoutes)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(rs)))
	for _, r := range rs {
		fam := byte(4)
		if r.Prefix.Addr().Is6() {
			fam = 6
		}
		if !r.Prefix.IsValid() || len(r.NextHops) == 0 || len(r.NextHops) > maxHops {
			return nil, fmt.Errorf("state message: route %s: want a prefix and 1..%d next hops, have %d", r.Prefix, maxHops, len(r.NextHops))
		}
		b = append(b, fam, byte(r.Prefix.Bits()))
		b = append(b, r.Prefix.Masked().Addr().AsSlice()...)
		b = append(b, byte(len(r.NextHops)))
		for _, h := range r.NextHops {
			if h.Is6() != (fam == 6) {
				return nil, fmt.Errorf("state message: route %s: next hop %s of another family", r.Prefix, h)
			}
			b = append(b, h.AsSlice()...)
		}
	}
	return b, nil
}

// parseRoutes decodes the route section and returns what follows it.
func parseRoutes(p []byte) ([]Route, []byte, error) {
	if len(p) < 2 {
		return nil, p, fmt.Errorf("%w: no route section", ErrMalformed)
	}
	n := int(binary.BigEndian.Uint16(p))
	p = p[2:]
	if n > MaxRoutes {
		return nil, p, fmt.Errorf("%w: %d routes", ErrMalformed, n)
	}
	var rs []Route
	for range n {
		r, rest, err := parseRoute(p)
		if err != nil {
			return nil, p, err
		}
		rs, p = append(rs, r), rest
	}
	return rs, p, nil
}

func parseRoute(p []byte) (Route, []byte, error) {
	var r Route
	if len(p) < 2 || (p[0] != 4 && p[0] != 6) {
		return r, p, fmt.Errorf("%w: route family", ErrMalformed)
	}
	al := 4
	if p[0] == 6 {
		al = 16
	}
	bits := int(p[1])
	if bits > al*8 || len(p) < 2+al+1 {
		return r, p, fmt.Errorf("%w: truncated route", ErrMalformed)
	}
	a, _ := netip.AddrFromSlice(p[2 : 2+al])
	r.Prefix = netip.PrefixFrom(a, bits)
	if r.Prefix.Masked() != r.Prefix {
		return r, p, fmt.Errorf("%w: route %s: host bits set", ErrMalformed, r.Prefix)
	}
	nh := int(p[2+al])
	p = p[3+al:]
	if nh == 0 || nh > maxHops || len(p) < nh*al {
		return r, p, fmt.Errorf("%w: route %s: %d next hops", ErrMalformed, r.Prefix, nh)
	}
	r.NextHops = make([]netip.Addr, nh)
	for i := range nh {
		r.NextHops[i], _ = netip.AddrFromSlice(p[:al])
		p = p[al:]
	}
	return r, p, nil
}
