package wire

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Payload is one IKEv2 payload. The concrete types are the pointer types in
// this package (*SA, *KE, *Nonce, ...); the interface is closed.
type Payload interface {
	// Type is the payload's type as written in the preceding Next Payload
	// field.
	Type() PayloadType
	// appendBody appends the payload body (without the generic header).
	appendBody(b []byte) []byte
}

// genericHeaderLen is the length of the generic payload header (§3.2).
const genericHeaderLen = 4

// decodeBody decodes the body of one payload of type t.
func decodeBody(t PayloadType, critical bool, body []byte) (Payload, error) {
	switch t {
	case PayloadSA:
		return decodeSA(body)
	case PayloadKE:
		return decodeKE(body)
	case PayloadIDi, PayloadIDr:
		return decodeID(t, body)
	case PayloadCERT:
		return decodeCert(body)
	case PayloadCERTREQ:
		return decodeCertReq(body)
	case PayloadAUTH:
		return decodeAuth(body)
	case PayloadNonce:
		return decodeNonce(body)
	case PayloadNotify:
		return decodeNotify(body)
	case PayloadDelete:
		return decodeDelete(body)
	case PayloadVendor:
		return &Vendor{Data: clone(body)}, nil
	case PayloadTSi, PayloadTSr:
		return decodeTS(t, body)
	case PayloadCP:
		return decodeConfig(body)
	case PayloadSK:
		return &Encrypted{Data: clone(body)}, nil
	case PayloadSKF:
		return decodeFragment(body)
	}
	return &Unknown{PType: t, Critical: critical, Body: clone(body)}, nil
}

func clone(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}

// ---------------------------------------------------------------- SA

// SA is the Security Association payload (RFC 7296 §3.3): a list of
// alternative proposals.
type SA struct {
	Proposals []Proposal
}

// Proposal is one proposal substructure (RFC 7296 §3.3.1). Transforms of
// the same type are alternatives; of different types, all apply.
type Proposal struct {
	Num        uint8
	Protocol   ProtocolID
	SPI        []byte // 0 bytes (IKE_SA_INIT), 8 (IKE rekey) or 4 (ESP/AH)
	Transforms []Transform
}

// Transform is one transform substructure (RFC 7296 §3.3.2).
type Transform struct {
	Type  TransformType
	ID    uint16
	Attrs []Attribute
}

// Attribute is a transform attribute (RFC 7296 §3.3.5). A TV attribute
// (AF bit set) has a two-byte value; a TLV attribute a variable one.
type Attribute struct {
	Type  uint16 // without the AF bit
	TV    bool
	Value []byte // exactly 2 bytes when TV
}

// NewTransform returns a transform with an optional Key Length attribute
// (keyLen 0 = no attribute).
func NewTransform(t TransformType, id uint16, keyLen uint16) Transform {
	tr := Transform{Type: t, ID: id}
	if keyLen != 0 {
		tr.Attrs = []Attribute{{Type: AttrKeyLength, TV: true, Value: []byte{byte(keyLen >> 8), byte(keyLen)}}}
	}
	return tr
}

// KeyLength returns the Key Length attribute, or 0 and false if absent.
func (t Transform) KeyLength() (uint16, bool) {
	for _, a := range t.Attrs {
		if a.Type == AttrKeyLength && a.TV && len(a.Value) == 2 {
			return binary.BigEndian.Uint16(a.Value), true
		}
	}
	return 0, false
}

// Type returns PayloadSA.
func (*SA) Type() PayloadType { return PayloadSA }

// proposal substructure constants (§3.3.1, §3.3.2).
const (
	lastNone      = 0
	moreProposals = 2
	moreTransform = 3
	proposalHdr   = 8
	transformHdr  = 8
)

