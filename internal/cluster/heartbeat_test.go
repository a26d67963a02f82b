package cluster

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

var testKey = []byte("0123456789abcdef-test-key")

func sampleMessage() Message {
	m := Message{
		NodeID:        2,
		Role:          RoleActive,
		Priority:      150,
		Flags:         FlagEligible | FlagCarrierOK,
		PingReachable: 1,
		HandoverTo:    0,
		Epoch:         1_700_000_000_000_000_000,
		Seq:           42,
		Uptime:        3 * time.Second,
		SendTime:      1_700_000_003_000_000_000,
		ConfigHash:    ParseConfigHash("0123456789abcdef"),
		NAlive:        2,
	}
	m.Alive[0], m.Alive[1] = 1, 3
	return m
}

func TestMessageRoundTrip(t *testing.T) {
	c := NewCodec(testKey)
	tests := []struct {
		name string
		edit func(*Message)
	}{
		{"sample", func(*Message) {}},
		{"no alive ids", func(m *Message) { m.NAlive = 0; clear(m.Alive[:]) }},
		{"max alive ids", func(m *Message) {
			m.NAlive = MaxAlive
			for i := range m.Alive {
				m.Alive[i] = uint8(10 + i)
			}
		}},
		{"every flag", func(m *Message) { m.Flags = flagsDefined }},
		{"init with handover", func(m *Message) { m.Role = RoleInit; m.HandoverTo = 9 }},
		{"extreme numbers", func(m *Message) {
			m.Epoch, m.Seq, m.SendTime, m.Uptime = ^uint64(0), ^uint64(0), -1, 1<<63-1
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := sampleMessage()
			tc.edit(&in)
			b, err := c.Marshal(nil, &in)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) != in.Len() {
				t.Fatalf("len = %d, Len() = %d", len(b), in.Len())
			}
			var out Message
			if err := c.Unmarshal(b, &out); err != nil {
				t.Fatal(err)
			}
			if out != in {
				t.Fatalf("round trip:\n got %+v\nwant %+v", out, in)
			}
		})
	}
}

func TestMessageLayout(t *testing.T) {
	c := NewCodec(testKey)
	m := sampleMessage()
	b, err := c.Marshal([]byte("prefix"), &m)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("prefixHVHB\x01\x02\x02\x96\x00\x06\x01\x00\x02\x00\x00\x00")) {
		t.Fatalf("header = %q", b[:22])
	}
	if got := b[len("prefix")+headerLen : len("prefix")+headerLen+2]; !bytes.Equal(got, []byte{1, 3}) {
		t.Fatalf("alive ids = %v", got)
	}
}

func TestMarshalRejects(t *testing.T) {
	c := NewCodec(testKey)
	tests := []struct {
		name string
		edit func(*Message)
	}{
		{"node id 0", func(m *Message) { m.NodeID = 0 }},
		{"seq 0", func(m *Message) { m.Seq = 0 }},
		{"bad role", func(m *Message) { m.Role = 3 }},
		{"undefined flag", func(m *Message) { m.Flags |= 1 << 15 }},
		{"too many alive", func(m *Message) { m.NAlive = MaxAlive + 1 }},
		{"alive not increasing", func(m *Message) { m.Alive[1] = 1 }},
		{"alive zero", func(m *Message) { m.Alive[0] = 0 }},
		{"unused alive entry set", func(m *Message) { m.Alive[5] = 9 }},
		{"handover to self", func(m *Message) { m.HandoverTo = m.NodeID }},
		{"negative uptime", func(m *Message) { m.Uptime = -1 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := sampleMessage()
			tc.edit(&m)
			b, err := c.Marshal([]byte{1}, &m)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
			if !bytes.Equal(b, []byte{1}) {
				t.Fatalf("dst changed to %x", b)
			}
		})
	}
}

// resign recomputes the MAC of a tampered message, so that the field checks
// behind the MAC are reached.
func resign(c *Codec, b []byte) []byte {
	body := b[:len(b)-MACLen]
	c.mac.Reset()
	c.mac.Write(body)
	return append(body[:len(body):len(body)], c.mac.Sum(nil)...)
}

