package tunnel

import (
	"encoding/binary"
	"net/netip"
	"time"
)

// icmpMaxLen is the longest ICMP error built: the IPv6 minimum MTU, which
// RFC 4443 §2.4 (c) sets as the limit (IPv4 errors stay within 576 bytes,
// RFC 1812 §4.3.2.3).
const icmpMaxLen = 1280

// icmpRate is how many PMTU errors a tunnel writes per second at most
// (RFC 1812 §4.3.2.8, RFC 4443 §2.4 (f): rate-limit ICMP errors).
const icmpRate = 100

// icmpLimiter is a token bucket of icmpRate tokens per second; only the
// send loop uses it.
type icmpLimiter struct {
	tokens float64
	last   time.Time
}

func (l *icmpLimiter) allow(now time.Time) bool {
	if l.last.IsZero() {
		l.tokens = icmpRate
	} else {
		l.tokens = min(icmpRate, l.tokens+now.Sub(l.last).Seconds()*icmpRate)
	}
	l.last = now
	if l.tokens < 1 {
		return false
	}
	l.tokens--
	return true
}

// buildTooBig writes into b (at least icmpMaxLen bytes) the ICMP error
// that tells the sender of the inner packet p that the tunnel's MTU is
// mtu: for IPv4 destination unreachable, fragmentation needed and DF set
// (RFC 792, RFC 1191 §4: type 3 code 4 with the next-hop MTU), for IPv6
// packet too big (RFC 4443 §3.2). The error comes from self, the tunnel's
// inner address when it has p's family, else from p's destination. It
// returns the length written, 0 when p is not a packet to answer (an ICMP
// error itself, or from an unspecified or multicast source).
func buildTooBig(b, p []byte, mtu int, self netip.Addr) int {
	switch p[0] >> 4 {
	case 4:
		return tooBig4(b, p, mtu, self)
	case 6:
		return tooBig6(b, p, mtu, self)
	}
	return 0
}

func tooBig4(b, p []byte, mtu int, self netip.Addr) int {
	ihl := int(p[0]&0x0f) * 4
	if ihl < 20 || len(p) < ihl {
		return 0
	}
	src := netip.AddrFrom4([4]byte(p[12:16]))
	dst := netip.AddrFrom4([4]byte(p[16:20]))
	if src.IsUnspecified() || src.IsMulticast() || src.IsLoopback() || src == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return 0
	}
	if binary.BigEndian.Uint16(p[6:8])&0x1fff != 0 {
		return 0 // not the first fragment (RFC 1812 §4.3.2.7)
	}
	if p[9] == 1 && len(p) > ihl && isICMPv4Error(p[ihl]) {
		return 0
	}
	from := dst
	if self.Is4() {
		from = self
	}
	quote := min(len(p), 576-20-8)
	n := 20 + 8 + quote
	ip := b[:20]
	ip[0], ip[1] = 0x45, 0xc0 // precedence internetwork control, as Linux does
	binary.BigEndian.PutUint16(ip[2:], uint16(n))
	binary.BigEndian.PutUint32(ip[4:], 0) // id 0, DF clear
	ip[8], ip[9] = 64, 1
	ip[10], ip[11] = 0, 0
	f4, d4 := from.As4(), src.As4()
	copy(ip[12:16], f4[:])
	copy(ip[16:20], d4[:])
	binary.BigEndian.PutUint16(ip[10:], checksum(ip, 0))
	ic := b[20:n]
	ic[0], ic[1] = 3, 4
	ic[2], ic[3] = 0, 0
	ic[4], ic[5] = 0, 0
	binary.BigEndian.PutUint16(ic[6:], uint16(mtu))
	copy(ic[8:], p[:quote])
	binary.BigEndian.PutUint16(ic[2:], checksum(ic, 0))
	return n
}

func isICMPv4Error(typ byte) bool {
	switch typ {
	case 3, 4, 5, 11, 12:
		return true
	}
	return false
}

func tooBig6(b, p []byte, mtu int, self netip.Addr) int {
	if len(p) < 40 {
		return 0
	}
	src := netip.AddrFrom16([16]byte(p[8:24]))
	dst := netip.AddrFrom16([16]byte(p[24:40]))
	if src.IsUnspecified() || src.IsMulticast() || src.IsLoopback() {
		return 0
	}
	// An ICMPv6 error (type < 128) right after the fixed header is not
	// answered (RFC 4443 §2.4 (e)); extension headers are not walked.
	if p[6] == 58 && len(p) > 40 && p[40] < 128 {
		return 0
	}
	from := dst
	if self.Is6() && !self.Is4In6() {
		from = self
	}
	if from.IsMulticast() {
		return 0 // a multicast destination: no unicast source to answer from
	}
	quote := min(len(p), icmpMaxLen-40-8)
	plen := 8 + quote
	ip := b[:40]
	ip[0], ip[1], ip[2], ip[3] = 0x60, 0, 0, 0
	binary.BigEndian.PutUint16(ip[4:], uint16(plen))
	ip[6], ip[7] = 58, 64
	f16, d16 := from.As16(), src.As16()
	copy(ip[8:24], f16[:])
	copy(ip[24:40], d16[:])
	ic := b[40 : 40+plen]
	ic[0], ic[1] = 2, 0
	ic[2], ic[3] = 0, 0
	binary.BigEndian.PutUint32(ic[4:], uint32(mtu))
	copy(ic[8:], p[:quote])
	// Pseudo-header (RFC 8200 §8.1): addresses, length, next header.
	var sum uint32
	for i := 8; i < 40; i += 2 {
		sum += uint32(ip[i])<<8 | uint32(ip[i+1])
	}
	sum += uint32(plen) + 58
	binary.BigEndian.PutUint16(ic[2:], checksum(ic, sum))
	return 40 + plen
}

// checksum is the Internet checksum (RFC 1071) of b, starting from the
// partial sum initial.
func checksum(b []byte, initial uint32) uint16 {
	sum := initial
	for len(b) >= 2 {
		sum += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