func (p *SA) appendBody(b []byte) []byte {
	for i, pr := range p.Proposals {
		start := len(b)
		last := byte(moreProposals)
		if i == len(p.Proposals)-1 {
			last = lastNone
		}
		b = append(b, last, 0, 0, 0, pr.Num, byte(pr.Protocol), byte(len(pr.SPI)), byte(len(pr.Transforms)))
		b = append(b, pr.SPI...)
		for j, t := range pr.Transforms {
			tstart := len(b)
			tl := byte(moreTransform)
			if j == len(pr.Transforms)-1 {
				tl = lastNone
			}
			b = append(b, tl, 0, 0, 0, byte(t.Type), 0, byte(t.ID>>8), byte(t.ID))
			for _, a := range t.Attrs {
				if a.TV {
					v := make([]byte, 2)
					copy(v, a.Value)
					b = append(b, byte(a.Type>>8)|0x80, byte(a.Type), v[0], v[1])
				} else {
					b = append(b, byte(a.Type>>8)&0x7f, byte(a.Type), byte(len(a.Value)>>8), byte(len(a.Value)))
					b = append(b, a.Value...)
				}
			}
			binary.BigEndian.PutUint16(b[tstart+2:], uint16(len(b)-tstart))
		}
		binary.BigEndian.PutUint16(b[start+2:], uint16(len(b)-start))
	}
	return b
}

func decodeSA(b []byte) (*SA, error) {
	sa := &SA{}
	if len(b) == 0 {
		return nil, fmt.Errorf("SA payload without proposals: %w", ErrSyntax)
	}
	for len(b) > 0 {
		if len(b) < proposalHdr {
			return nil, fmt.Errorf("proposal header: %w", ErrShort)
		}
		last, plen := b[0], int(binary.BigEndian.Uint16(b[2:]))
		if plen < proposalHdr || plen > len(b) {
			return nil, fmt.Errorf("proposal length %d of %d bytes: %w", plen, len(b), ErrLength)
		}
		pr, err := decodeProposal(b[:plen])
		if err != nil {
			return nil, err
		}
		sa.Proposals = append(sa.Proposals, pr)
		b = b[plen:]
		switch last {
		case lastNone:
			if len(b) != 0 {
				return nil, fmt.Errorf("%d bytes after last proposal: %w", len(b), ErrLength)
			}
		case moreProposals:
			if len(b) == 0 {
				return nil, fmt.Errorf("proposal says more follow, none does: %w", ErrSyntax)
			}
		default:
			return nil, fmt.Errorf("proposal last substruc %d: %w", last, ErrSyntax)
		}
	}
	return sa, nil
}

func decodeProposal(b []byte) (Proposal, error) {
	pr := Proposal{Num: b[4], Protocol: ProtocolID(b[5])}
	spiSize, nt := int(b[6]), int(b[7])
	b = b[proposalHdr:]
	if spiSize > len(b) {
		return pr, fmt.Errorf("proposal %d SPI size %d: %w", pr.Num, spiSize, ErrShort)
	}
	pr.SPI = clone(b[:spiSize])
	b = b[spiSize:]
	for i := 0; i < nt; i++ {
		if len(b) < transformHdr {
			return pr, fmt.Errorf("proposal %d transform %d header: %w", pr.Num, i+1, ErrShort)
		}
		last, tlen := b[0], int(binary.BigEndian.Uint16(b[2:]))
		if tlen < transformHdr || tlen > len(b) {
			return pr, fmt.Errorf("proposal %d transform %d length %d: %w", pr.Num, i+1, tlen, ErrLength)
		}
		if (last == lastNone) != (i == nt-1) || (last != lastNone && last != moreTransform) {
			return pr, fmt.Errorf("proposal %d transform %d last substruc %d of %d transforms: %w", pr.Num, i+1, last, nt, ErrSyntax)
		}
		t := Transform{Type: TransformType(b[4]), ID: binary.BigEndian.Uint16(b[6:])}
		attrs := b[transformHdr:tlen]
		for len(attrs) > 0 {
			if len(attrs) < 4 {
				return pr, fmt.Errorf("proposal %d transform %d attribute: %w", pr.Num, i+1, ErrShort)
			}
			at := binary.BigEndian.Uint16(attrs)
			if at&0x8000 != 0 {
				t.Attrs = append(t.Attrs, Attribute{Type: at & 0x7fff, TV: true, Value: clone(attrs[2:4])})
				attrs = attrs[4:]
				continue
			}
			alen := int(binary.BigEndian.Uint16(attrs[2:]))
			if 4+alen > len(attrs) {
				return pr, fmt.Errorf("proposal %d transform %d attribute length %d: %w", pr.Num, i+1, alen, ErrLength)
			}
			t.Attrs = append(t.Attrs, Attribute{Type: at, Value: clone(attrs[4 : 4+alen])})
			attrs = attrs[4+alen:]
		}
		pr.Transforms = append(pr.Transforms, t)
		b = b[tlen:]
	}
	if len(b) != 0 {
		return pr, fmt.Errorf("proposal %d: %d bytes after %d transforms: %w", pr.Num, len(b), nt, ErrLength)
	}
	return pr, nil
}

