package cluster

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzUnmarshal feeds arbitrary bytes to the decoder, signed (so that the
// checks behind the MAC are reached) and unsigned. Invariants: no panic;
// every error is one of the sentinels; a message that decodes re-encodes to
// the same bytes; unsigned garbage never authenticates.
func FuzzUnmarshal(f *testing.F) {
	c := NewCodec(testKey)
	m := sampleMessage()
	good, _ := c.Marshal(nil, &m)
	f.Add(good, false)
	f.Add(good[:headerLen+2], true)
	f.Add(good[:len(good)-1], false)
	m.NAlive = 0
	clear(m.Alive[:])
	empty, _ := c.Marshal(nil, &m)
	f.Add(empty, false)
	f.Add(empty[:headerLen], true)
	f.Add([]byte("HVHB\x01"), true)
	f.Add(bytes.Repeat([]byte{0}, MinMessageLen), true)
	f.Fuzz(func(t *testing.T, b []byte, sign bool) {
		if sign && len(b) >= MACLen {
			b = resign(c, bytes.Clone(b))
		}
		var out Message
		err := c.Unmarshal(b, &out)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrVersion) && !errors.Is(err, ErrAuth) {
				t.Fatalf("unexpected error %v", err)
			}
			if out != (Message{}) {
				t.Fatal("message written on error")
			}
			return
		}
		if !sign && len(b) >= MACLen && !bytes.Equal(b, good) && !bytes.Equal(b, empty) {
			// Unsigned input that authenticates is a forged MAC.
			t.Fatalf("unsigned input authenticated: %x", b)
		}
		again, err := c.Marshal(nil, &out)
		if err != nil {
			t.Fatalf("decoded message does not marshal: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", b, again)
		}
	})
}

// FuzzDeframer feeds an arbitrary stream, in arbitrary chunk sizes, to the
// serial deframer. Invariants: no panic; every message it returns is
// authentic; the buffer never holds a full frame's worth of unusable bytes
// after next has run; two valid frames appended after the noise are both
// found (a false header in the noise may hold the first back until enough
// bytes arrived, but resynchronising skips one byte at a time, so it is not
// lost).
func FuzzDeframer(f *testing.F) {
	c := NewCodec(testKey)
	m := sampleMessage()
	good, _ := c.Marshal(nil, &m)
	frame := AppendFrame(nil, good)
	f.Add(frame, uint8(1))
	f.Add(append([]byte{0x7E, 0xA5, 0, 90}, frame...), uint8(7))
	f.Add([]byte{0x7E, 0x7E, 0xA5}, uint8(2))
	f.Fuzz(func(t *testing.T, noise []byte, chunk uint8) {
		var d deframer
		stream := append(append(bytes.Clone(noise), frame...), frame...)
		step := int(chunk)%64 + 1
		found := 0
		var scratch Message
		accept := func(b []byte) bool { return c.Unmarshal(b, &scratch) == nil }
		for len(stream) > 0 {
			k := copy(d.space(), stream[:min(step, len(stream))])
			d.filled(k)
			stream = stream[k:]
			for {
				msg, ok := d.next(accept)
				if !ok {
					break
				}
				if !plausible(msg) {
					t.Fatalf("implausible message %x", msg)
				}
				if bytes.Equal(msg, good) {
					found++
				}
			}
			if d.n >= MaxFrameLen {
				t.Fatalf("%d bytes buffered", d.n)
			}
		}
		if found < 2 {
			t.Fatalf("%d of 2 valid frames after the noise found", found)
		}
	})
}
