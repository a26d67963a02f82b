package ike

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/havpn/havpn/internal/ike/wire"
)

// Identity is an IKE identity (RFC 7296 §3.5): its type and the payload
// data (an address in network byte order, a name, or a DER DN).
type Identity struct {
	Type wire.IDType
	Data []byte
}

// ParseIdentity parses an identity the way strongSwan does:
// "@site1.example.net" is an FQDN (the "@" is dropped), "@#0a1b" a key ID
// in hex, "C=XX, O=lab, CN=gw" (anything with "=") a distinguished name,
// "user@example.net" an RFC 822 address, an IP address an IPv4/IPv6
// identity, and any other string (for example "gw-a") an FQDN.
func ParseIdentity(s string) (Identity, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return Identity{}, fmt.Errorf("empty identity: %w", ErrIdentity)
	case strings.HasPrefix(s, "@#"):
		b, err := hex.DecodeString(s[2:])
		if err != nil || len(b) == 0 {
			return Identity{}, fmt.Errorf("key ID %q: %w", s, ErrIdentity)
		}
		return Identity{Type: wire.IDKeyID, Data: b}, nil
	case strings.HasPrefix(s, "@"):
		if len(s) == 1 {
			return Identity{}, fmt.Errorf("FQDN %q: %w", s, ErrIdentity)
		}
		return Identity{Type: wire.IDFQDN, Data: []byte(s[1:])}, nil
	case strings.Contains(s, "="):
		der, err := parseDN(s)
		if err != nil {
			return Identity{}, err
		}
		return Identity{Type: wire.IDDN, Data: der}, nil
	case strings.Contains(s, "@"):
		return Identity{Type: wire.IDRFC822, Data: []byte(s)}, nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return AddrIdentity(a), nil
	}
	return Identity{Type: wire.IDFQDN, Data: []byte(s)}, nil
}

// AddrIdentity returns the ID_IPV4_ADDR or ID_IPV6_ADDR identity of a.
func AddrIdentity(a netip.Addr) Identity {
	a = a.Unmap()
	if a.Is4() {
		return Identity{Type: wire.IDIPv4, Data: a.AsSlice()}
	}
	return Identity{Type: wire.IDIPv6, Data: a.AsSlice()}
}

// DNIdentity returns the ID_DER_ASN1_DN identity for a certificate's
// subject, using its DER bytes unchanged.
func DNIdentity(c *x509.Certificate) Identity {
	return Identity{Type: wire.IDDN, Data: slices.Clone(c.RawSubject)}
}

// dnAttr returns the OID of a DN attribute keyword.
func dnAttr(k string) (asn1.ObjectIdentifier, bool) {
	switch strings.ToUpper(k) {
	case "C":
		return asn1.ObjectIdentifier{2, 5, 4, 6}, true
	case "O":
		return asn1.ObjectIdentifier{2, 5, 4, 10}, true
	case "OU":
		return asn1.ObjectIdentifier{2, 5, 4, 11}, true
	case "CN":
		return asn1.ObjectIdentifier{2, 5, 4, 3}, true
	case "L":
		return asn1.ObjectIdentifier{2, 5, 4, 7}, true
	case "ST":
		return asn1.ObjectIdentifier{2, 5, 4, 8}, true
	case "STREET":
		return asn1.ObjectIdentifier{2, 5, 4, 9}, true
	case "SN":
		return asn1.ObjectIdentifier{2, 5, 4, 4}, true
	case "SERIALNUMBER":
		return asn1.ObjectIdentifier{2, 5, 4, 5}, true
	case "DC":
		return asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}, true
	case "UID":
		return asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}, true
	case "E", "EMAILADDRESS":
		return asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}, true
	}
	return nil, false
}

// parseDN parses "C=XX, O=h1-lab, CN=gw-a" (RDNs in the order written, as
// strongSwan does; "," or "/" separate RDNs) into DER.
func parseDN(s string) ([]byte, error) {
	var seq pkix.RDNSequence
	sep := ","
	if strings.HasPrefix(s, "/") {
		s, sep = s[1:], "/"
	}
	for _, part := range strings.Split(s, sep) {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		oid, known := dnAttr(k)
		if !ok || !known || v == "" {
			return nil, fmt.Errorf("distinguished name %q: attribute %q: %w", s, part, ErrIdentity)
		}
		seq = append(seq, pkix.RelativeDistinguishedNameSET{{Type: oid, Value: v}})
	}
	der, err := asn1.Marshal(seq)
	if err != nil {
		return nil, fmt.Errorf("distinguished name %q: %w: %w", s, ErrIdentity, err)
	}
	return der, nil
}