// ---------------------------------------------------------------- KE

// KE is the Key Exchange payload (RFC 7296 §3.4).
type KE struct {
	Group uint16
	Data  []byte
}

// Type returns PayloadKE.
func (*KE) Type() PayloadType { return PayloadKE }

func (p *KE) appendBody(b []byte) []byte {
	b = append(b, byte(p.Group>>8), byte(p.Group), 0, 0)
	return append(b, p.Data...)
}

func decodeKE(b []byte) (*KE, error) {
	if len(b) < 4 {
		return nil, fmt.Errorf("KE payload: %w", ErrShort)
	}
	return &KE{Group: binary.BigEndian.Uint16(b), Data: clone(b[4:])}, nil
}

// ---------------------------------------------------------------- Nonce

// Nonce is the Nonce payload (RFC 7296 §3.9); 16 to 256 bytes.
type Nonce struct {
	Data []byte
}

// Nonce length limits (RFC 7296 §3.9).
const (
	MinNonce = 16
	MaxNonce = 256
)

// Type returns PayloadNonce.
func (*Nonce) Type() PayloadType { return PayloadNonce }

func (p *Nonce) appendBody(b []byte) []byte { return append(b, p.Data...) }

func decodeNonce(b []byte) (*Nonce, error) {
	if len(b) < MinNonce || len(b) > MaxNonce {
		return nil, fmt.Errorf("nonce of %d bytes: %w", len(b), ErrLength)
	}
	return &Nonce{Data: clone(b)}, nil
}

// ---------------------------------------------------------------- ID

// ID is the Identification payload (RFC 7296 §3.5), IDi or IDr.
type ID struct {
	Responder bool // IDr when set, IDi otherwise
	IDType    IDType
	Data      []byte
}

// Type returns PayloadIDi or PayloadIDr.
func (p *ID) Type() PayloadType {
	if p.Responder {
		return PayloadIDr
	}
	return PayloadIDi
}

func (p *ID) appendBody(b []byte) []byte {
	b = append(b, byte(p.IDType), 0, 0, 0)
	return append(b, p.Data...)
}

// Body returns the payload body (ID type, reserved, data): the
// RestOfInitIDPayload / RestOfRespIDPayload of RFC 7296 §2.15.
func (p *ID) Body() []byte { return p.appendBody(nil) }

func decodeID(t PayloadType, b []byte) (*ID, error) {
	if len(b) < 4 {
		return nil, fmt.Errorf("%s payload: %w", t, ErrShort)
	}
	return &ID{Responder: t == PayloadIDr, IDType: IDType(b[0]), Data: clone(b[4:])}, nil
}

// ---------------------------------------------------------------- CERT, CERTREQ

// Cert is the Certificate payload (RFC 7296 §3.6).
type Cert struct {
	Encoding CertEncoding
	Data     []byte
}

// Type returns PayloadCERT.
func (*Cert) Type() PayloadType { return PayloadCERT }

func (p *Cert) appendBody(b []byte) []byte {
	return append(append(b, byte(p.Encoding)), p.Data...)
}

func decodeCert(b []byte) (*Cert, error) {
	if len(b) < 1 {
		return nil, fmt.Errorf("CERT payload: %w", ErrShort)
	}
	return &Cert{Encoding: CertEncoding(b[0]), Data: clone(b[1:])}, nil
}

