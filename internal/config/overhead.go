package config

// Encapsulation overhead of a tunnel packet, in bytes.
const (
	overheadIPv4    = 20         // outer IPv4 header
	overheadIPv6    = 40         // outer IPv6 header
	overheadUDP     = 8          // UDP encapsulation (RFC 3948)
	overheadESP     = 8 + 8      // SPI, sequence number (RFC 4303 §2), 8-byte IV (RFC 4106 §3.1, RFC 7634 §2)
	overheadTrailer = 3 + 2 + 16 // at most 3 bytes of padding to 4-byte alignment, pad length, next header, 16-byte ICV
	overheadGRE     = 4          // GRE header without key (RFC 2784)
	overheadGREKey  = 4          // GRE key field (RFC 2890)
)

// Overhead returns the largest number of bytes the tunnel adds to an inner
// packet: the outer IP header (IPv6 when Local is IPv6, else IPv4), UDP,
// the ESP header and IV, the largest ESP trailer, and the GRE header (with
// key) in mode gre. The derived MTU is WANMTU - Overhead().
func (t *Tunnel) Overhead() int {
	n := overheadIPv4
	if t.Local.Is6() {
		n = overheadIPv6
	}
	n += overheadUDP + overheadESP + overheadTrailer
	if t.Mode == ModeGRE {
		n += overheadGRE
		if t.GREKey != nil {
			n += overheadGREKey
		}
	}
	return n
}
