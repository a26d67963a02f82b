package ike

import (
	"net/netip"

	"github.com/havpn/havpn/internal/ike/wire"
)

// TrafficSelector is one traffic selector (RFC 7296 §3.13.1): an address
// range, a port range and an IP protocol (0 = any).
type TrafficSelector = wire.Selector

// ProtoGRE is the IP protocol number of GRE.
const ProtoGRE = 47

// PrefixSelector returns the selector covering prefix p, all ports, IP
// protocol proto (0 = any).
func PrefixSelector(p netip.Prefix, proto uint8) TrafficSelector {
	p = p.Masked()
	start := p.Addr()
	end := start
	bits := end.BitLen()
	b := end.AsSlice()
	for i := p.Bits(); i < bits; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	end, _ = netip.AddrFromSlice(b)
	return TrafficSelector{Proto: proto, StartPort: 0, EndPort: 65535, Start: start, End: end}
}

func sameFamily(a, b netip.Addr) bool { return a.Unmap().Is4() == b.Unmap().Is4() }

// tsContains reports whether selector in is entirely inside out.
func tsContains(out, in TrafficSelector) bool {
	if !sameFamily(out.Start, in.Start) {
		return false
	}
	if out.Proto != 0 && out.Proto != in.Proto {
		return false
	}
	return in.StartPort >= out.StartPort && in.EndPort <= out.EndPort &&
		in.Start.Unmap().Compare(out.Start.Unmap()) >= 0 && in.End.Unmap().Compare(out.End.Unmap()) <= 0 &&
		in.Start.Unmap().Compare(in.End.Unmap()) <= 0 && in.StartPort <= in.EndPort
}

// tsIntersect returns a ∩ b and whether it is not empty.
func tsIntersect(a, b TrafficSelector) (TrafficSelector, bool) {
	if !sameFamily(a.Start, b.Start) {
		return TrafficSelector{}, false
	}
	var r TrafficSelector
	switch {
	case a.Proto == b.Proto || b.Proto == 0:
		r.Proto = a.Proto
	case a.Proto == 0:
		r.Proto = b.Proto
	default:
		return r, false
	}
	r.StartPort, r.EndPort = max(a.StartPort, b.StartPort), min(a.EndPort, b.EndPort)
	r.Start, r.End = a.Start.Unmap(), a.End.Unmap()
	if s := b.Start.Unmap(); s.Compare(r.Start) > 0 {
		r.Start = s
	}
	if e := b.End.Unmap(); e.Compare(r.End) < 0 {
		r.End = e
	}
	if r.StartPort > r.EndPort || r.Start.Compare(r.End) > 0 {
		return r, false
	}
	return r, true
}

// narrow returns the part of the peer's proposed selectors that our
// configuration allows (RFC 7296 §2.9): every non-empty intersection of one
// of ours with one of theirs. exact demands that the result is exactly our
// configuration (GRE between two addresses).
func narrow(ours, theirs []TrafficSelector, exact bool) ([]TrafficSelector, bool) {
	var out []TrafficSelector
	for _, o := range ours {
		for _, t := range theirs {
			if r, ok := tsIntersect(o, t); ok {
				out = append(out, r)
			}
		}
	}
	if len(out) == 0 {
		return nil, false
	}
	if exact {
		if len(out) != len(ours) {
			return nil, false
		}
		for i := range out {
			if out[i] != ours[i] {
				return nil, false
			}
		}
	}
	return out, true
}

// acceptNarrowed checks the responder's selectors: not empty, each inside
// one we proposed.
func acceptNarrowed(proposed, got []TrafficSelector, exact bool) bool {
	if len(got) == 0 {
		return false
	}
	for _, g := range got {
		ok := false
		for _, p := range proposed {
			if tsContains(p, g) && (!exact || g == p) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}