// CertReq is the Certificate Request payload (RFC 7296 §3.7). For X.509
// the data is a concatenation of SHA-1 hashes of trusted CAs' public keys.
type CertReq struct {
	Encoding CertEncoding
	Data     []byte
}

// Type returns PayloadCERTREQ.
func (*CertReq) Type() PayloadType { return PayloadCERTREQ }

func (p *CertReq) appendBody(b []byte) []byte {
	return append(append(b, byte(p.Encoding)), p.Data...)
}

func decodeCertReq(b []byte) (*CertReq, error) {
	if len(b) < 1 {
		return nil, fmt.Errorf("CERTREQ payload: %w", ErrShort)
	}
	return &CertReq{Encoding: CertEncoding(b[0]), Data: clone(b[1:])}, nil
}

// ---------------------------------------------------------------- AUTH

// Auth is the Authentication payload (RFC 7296 §3.8).
type Auth struct {
	Method AuthMethod
	Data   []byte
}

// Type returns PayloadAUTH.
func (*Auth) Type() PayloadType { return PayloadAUTH }

func (p *Auth) appendBody(b []byte) []byte {
	b = append(b, byte(p.Method), 0, 0, 0)
	return append(b, p.Data...)
}

func decodeAuth(b []byte) (*Auth, error) {
	if len(b) < 4 {
		return nil, fmt.Errorf("AUTH payload: %w", ErrShort)
	}
	return &Auth{Method: AuthMethod(b[0]), Data: clone(b[4:])}, nil
}

// ---------------------------------------------------------------- Notify

// Notify is the Notify payload (RFC 7296 §3.10).
type Notify struct {
	Protocol   ProtocolID
	SPI        []byte
	NotifyType NotifyType
	Data       []byte
}

// Type returns PayloadNotify.
func (*Notify) Type() PayloadType { return PayloadNotify }

func (p *Notify) appendBody(b []byte) []byte {
	b = append(b, byte(p.Protocol), byte(len(p.SPI)), byte(p.NotifyType>>8), byte(p.NotifyType))
	b = append(b, p.SPI...)
	return append(b, p.Data...)
}

func decodeNotify(b []byte) (*Notify, error) {
	if len(b) < 4 {
		return nil, fmt.Errorf("N payload: %w", ErrShort)
	}
	n := &Notify{Protocol: ProtocolID(b[0]), NotifyType: NotifyType(binary.BigEndian.Uint16(b[2:]))}
	spi := int(b[1])
	if 4+spi > len(b) {
		return nil, fmt.Errorf("N payload %s SPI size %d: %w", n.NotifyType, spi, ErrShort)
	}
	n.SPI = clone(b[4 : 4+spi])
	n.Data = clone(b[4+spi:])
	return n, nil
}

// ---------------------------------------------------------------- Delete

// Delete is the Delete payload (RFC 7296 §3.11).
type Delete struct {
	Protocol ProtocolID
	SPISize  uint8
	SPIs     [][]byte // each SPISize bytes; none for IKE
}

// Type returns PayloadDelete.
func (*Delete) Type() PayloadType { return PayloadDelete }

func (p *Delete) appendBody(b []byte) []byte {
	b = append(b, byte(p.Protocol), p.SPISize, byte(len(p.SPIs)>>8), byte(len(p.SPIs)))
	for _, s := range p.SPIs {
		v := make([]byte, p.SPISize)
		copy(v, s)
		b = append(b, v...)
	}
	return b
}

func decodeDelete(b []byte) (*Delete, error) {
	if len(b) < 4 {
		return nil, fmt.Errorf("D payload: %w", ErrShort)
	}
	d := &Delete{Protocol: ProtocolID(b[0]), SPISize: b[1]}
	n := int(binary.BigEndian.Uint16(b[2:]))
	b = b[4:]
	if n*int(d.SPISize) != len(b) {
		return nil, fmt.Errorf("D payload %d SPIs of %d bytes in %d bytes: %w", n, d.SPISize, len(b), ErrLength)
	}
	if d.SPISize == 0 && n != 0 {
		return nil, fmt.Errorf("D payload %d SPIs of size 0: %w", n, ErrSyntax)
	}
	for i := 0; i < n; i++ {
		d.SPIs = append(d.SPIs, clone(b[:d.SPISize]))
		b = b[d.SPISize:]
	}
	return d, nil
}