// dnString returns a DER DN in strongSwan's notation, RDNs in ASN.1 order
// ("C=XX, O=lab, CN=gw", what ParseIdentity reads), or "" if it does not
// parse. Two DNs are equal when these strings are (the string types of the
// values, PrintableString or UTF8String, do not matter).
func dnString(der []byte) string {
	var seq pkix.RDNSequence
	if rest, err := asn1.Unmarshal(der, &seq); err != nil || len(rest) != 0 {
		return ""
	}
	var parts []string
	for _, rdn := range seq {
		for _, atv := range rdn {
			k := atv.Type.String()
			for _, name := range []string{"C", "O", "OU", "CN", "L", "ST", "STREET", "SN", "SERIALNUMBER", "DC", "UID", "E"} {
				if oid, _ := dnAttr(name); oid.Equal(atv.Type) {
					k = name
					break
				}
			}
			parts = append(parts, fmt.Sprintf("%s=%v", k, atv.Value))
		}
	}
	return strings.Join(parts, ", ")
}

// Equal reports whether two identities are the same (DNs compare by
// value, FQDNs case-insensitively).
func (id Identity) Equal(o Identity) bool {
	if id.Type != o.Type {
		return false
	}
	switch id.Type {
	case wire.IDDN:
		a, b := dnString(id.Data), dnString(o.Data)
		return a != "" && a == b
	case wire.IDFQDN, wire.IDRFC822:
		return strings.EqualFold(string(id.Data), string(o.Data))
	}
	return bytes.Equal(id.Data, o.Data)
}

// IsZero reports whether id is unset.
func (id Identity) IsZero() bool { return id.Type == 0 && len(id.Data) == 0 }

// String formats id like ParseIdentity's input.
func (id Identity) String() string {
	switch id.Type {
	case wire.IDFQDN:
		return "@" + string(id.Data)
	case wire.IDRFC822:
		return string(id.Data)
	case wire.IDIPv4, wire.IDIPv6:
		if a, ok := netip.AddrFromSlice(id.Data); ok {
			return a.String()
		}
	case wire.IDDN:
		if s := dnString(id.Data); s != "" {
			return s
		}
	case wire.IDKeyID:
		return "@#" + hex.EncodeToString(id.Data)
	case 0:
		return ""
	}
	return fmt.Sprintf("%s:%x", id.Type, id.Data)
}

func (id Identity) payload(responder bool) *wire.ID {
	return &wire.ID{Responder: responder, IDType: id.Type, Data: id.Data}
}

func identityOf(p *wire.ID) Identity { return Identity{Type: p.IDType, Data: p.Data} }

// certHasIdentity reports whether certificate c proves identity id
// (RFC 7296 §3.5, RFC 4945 §3.1): an FQDN or address must be among the
// subjectAltNames, an RFC 822 address among the e-mail SANs, a DN must
// equal the subject.
func certHasIdentity(c *x509.Certificate, id Identity) bool {
	switch id.Type {
	case wire.IDFQDN:
		for _, n := range c.DNSNames {
			if strings.EqualFold(n, string(id.Data)) {
				return true
			}
		}
	case wire.IDIPv4, wire.IDIPv6:
		a, ok := netip.AddrFromSlice(id.Data)
		if !ok {
			return false
		}
		for _, ip := range c.IPAddresses {
			if b, ok := netip.AddrFromSlice(ip); ok && b.Unmap() == a.Unmap() {
				return true
			}
		}
	case wire.IDRFC822:
		for _, e := range c.EmailAddresses {
			if strings.EqualFold(e, string(id.Data)) {
				return true
			}
		}
	case wire.IDDN:
		return Identity{Type: wire.IDDN, Data: c.RawSubject}.Equal(id)
	}
	return false
}
