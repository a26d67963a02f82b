package statesync

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

func TestRoundTrip(t *testing.T) {
	m := Message{Node: 2, Epoch: 1764000000, Seq: 7, Entries: []Entry{
		{"gre-site2", 0x1201, 123456}, {"t", 0xffffffff, 1 << 40},
	}}
	b, err := Marshal(m, testKey)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Unmarshal(b, testKey)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestRejects(t *testing.T) {
	good, _ := Marshal(Message{Node: 1, Entries: []Entry{{"gre-site2", 0x1201, 9}}}, testKey)
	for i := range good {
		bad := append([]byte(nil), good...)
		bad[i] ^= 0x40
		if _, err := Unmarshal(bad, testKey); err == nil {
			t.Errorf("byte %d flipped: accepted", i)
		}
	}
	for n := range len(good) {
		if _, err := Unmarshal(good[:n], testKey); err == nil {
			t.Errorf("truncated to %d bytes: accepted", n)
		}
	}
	if _, err := Unmarshal(good, []byte("another key, 32 bytes long......")); !errors.Is(err, ErrAuth) {
		t.Errorf("wrong key: %v, want ErrAuth", err)
	}
	if _, err := Marshal(Message{Entries: []Entry{{"", 1, 1}}}, testKey); err == nil {
		t.Error("empty tunnel name marshalled")
	}
}

func FuzzUnmarshal(f *testing.F) {
	good, _ := Marshal(Message{Node: 1, Epoch: 2, Seq: 3, Entries: []Entry{{"gre-site2", 0x1201, 9}}}, testKey)
	f.Add(good)
	f.Add([]byte("HVSS"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Unmarshal(b, testKey)
		if err != nil {
			return
		}
		// Whatever authenticates re-encodes to the same bytes.
		again, err := Marshal(m, testKey)
		if err != nil || string(again) != string(b) {
			t.Fatalf("accepted message does not re-encode: %v", err)
		}
	})
}
