package fib

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/netip"
)

// Linux rtnetlink ABI constants (linux/netlink.h, linux/rtnetlink.h). They
// are spelled out here rather than taken from x/sys/unix so that the
// encoder and the ack parser build and can be fuzzed on any OS.
const (
	nlmsgHdrLen = 16
	rtmsgLen    = 12
	rtnhLen     = 8

	nlmsgNoop  = 1
	nlmsgError = 2
	nlmsgDone  = 3

	rtmNewRoute = 24
	rtmDelRoute = 25

	nlmFRequest = 0x1
	nlmFAck     = 0x4
	nlmFReplace = 0x100
	nlmFCreate  = 0x400
	nlmFCapped  = 0x100 // in an NLMSG_ERROR: the request payload is not echoed
	nlmFAckTLVs = 0x200 // in an NLMSG_ERROR: extended ack TLVs follow

	rtaDst       = 1
	rtaOif       = 4
	rtaGateway   = 5
	rtaPriority  = 6
	rtaMultipath = 9
	rtaTable     = 15

	nlmsgerrAttrMsg = 1

	afInet  = 2
	afInet6 = 10

	rtnUnicast     = 1
	rtScopeUniv    = 0
	rtScopeNowhere = 255
	rtTableUnspec  = 0
)

var native = binary.NativeEndian

func align4(n int) int { return (n + 3) &^ 3 }

// errBadOp is returned by appendOp for an op that cannot be encoded.
var errBadOp = errors.New("route cannot be encoded")

func family(a netip.Addr) uint8 {
	if a.Is4() {
		return afInet
	}
	return afInet6
}

// appendAttr appends one rtattr with payload data, padded to 4 bytes.
func appendAttr(b []byte, typ uint16, data []byte) []byte {
	l := 4 + len(data)
	b = native.AppendUint16(b, uint16(l))
	b = native.AppendUint16(b, typ)
	b = append(b, data...)
	for i := l; i < align4(l); i++ {
		b = append(b, 0)
	}
	return b
}

func appendAttrU32(b []byte, typ uint16, v uint32) []byte {
	var d [4]byte
	native.PutUint32(d[:], v)
	return appendAttr(b, typ, d[:])
}

// appendNoop appends an NLMSG_NOOP with NLM_F_ACK: the kernel acks it
// (error 0) after everything sent before it in the same datagram, so it is a
// barrier for a batch of requests sent without NLM_F_ACK.
func appendNoop(b []byte, seq uint32) []byte {
	b = native.AppendUint32(b, nlmsgHdrLen)
	b = native.AppendUint16(b, nlmsgNoop)
	b = native.AppendUint16(b, nlmFRequest|nlmFAck)
	b = native.AppendUint32(b, seq)
	return native.AppendUint32(b, 0)
}

// appendOp appends one RTM_NEWROUTE (OpReplace) or RTM_DELROUTE (OpDelete)
// request for op, with sequence number seq, to b. Without ack only a
// failure is answered (an NLMSG_ERROR), which is how batches are sent. On
// error b is returned unchanged.
func appendOp(b []byte, op Op, seq uint32, ack bool) ([]byte, error) {
	r := op.Route
	if !r.Prefix.IsValid() {
		return b, fmt.Errorf("%w: invalid prefix", errBadOp)
	}
	p := r.Prefix.Masked()
	fam := family(p.Addr())
	var typ, flags uint16
	scope := uint8(rtScopeUniv)
	switch op.Kind {
	case OpReplace:
		typ, flags = rtmNewRoute, nlmFRequest|nlmFCreate|nlmFReplace
		if len(r.NextHops) == 0 {
			return b, fmt.Errorf("%w: no next hop", errBadOp)
		}
		for _, h := range r.NextHops {
			if !h.Gateway.IsValid() || family(h.Gateway.Unmap()) != fam {
				return b, fmt.Errorf("%w: next hop %s is not of the prefix's address family", errBadOp, h.Gateway)
			}
		}
	case OpDelete:
		typ, flags = rtmDelRoute, nlmFRequest
		scope = rtScopeNowhere // match any scope
	default:
		return b, fmt.Errorf("%w: unknown op kind %d", errBadOp, op.Kind)
	}
	if ack {
		flags |= nlmFAck
	}
	start := len(b)
	b = native.AppendUint32(b, 0) // length, patched below
	b = native.AppendUint16(b, typ)
	b = native.AppendUint16(b, flags)
	b = native.AppendUint32(b, seq)
	b = native.AppendUint32(b, 0) // port id: the kernel fills it in
	tableByte := uint8(rtTableUnspec)
	if r.Table < 256 {
		tableByte = uint8(r.Table)
	}
	b = append(b, fam, uint8(p.Bits()), 0, 0, tableByte, r.Protocol, scope, rtnUnicast)
	b = native.AppendUint32(b, 0) // rtm_flags
	b = appendAttr(b, rtaDst, p.Addr().AsSlice())
	b = appendAttrU32(b, rtaTable, r.Table)
	if r.Metric != 0 {
		b = appendAttrU32(b, rtaPriority, r.Metric)
	}
	if op.Kind == OpReplace {
		if len(r.NextHops) == 1 {
			h := r.NextHops[0]
			b = appendAttr(b, rtaGateway, h.Gateway.Unmap().AsSlice())
			if h.Link != 0 {
				b = appendAttrU32(b, rtaOif, uint32(h.Link))
			}
		} else {
			mp := len(b)
			b = native.AppendUint16(b, 0) // rta_len, patched below
			b = native.AppendUint16(b, rtaMultipath)
			for _, h := range r.NextHops {
				gw := h.Gateway.Unmap().AsSlice()
				b = native.AppendUint16(b, uint16(rtnhLen+align4(4+len(gw))))
				b = append(b, 0, 0) // rtnh_flags, rtnh_hops (weight 1)
				b = native.AppendUint32(b, uint32(int32(h.Link)))
				b = appendAttr(b, rtaGateway, gw)
			}
			native.PutUint16(b[mp:], uint16(len(b)-mp))
		}
	}
	native.PutUint32(b[start:], uint32(len(b)-start))
	return b, nil
}

