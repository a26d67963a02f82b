package cluster

import "encoding/binary"

// Serial framing. A serial line is a byte stream, so each heartbeat message
// travels inside a frame:
//
//	0x7E 0xA5  length (2 bytes, big-endian)  message (length bytes)
//
// The receiver scans for the two sync bytes, checks that length is a
// possible message length, that the message looks like one (magic, and the
// alive count agreeing with the length) and that it authenticates; when not,
// it skips one byte and scans again, so it resynchronises after line noise or
// a partial frame whose announced length swallowed part of the next one.
const frameHeaderLen = 4

var frameSync = [2]byte{0x7E, 0xA5}

// MaxFrameLen is the longest serial frame.
const MaxFrameLen = frameHeaderLen + MaxMessageLen

// AppendFrame appends a serial frame carrying msg to dst.
func AppendFrame(dst, msg []byte) []byte {
	dst = append(dst, frameSync[0], frameSync[1], 0, 0)
	binary.BigEndian.PutUint16(dst[len(dst)-2:], uint16(len(msg)))
	return append(dst, msg...)
}

// plausible reports whether b could be a heartbeat message: right length for
// its alive count and the magic in place. It does not authenticate.
func plausible(b []byte) bool {
	return len(b) >= MinMessageLen && len(b) <= MaxMessageLen &&
		[4]byte(b[0:4]) == magic && len(b) == MinMessageLen+int(b[12])
}

// deframer reassembles frames from a byte stream. Not safe for concurrent
// use; it does not allocate.
type deframer struct {
	buf     [4 * MaxFrameLen]byte
	n       int    // bytes in buf
	skipped uint64 // bytes discarded while resynchronising
	out     [MaxMessageLen]byte
}

// space returns the free tail of the buffer to read into; after reading k
// bytes into it, call filled(k).
func (d *deframer) space() []byte {
	if d.n == len(d.buf) {
		// Full of bytes that hold no frame: keep the last partial frame's
		// worth and drop the rest.
		keep := MaxFrameLen - 1
		d.skipped += uint64(d.n - keep)
		copy(d.buf[:], d.buf[d.n-keep:d.n])
		d.n = keep
	}
	return d.buf[d.n:]
}

func (d *deframer) filled(k int) { d.n += k }

// next returns the next complete message in the stream that is plausible
// and for which accept (if not nil) returns true, or ok=false when more
// bytes are needed. The returned slice is valid until the next call of space
// or next.
func (d *deframer) next(accept func([]byte) bool) (msg []byte, ok bool) {
	i := 0
	defer func() {
		if i > 0 {
			copy(d.buf[:], d.buf[i:d.n])
			d.n -= i
		}
	}()
	for {
		rest := d.buf[i:d.n]
		if len(rest) < frameHeaderLen {
			// Keep a lone first sync byte; drop anything else that cannot
			// start a frame.
			if len(rest) > 0 && rest[0] != frameSync[0] {
				d.skipped++
				i++
				continue
			}
			return nil, false
		}
		if rest[0] != frameSync[0] || rest[1] != frameSync[1] {
			d.skipped++
			i++
			continue
		}
		l := int(binary.BigEndian.Uint16(rest[2:4]))
		if l < MinMessageLen || l > MaxMessageLen {
			d.skipped++
			i++
			continue
		}
		if len(rest) < frameHeaderLen+l {
			return nil, false
		}
		m := rest[frameHeaderLen : frameHeaderLen+l]
		if !plausible(m) || (accept != nil && !accept(m)) {
			d.skipped++
			i++
			continue
		}
		// Copy out, so that the deferred compaction cannot overwrite it.
		i += frameHeaderLen + l
		out := d.out[:l]
		copy(out, m)
		return out, true
	}
}