func TestUnmarshalRejects(t *testing.T) {
	c := NewCodec(testKey)
	m := sampleMessage()
	good, err := c.Marshal(nil, &m)
	if err != nil {
		t.Fatal(err)
	}
	mod := func(f func(b []byte) []byte) []byte {
		return f(bytes.Clone(good))
	}
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"truncated by one", good[:len(good)-1], ErrMalformed},
		{"header only", good[:headerLen], ErrMalformed},
		{"one extra byte", append(bytes.Clone(good), 0), ErrMalformed},
		{"too long", make([]byte, MaxMessageLen+1), ErrMalformed},
		{"bad magic", mod(func(b []byte) []byte { b[0] = 'X'; return b }), ErrMalformed},
		{"version 2", mod(func(b []byte) []byte { b[4] = 2; return b }), ErrVersion},
		{"alive count disagrees with length", mod(func(b []byte) []byte { b[12] = 3; return b }), ErrMalformed},
		{"alive count too big", mod(func(b []byte) []byte { b[12] = 200; return b }), ErrMalformed},
		{"tampered role", mod(func(b []byte) []byte { b[6] = byte(RoleStandby); return b }), ErrAuth},
		{"tampered seq", mod(func(b []byte) []byte { b[31]++; return b }), ErrAuth},
		{"tampered alive id", mod(func(b []byte) []byte { b[headerLen]++; return b }), ErrAuth},
		{"tampered mac", mod(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), ErrAuth},
		{"wrong key", func() []byte {
			b, _ := NewCodec([]byte("another key of enough length")).Marshal(nil, &m)
			return b
		}(), ErrAuth},
		{"signed reserved byte", mod(func(b []byte) []byte { b[14] = 1; return resign(c, b) }), ErrMalformed},
		{"signed bad role", mod(func(b []byte) []byte { b[6] = 7; return resign(c, b) }), ErrMalformed},
		{"signed node id 0", mod(func(b []byte) []byte { b[5] = 0; return resign(c, b) }), ErrMalformed},
		{"signed undefined flag", mod(func(b []byte) []byte { b[8] = 0x80; return resign(c, b) }), ErrMalformed},
		{"signed seq 0", mod(func(b []byte) []byte { clear(b[24:32]); return resign(c, b) }), ErrMalformed},
		{"signed duplicate alive", mod(func(b []byte) []byte { b[headerLen+1] = b[headerLen]; return resign(c, b) }), ErrMalformed},
		{"signed negative uptime", mod(func(b []byte) []byte { b[32] = 0x80; return resign(c, b) }), ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := sampleMessage()
			out.Seq = 999
			before := out
			err := c.Unmarshal(tc.b, &out)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if out != before {
				t.Fatal("message written on error")
			}
		})
	}
}

func TestCodecDoesNotAllocate(t *testing.T) {
	c := NewCodec(testKey)
	m := sampleMessage()
	buf := make([]byte, 0, MaxMessageLen)
	var out Message
	allocs := testing.AllocsPerRun(100, func() {
		b, err := c.Marshal(buf[:0], &m)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per marshal+unmarshal", allocs)
	}
}

func TestParseConfigHash(t *testing.T) {
	if got := ParseConfigHash("00112233445566ff").String(); got != "00112233445566ff" {
		t.Fatalf("hex hash = %s", got)
	}
	a, b := ParseConfigHash("not hex at all"), ParseConfigHash("not hex at all!")
	if a == b || a == (ConfigHash{}) {
		t.Fatalf("hashed strings: %s %s", a, b)
	}
}

func TestDeframer(t *testing.T) {
	c := NewCodec(testKey)
	m1, m2 := sampleMessage(), sampleMessage()
	m2.Seq++
	b1, _ := c.Marshal(nil, &m1)
	b2, _ := c.Marshal(nil, &m2)
	f1, f2 := AppendFrame(nil, b1), AppendFrame(nil, b2)
	tests := []struct {
		name   string
		stream []byte
		chunk  int
		want   [][]byte
	}{
		{"two frames", append(bytes.Clone(f1), f2...), 1000, [][]byte{b1, b2}},
		{"byte by byte", append(bytes.Clone(f1), f2...), 1, [][]byte{b1, b2}},
		{"noise before", append([]byte{0x7E, 0x7E, 0xA5, 0xFF, 0xFF, 1, 2}, f1...), 3, [][]byte{b1}},
		{"truncated frame then good one", append(bytes.Clone(f1[:30]), f2...), 7, [][]byte{b2}},
		{"sync bytes inside noise", append([]byte{0x7E, 0xA5, 0, 90, 'H', 'V'}, f2...), 5, [][]byte{b2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var d deframer
			var got [][]byte
			var scratch Message
			accept := func(b []byte) bool { return c.Unmarshal(b, &scratch) == nil }
			s := tc.stream
			for len(s) > 0 {
				k := copy(d.space(), s[:min(tc.chunk, len(s))])
				d.filled(k)
				s = s[k:]
				for {
					msg, ok := d.next(accept)
					if !ok {
						break
					}
					got = append(got, bytes.Clone(msg))
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d messages, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if !bytes.Equal(got[i], tc.want[i]) {
					t.Fatalf("message %d differs", i)
				}
				var out Message
				if err := c.Unmarshal(got[i], &out); err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
			}
		})
	}
}

func TestDeframerNoiseDoesNotFill(t *testing.T) {
	var d deframer
	noise := bytes.Repeat([]byte{0x7E, 0xA5, 0x00, 0x60, 'H'}, 1000)
	for len(noise) > 0 {
		k := copy(d.space(), noise)
		d.filled(k)
		noise = noise[k:]
		for {
			if _, ok := d.next(nil); !ok {
				break
			}
			t.Fatal("a frame out of noise")
		}
	}
	if d.n >= MaxFrameLen {
		t.Fatalf("%d bytes buffered after noise", d.n)
	}
}