// ack is one NLMSG_ERROR reply: Errno 0 acknowledges success.
type ack struct {
	Seq   uint32
	Errno int32  // positive errno, 0 for success
	Msg   string // extended ack message, if the kernel sent one
}

// errMalformed is returned by parseAcks for bytes that are not a sequence of
// well-formed netlink messages.
var errMalformed = errors.New("malformed netlink reply")

// parseAcks calls fn for each NLMSG_ERROR message in b, a buffer of netlink
// messages as read from the socket. Other message types are skipped. It
// stops at the first malformed message and returns errMalformed.
func parseAcks(b []byte, fn func(ack)) error {
	for len(b) > 0 {
		if len(b) < nlmsgHdrLen {
			return fmt.Errorf("%w: %d trailing bytes", errMalformed, len(b))
		}
		l := int(native.Uint32(b))
		if l < nlmsgHdrLen || l > len(b) {
			return fmt.Errorf("%w: message length %d of %d bytes", errMalformed, l, len(b))
		}
		typ := native.Uint16(b[4:])
		flags := native.Uint16(b[6:])
		seq := native.Uint32(b[8:])
		body := b[nlmsgHdrLen:l]
		if typ == nlmsgError {
			a, err := parseErrorBody(body, flags)
			if err != nil {
				return err
			}
			a.Seq = seq
			fn(a)
		}
		next := align4(l)
		if next > len(b) {
			next = len(b)
		}
		b = b[next:]
	}
	return nil
}

// parseErrorBody decodes struct nlmsgerr (int error; struct nlmsghdr msg;
// [payload]; [TLVs]) as sent with NETLINK_CAP_ACK and NETLINK_EXT_ACK.
func parseErrorBody(body []byte, flags uint16) (ack, error) {
	if len(body) < 4+nlmsgHdrLen {
		return ack{}, fmt.Errorf("%w: error message of %d bytes", errMalformed, len(body))
	}
	e := int32(native.Uint32(body))
	if e > 0 || e == math.MinInt32 {
		return ack{}, fmt.Errorf("%w: error code %d", errMalformed, e)
	}
	a := ack{Errno: -e}
	if flags&nlmFAckTLVs == 0 {
		return a, nil
	}
	off := 4 + nlmsgHdrLen
	if flags&nlmFCapped == 0 {
		// The request was echoed whole; its header says how long it is.
		ol := int(native.Uint32(body[4:]))
		if ol < nlmsgHdrLen || 4+ol > len(body) {
			return ack{}, fmt.Errorf("%w: echoed request of %d bytes", errMalformed, ol)
		}
		off = 4 + align4(ol)
	}
	for off+4 <= len(body) {
		al := int(native.Uint16(body[off:]))
		at := native.Uint16(body[off+2:])
		if al < 4 || off+al > len(body) {
			return ack{}, fmt.Errorf("%w: ack attribute of %d bytes", errMalformed, al)
		}
		if at == nlmsgerrAttrMsg {
			v := body[off+4 : off+al]
			for i, c := range v {
				if c == 0 {
					v = v[:i]
					break
				}
			}
			a.Msg = string(v)
		}
		off += align4(al)
	}
	return a, nil
}
