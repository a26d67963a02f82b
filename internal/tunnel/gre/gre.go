package gre

import "encoding/binary"

// Inner protocol types (EtherTypes) carried by the dataplane.
const (
	ProtoIPv4 = 0x0800
	ProtoIPv6 = 0x86DD
)

// Flag bits of the first 16-bit word (RFC 2784 §2, RFC 2890 §2).
const (
	flagChecksum = 0x8000 // C, bit 0
	flagRouting  = 0x4000 // R, bit 1 (RFC 1701)
	flagKey      = 0x2000 // K, bit 2 (RFC 2890)
	flagSeq      = 0x1000 // S, bit 3 (RFC 2890)
	flagStrict   = 0x0800 // s, bit 4 (RFC 1701 strict source route)
	bitRecur5    = 0x0400 // bit 5
	maskVersion  = 0x0007 // Ver, bits 13-15

	// rejectBits are bits 1-5 except K and S: RFC 2784 §2.5.1 says a
	// receiver MUST discard a packet with any of bits 1-5 set unless it
	// implements RFC 1701; RFC 2890 gives bits 2 and 3 their meaning.
	rejectBits = flagRouting | flagStrict | bitRecur5
)

// MinHeaderLen is the shortest GRE header (no optional fields); MaxHeaderLen
// the longest (checksum, key and sequence number).
const (
	MinHeaderLen = 4
	MaxHeaderLen = 16
)

// HeaderLen returns the length of the header Put writes: 4 bytes, or 8 with
// a key.
func HeaderLen(hasKey bool) int {
	if hasKey {
		return 8
	}
	return 4
}

// Put writes a GRE header for the inner EtherType proto (ProtoIPv4,
// ProtoIPv6) into b[:HeaderLen(hasKey)]: version 0, no checksum, no sequence
// number, and the K bit with key when hasKey (RFC 2890 §2.1). It panics if b
// is shorter than HeaderLen(hasKey). It does not allocate.
func Put(b []byte, proto uint16, key uint32, hasKey bool) {
	if hasKey {
		_ = b[7]
		binary.BigEndian.PutUint16(b[0:], flagKey)
		binary.BigEndian.PutUint16(b[2:], proto)
		binary.BigEndian.PutUint32(b[4:], key)
		return
	}
	_ = b[3]
	b[0], b[1] = 0, 0
	binary.BigEndian.PutUint16(b[2:], proto)
}

// Header is a parsed GRE header. Len is the header length: the inner packet
// is b[Len:]. Key and Seq are meaningful only when HasKey and HasSeq are
// set; HasChecksum reports that a checksum was present (and verified).
type Header struct {
	Proto       uint16
	Key         uint32
	HasKey      bool
	Seq         uint32
	HasSeq      bool
	Len         int
	HasChecksum bool
}

// Parse decodes the GRE header at the start of b, which holds the whole GRE
// packet (header and payload: the checksum covers both). It follows the
// reception rules of RFC 2784 §2.5.1 with RFC 2890: it rejects version != 0
// (ErrVersion) and bits 1, 4 and 5 (ErrReserved), ignores bits 6-12 and
// Reserved1, verifies the checksum when the C bit is set (ErrChecksum), and
// returns ErrShort when b ends inside the header. Errors are returned
// unwrapped. It does not allocate.
func Parse(b []byte) (Header, error) {
	if len(b) < MinHeaderLen {
		return Header{}, ErrShort
	}
	flags := binary.BigEndian.Uint16(b)
	if flags&maskVersion != 0 {
		return Header{}, ErrVersion
	}
	if flags&rejectBits != 0 {
		return Header{}, ErrReserved
	}
	h := Header{Proto: binary.BigEndian.Uint16(b[2:]), Len: 4}
	if flags&flagChecksum != 0 {
		h.HasChecksum = true
		h.Len += 4
	}
	if flags&flagKey != 0 {
		h.HasKey = true
		h.Len += 4
	}
	if flags&flagSeq != 0 {
		h.HasSeq = true
		h.Len += 4
	}
	if len(b) < h.Len {
		return Header{}, ErrShort
	}
	off := 4
	if h.HasChecksum {
		if Checksum(b) != 0 {
			return Header{}, ErrChecksum
		}
		off += 4
	}
	if h.HasKey {
		h.Key = binary.BigEndian.Uint32(b[off:])
		off += 4
	}
	if h.HasSeq {
		h.Seq = binary.BigEndian.Uint32(b[off:])
	}
	return h, nil
}

// Checksum returns the Internet checksum (RFC 1071: the ones' complement of
// the ones' complement sum of the 16-bit words, an odd last byte padded with
// zero) of b. Over a GRE packet whose checksum field holds the right value
// it returns 0; over a packet whose checksum field is zero it returns the
// value to store there (RFC 2784 §2.2).
func Checksum(b []byte) uint16 {
	var sum uint64
	for len(b) >= 8 {
		sum += uint64(binary.BigEndian.Uint32(b)) + uint64(binary.BigEndian.Uint32(b[4:]))
		b = b[8:]
	}
	if len(b) >= 4 {
		sum += uint64(binary.BigEndian.Uint32(b))
		b = b[4:]
	}
	if len(b) >= 2 {
		sum += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint64(b[0]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