// ---------------------------------------------------------------- Vendor

// Vendor is the Vendor ID payload (RFC 7296 §3.12).
type Vendor struct {
	Data []byte
}

// Type returns PayloadVendor.
func (*Vendor) Type() PayloadType { return PayloadVendor }

func (p *Vendor) appendBody(b []byte) []byte { return append(b, p.Data...) }

// ---------------------------------------------------------------- TS

// TS is the Traffic Selector payload (RFC 7296 §3.13), TSi or TSr.
type TS struct {
	Responder bool // TSr when set, TSi otherwise
	Selectors []Selector
}

// Selector is one traffic selector (RFC 7296 §3.13.1): an address range, a
// port range and an IP protocol (0 = any).
type Selector struct {
	Proto     uint8
	StartPort uint16
	EndPort   uint16
	Start     netip.Addr
	End       netip.Addr
}

// Type returns PayloadTSi or PayloadTSr.
func (p *TS) Type() PayloadType {
	if p.Responder {
		return PayloadTSr
	}
	return PayloadTSi
}

func (p *TS) appendBody(b []byte) []byte {
	b = append(b, byte(len(p.Selectors)), 0, 0, 0)
	for _, s := range p.Selectors {
		typ, alen := TSIPv4AddrRange, 4
		if s.Start.Is6() && !s.Start.Is4In6() {
			typ, alen = TSIPv6AddrRange, 16
		}
		l := 8 + 2*alen
		b = append(b, byte(typ), s.Proto, byte(l>>8), byte(l), byte(s.StartPort>>8), byte(s.StartPort), byte(s.EndPort>>8), byte(s.EndPort))
		b = appendAddr(b, s.Start, alen)
		b = appendAddr(b, s.End, alen)
	}
	return b
}

func appendAddr(b []byte, a netip.Addr, n int) []byte {
	if n == 4 {
		v := a.Unmap().As4()
		return append(b, v[:]...)
	}
	v := a.As16()
	return append(b, v[:]...)
}

func decodeTS(t PayloadType, b []byte) (*TS, error) {
	if len(b) < 4 {
		return nil, fmt.Errorf("%s payload: %w", t, ErrShort)
	}
	ts := &TS{Responder: t == PayloadTSr}
	n := int(b[0])
	b = b[4:]
	for i := 0; i < n; i++ {
		if len(b) < 8 {
			return nil, fmt.Errorf("%s selector %d header: %w", t, i+1, ErrShort)
		}
		typ, l := TSType(b[0]), int(binary.BigEndian.Uint16(b[2:]))
		var alen int
		switch typ {
		case TSIPv4AddrRange:
			alen = 4
		case TSIPv6AddrRange:
			alen = 16
		default:
			return nil, fmt.Errorf("%s selector %d type %d: %w", t, i+1, typ, ErrSyntax)
		}
		if l != 8+2*alen || l > len(b) {
			return nil, fmt.Errorf("%s selector %d length %d: %w", t, i+1, l, ErrLength)
		}
		s := Selector{Proto: b[1], StartPort: binary.BigEndian.Uint16(b[4:]), EndPort: binary.BigEndian.Uint16(b[6:])}
		if alen == 4 {
			s.Start = netip.AddrFrom4([4]byte(b[8:12]))
			s.End = netip.AddrFrom4([4]byte(b[12:16]))
		} else {
			s.Start = netip.AddrFrom16([16]byte(b[8:24]))
			s.End = netip.AddrFrom16([16]byte(b[24:40]))
		}
		ts.Selectors = append(ts.Selectors, s)
		b = b[l:]
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%s: %d bytes after %d selectors: %w", t, len(b), n, ErrLength)
	}
	return ts, nil
}

