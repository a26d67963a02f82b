package ike

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/havpn/havpn/internal/ike/wire"
)

func TestParseProposal(t *testing.T) {
	tests := []struct {
		in   string
		ike  bool
		want string // String() of the result; "" = error
	}{
		{"aes128gcm16-prfsha256-x25519", true, "aes128gcm16-prfsha256-x25519"},
		{"AES256GCM-PRFSHA384-ECP384", true, "aes256gcm16-prfsha384-ecp384"},
		{"aes256-sha256-prfsha256-ecp256", true, "aes256-sha256-prfsha256-ecp256"},
		{"chacha20poly1305-prfsha512-curve25519", true, "chacha20poly1305-prfsha512-x25519"},
		{"aes256gcm16", false, "aes256gcm16"},
		{"aes128gcm16-x25519-esn", false, "aes128gcm16-x25519-esn"},
		{"chacha20poly1305-noesn", false, "chacha20poly1305"},
		// weak or incomplete
		{"3des-sha1-modp1024", true, ""},
		{"aes128-sha1-prfsha1-modp2048", true, ""},
		{"aes128gcm16-prfsha256-modp1024", true, ""},
		{"aes128gcm8-prfsha256-x25519", true, ""},
		{"aes128gcm16-prfsha256", true, ""},   // no DH
		{"aes128gcm16-x25519", true, ""},      // no PRF
		{"aes128-prfsha256-x25519", true, ""}, // CBC without integrity
		{"aes128gcm16-sha256-prfsha256-x25519", true, ""},
		{"aes128-sha256", false, ""},           // CBC for ESP (dataplane is AEAD only)
		{"aes128gcm16-prfsha256", false, ""},   // PRF in ESP
		{"aes128gcm16-aes256gcm16", false, ""}, // two ciphers
		{"aes128gcm16--x25519", false, ""},
		{"aes128gcm16-esn", true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			p, err := ParseProposal(tc.in, tc.ike)
			if tc.want == "" {
				if !errors.Is(err, ErrProposal) {
					t.Fatalf("ParseProposal(%q) = %v, %v; want ErrProposal", tc.in, p, err)
				}
				return
			}
			if err != nil || p.String() != tc.want {
				t.Fatalf("ParseProposal(%q) = %q, %v; want %q", tc.in, p.String(), err, tc.want)
			}
		})
	}
}

func TestSelectProposal(t *testing.T) {
	ours := []Proposal{mustProposal("aes256gcm16-prfsha384-ecp384", true), mustProposal("aes128gcm16-prfsha256-x25519", true)}
	tr := wire.NewTransform
	tests := []struct {
		name string
		peer []wire.Transform
		want string // "" = no match
	}{
		{"exact second", []wire.Transform{tr(wire.TransformENCR, wire.EncrAESGCM16, 128), tr(wire.TransformPRF, wire.PRFHMACSHA2256, 0), tr(wire.TransformDH, wire.DHCurve25519, 0)}, "aes128gcm16-prfsha256-x25519"},
		{"alternatives, our preference wins", []wire.Transform{
			tr(wire.TransformENCR, wire.EncrAESGCM16, 128), tr(wire.TransformENCR, wire.EncrAESGCM16, 256),
			tr(wire.TransformPRF, wire.PRFHMACSHA2256, 0), tr(wire.TransformPRF, wire.PRFHMACSHA2384, 0),
			tr(wire.TransformDH, wire.DHCurve25519, 0), tr(wire.TransformDH, wire.DHECP384, 0)}, "aes256gcm16-prfsha384-ecp384"},
		{"weak only", []wire.Transform{tr(wire.TransformENCR, wire.EncrDES3, 0), tr(wire.TransformPRF, wire.PRFHMACSHA1, 0),
			tr(wire.TransformINTEG, wire.IntegHMACSHA196, 0), tr(wire.TransformDH, wire.DHModp1024, 0)}, ""},
		{"weak DH", []wire.Transform{tr(wire.TransformENCR, wire.EncrAESGCM16, 128), tr(wire.TransformPRF, wire.PRFHMACSHA2256, 0), tr(wire.TransformDH, wire.DHModp1024, 0)}, ""},
		{"wrong key size", []wire.Transform{tr(wire.TransformENCR, wire.EncrAESGCM16, 192), tr(wire.TransformPRF, wire.PRFHMACSHA2256, 0), tr(wire.TransformDH, wire.DHCurve25519, 0)}, ""},
		{"AEAD with integrity", []wire.Transform{tr(wire.TransformENCR, wire.EncrAESGCM16, 128), tr(wire.TransformINTEG, wire.IntegHMACSHA256128, 0), tr(wire.TransformPRF, wire.PRFHMACSHA2256, 0), tr(wire.TransformDH, wire.DHCurve25519, 0)}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sa := &wire.SA{Proposals: []wire.Proposal{{Num: 1, Protocol: wire.ProtoIKE, Transforms: tc.peer}}}
			p, _, ok := selectProposal(ours, sa, wire.ProtoIKE, false)
			if tc.want == "" {
				if ok {
					t.Fatalf("selected %s", p)
				}
				return
			}
			if !ok || p.String() != tc.want {
				t.Fatalf("selected %s, %v; want %s", p, ok, tc.want)
			}
		})
	}
}

