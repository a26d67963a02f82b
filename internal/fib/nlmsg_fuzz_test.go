package fib

import (
	"bytes"
	"net/netip"
	"testing"
)

// buildAck returns an NLMSG_ERROR reply as the kernel sends it with
// NETLINK_CAP_ACK and NETLINK_EXT_ACK.
func buildAck(seq uint32, errno int32, msg string, capped bool) []byte {
	var body []byte
	body = native.AppendUint32(body, uint32(-errno))
	orig := appendNoop(nil, seq) // the echoed request header
	if !capped {
		orig = append(orig[:0:0], orig...)
		orig = native.AppendUint32(orig, 0xdeadbeef) // a payload
		native.PutUint32(orig, uint32(len(orig)))
	}
	body = append(body, orig...)
	flags := uint16(0)
	if capped {
		flags |= nlmFCapped
	}
	if msg != "" {
		flags |= nlmFAckTLVs
		body = appendAttr(body, nlmsgerrAttrMsg, append([]byte(msg), 0))
	}
	var b []byte
	b = native.AppendUint32(b, uint32(nlmsgHdrLen+len(body)))
	b = native.AppendUint16(b, nlmsgError)
	b = native.AppendUint16(b, flags)
	b = native.AppendUint32(b, seq)
	b = native.AppendUint32(b, 0)
	return append(b, body...)
}

func TestParseAcks(t *testing.T) {
	var b []byte
	b = append(b, buildAck(7, 0, "", true)...)
	b = append(b, buildAck(8, 101, "Nexthop has invalid gateway", true)...)
	b = append(b, buildAck(9, 3, "uncapped", false)...)
	var got []ack
	if err := parseAcks(b, func(a ack) { got = append(got, a) }); err != nil {
		t.Fatal(err)
	}
	want := []ack{{7, 0, ""}, {8, 101, "Nexthop has invalid gateway"}, {9, 3, "uncapped"}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("ack %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	for _, bad := range [][]byte{b[:10], b[:len(b)-1], {0xff, 0xff, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}} {
		if err := parseAcks(bad, func(ack) {}); err == nil {
			t.Errorf("parseAcks(% x) accepted malformed input", bad)
		}
	}
}

func TestAppendOpRejects(t *testing.T) {
	for _, op := range []Op{
		{Kind: OpReplace, Route: Route{Prefix: netip.MustParsePrefix("10.0.0.0/8")}},
		{Kind: OpReplace, Route: Route{Prefix: netip.MustParsePrefix("10.0.0.0/8"), NextHops: []NextHop{{Gateway: netip.MustParseAddr("2001:db8::1")}}}},
		{Kind: OpDelete},
		{Kind: 9, Route: Route{Prefix: netip.MustParsePrefix("10.0.0.0/8")}},
	} {
		b, err := appendOp([]byte("x"), op, 1, false)
		if err == nil || !bytes.Equal(b, []byte("x")) {
			t.Errorf("appendOp(%v) = %q, %v; want an error and the buffer unchanged", op, b, err)
		}
	}
}

// FuzzParseAcks checks that parseAcks never panics, reports only what the
// input holds, and round-trips acks it is given.
func FuzzParseAcks(f *testing.F) {
	f.Add(buildAck(1, 0, "", true), uint32(5), int32(0), "")
	f.Add(append(buildAck(2, 22, "Invalid prefix", true), buildAck(3, 0, "", false)...), uint32(77), int32(101), "msg")
	f.Add([]byte{}, uint32(0), int32(1), "x")
	f.Fuzz(func(t *testing.T, b []byte, seq uint32, errno int32, msg string) {
		n := 0
		_ = parseAcks(b, func(a ack) {
			n++
			if a.Errno < 0 {
				t.Fatalf("negative errno %d", a.Errno)
			}
		})
		if n > len(b)/(nlmsgHdrLen+4+nlmsgHdrLen) {
			t.Fatalf("%d acks from %d bytes", n, len(b))
		}
		if errno < 0 || bytes.IndexByte([]byte(msg), 0) >= 0 || len(msg) > 1000 {
			return
		}
		var got []ack
		if err := parseAcks(buildAck(seq, errno, msg, true), func(a ack) { got = append(got, a) }); err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0] != (ack{seq, errno, msg}) {
			t.Fatalf("round trip of (%d, %d, %q) = %+v", seq, errno, msg, got)
		}
	})
}