// ---------------------------------------------------------------- CP

// Config is the Configuration payload (RFC 7296 §3.15). havpn neither
// requests nor assigns addresses; it decodes CP so that it can refuse it.
type Config struct {
	CfgType CfgType
	Attrs   []ConfigAttr
}

// ConfigAttr is one configuration attribute (RFC 7296 §3.15.1).
type ConfigAttr struct {
	Type  uint16 // 15 bits
	Value []byte
}

// Type returns PayloadCP.
func (*Config) Type() PayloadType { return PayloadCP }

func (p *Config) appendBody(b []byte) []byte {
	b = append(b, byte(p.CfgType), 0, 0, 0)
	for _, a := range p.Attrs {
		b = append(b, byte(a.Type>>8)&0x7f, byte(a.Type), byte(len(a.Value)>>8), byte(len(a.Value)))
		b = append(b, a.Value...)
	}
	return b
}

func decodeConfig(b []byte) (*Config, error) {
	if len(b) < 4 {
		return nil, fmt.Errorf("CP payload: %w", ErrShort)
	}
	c := &Config{CfgType: CfgType(b[0])}
	b = b[4:]
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, fmt.Errorf("CP attribute: %w", ErrShort)
		}
		t, l := binary.BigEndian.Uint16(b)&0x7fff, int(binary.BigEndian.Uint16(b[2:]))
		if 4+l > len(b) {
			return nil, fmt.Errorf("CP attribute %d length %d: %w", t, l, ErrLength)
		}
		c.Attrs = append(c.Attrs, ConfigAttr{Type: t, Value: clone(b[4 : 4+l])})
		b = b[4+l:]
	}
	return c, nil
}

// ---------------------------------------------------------------- SK, SKF

// Encrypted is the Encrypted payload SK (RFC 7296 §3.14). Data is
// IV | ciphertext | ICV; Inner is the type of the first inner payload
// (the Next Payload field of the SK header).
type Encrypted struct {
	Inner PayloadType
	Data  []byte
}

// Type returns PayloadSK.
func (*Encrypted) Type() PayloadType { return PayloadSK }

func (p *Encrypted) appendBody(b []byte) []byte { return append(b, p.Data...) }

// Fragment is the Encrypted Fragment payload SKF (RFC 7383 §2.5). Inner is
// the first inner payload type in fragment 1 and 0 in the others.
type Fragment struct {
	Inner  PayloadType
	Number uint16
	Total  uint16
	Data   []byte // IV | ciphertext | ICV
}

// FragmentHeaderLen is the SKF header after the generic header: Fragment
// Number and Total Fragments.
const FragmentHeaderLen = 4

// Type returns PayloadSKF.
func (*Fragment) Type() PayloadType { return PayloadSKF }

func (p *Fragment) appendBody(b []byte) []byte {
	b = append(b, byte(p.Number>>8), byte(p.Number), byte(p.Total>>8), byte(p.Total))
	return append(b, p.Data...)
}

func decodeFragment(b []byte) (*Fragment, error) {
	if len(b) < FragmentHeaderLen {
		return nil, fmt.Errorf("SKF payload: %w", ErrShort)
	}
	f := &Fragment{Number: binary.BigEndian.Uint16(b), Total: binary.BigEndian.Uint16(b[2:]), Data: clone(b[4:])}
	if f.Number == 0 || f.Total == 0 || f.Number > f.Total {
		return nil, fmt.Errorf("SKF fragment %d of %d: %w", f.Number, f.Total, ErrSyntax)
	}
	return f, nil
}

// ---------------------------------------------------------------- Unknown

// Unknown is a payload of a type this package does not decode (for
// example EAP). Critical is the C bit of its generic header.
type Unknown struct {
	PType    PayloadType
	Critical bool
	Body     []byte
}

// Type returns the payload's type.
func (p *Unknown) Type() PayloadType { return p.PType }

func (p *Unknown) appendBody(b []byte) []byte { return append(b, p.Body...) }