func TestParseIdentity(t *testing.T) {
	tests := []struct {
		in, str string
		typ     wire.IDType
	}{
		{"@site1.example.net", "@site1.example.net", wire.IDFQDN},
		{"gw-a", "@gw-a", wire.IDFQDN},
		{"198.51.100.1", "198.51.100.1", wire.IDIPv4},
		{"2001:db8::1", "2001:db8::1", wire.IDIPv6},
		{"ops@example.net", "ops@example.net", wire.IDRFC822},
		{"C=XX, O=h1-lab, CN=gw-a", "C=XX, O=h1-lab, CN=gw-a", wire.IDDN},
		{"@#0a0b", "@#0a0b", wire.IDKeyID},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			id, err := ParseIdentity(tc.in)
			if err != nil || id.Type != tc.typ || id.String() != tc.str {
				t.Fatalf("ParseIdentity(%q) = %v %q, %v", tc.in, id.Type, id.String(), err)
			}
			again, err := ParseIdentity(id.String())
			if err != nil || !again.Equal(id) {
				t.Fatalf("String() does not round-trip: %q", id.String())
			}
		})
	}
	for _, bad := range []string{"", "@", "XX=1, CN=a", "CN=", "@#zz"} {
		if _, err := ParseIdentity(bad); !errors.Is(err, ErrIdentity) {
			t.Errorf("ParseIdentity(%q) error %v", bad, err)
		}
	}
	if !mustID("@A.Example.NET").Equal(mustID("@a.example.net")) {
		t.Error("FQDN comparison is case-sensitive")
	}
}

func TestTrafficSelectors(t *testing.T) {
	s := func(p string, proto uint8) TrafficSelector { return PrefixSelector(netip.MustParsePrefix(p), proto) }
	if got := s("192.168.1.0/24", 0); got.End != netip.MustParseAddr("192.168.1.255") || got.EndPort != 65535 {
		t.Fatalf("PrefixSelector %+v", got)
	}
	if got := s("2001:db8::/64", 0); got.End != netip.MustParseAddr("2001:db8::ffff:ffff:ffff:ffff") {
		t.Fatalf("PrefixSelector v6 %+v", got)
	}
	tests := []struct {
		name         string
		ours, theirs []TrafficSelector
		exact        bool
		want         []TrafficSelector
	}{
		{"narrow to ours", []TrafficSelector{s("192.168.1.0/24", 0)}, []TrafficSelector{s("0.0.0.0/0", 0)}, false, []TrafficSelector{s("192.168.1.0/24", 0)}},
		{"narrow to theirs", []TrafficSelector{s("192.168.0.0/16", 0)}, []TrafficSelector{s("192.168.1.0/24", 0)}, false, []TrafficSelector{s("192.168.1.0/24", 0)}},
		{"disjoint", []TrafficSelector{s("192.168.1.0/24", 0)}, []TrafficSelector{s("10.0.0.0/8", 0)}, false, nil},
		{"family", []TrafficSelector{s("192.168.1.0/24", 0)}, []TrafficSelector{s("::/0", 0)}, false, nil},
		{"gre exact", []TrafficSelector{s("198.51.100.1/32", 47)}, []TrafficSelector{s("198.51.100.1/32", 0)}, true, []TrafficSelector{s("198.51.100.1/32", 47)}},
		{"gre wrong proto", []TrafficSelector{s("198.51.100.1/32", 47)}, []TrafficSelector{s("198.51.100.1/32", 6)}, true, nil},
		{"gre subset refused", []TrafficSelector{s("198.51.100.0/30", 47)}, []TrafficSelector{s("198.51.100.1/32", 47)}, true, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := narrow(tc.ours, tc.theirs, tc.exact)
			if ok != (tc.want != nil) || len(got) != len(tc.want) {
				t.Fatalf("narrow = %v, %v; want %v", got, ok, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("narrow = %v; want %v", got, tc.want)
				}
			}
			if ok && !acceptNarrowed(tc.theirs, got, false) && !tc.exact {
				t.Fatalf("initiator would refuse its own narrowing %v", got)
			}
		})
	}
}
