package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var cmpOpts = []cmp.Option{cmpopts.EquateEmpty(), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })}

// allPayloads has one payload of every type the package encodes.
func allPayloads() []Payload {
	return []Payload{
		&SA{Proposals: []Proposal{
			{Num: 1, Protocol: ProtoIKE, Transforms: []Transform{
				NewTransform(TransformENCR, EncrAESGCM16, 256),
				NewTransform(TransformPRF, PRFHMACSHA2384, 0),
				NewTransform(TransformDH, DHECP384, 0),
			}},
			{Num: 2, Protocol: ProtoESP, SPI: []byte{1, 2, 3, 4}, Transforms: []Transform{
				NewTransform(TransformENCR, EncrAESCBC, 128),
				NewTransform(TransformINTEG, IntegHMACSHA256128, 0),
				NewTransform(TransformESN, ESNNo, 0),
				{Type: TransformENCR, ID: 1024, Attrs: []Attribute{{Type: 99, Value: []byte("tlv")}}},
			}},
		}},
		&KE{Group: DHCurve25519, Data: bytes.Repeat([]byte{7}, 32)},
		&Nonce{Data: bytes.Repeat([]byte{9}, 32)},
		&ID{IDType: IDFQDN, Data: []byte("site1.example.net")},
		&ID{Responder: true, IDType: IDIPv4, Data: []byte{198, 51, 100, 1}},
		&Cert{Encoding: CertX509Signature, Data: []byte{0x30, 0x82}},
		&CertReq{Encoding: CertX509Signature, Data: bytes.Repeat([]byte{1}, 20)},
		&Auth{Method: AuthDigitalSig, Data: []byte{7, 0x30, 5, 6, 3, 0x2b, 0x65, 0x70, 1, 2}},
		&Notify{NotifyType: NATDetectionSourceIP, Data: bytes.Repeat([]byte{0xaa}, 20)},
		&Notify{Protocol: ProtoESP, SPI: []byte{0, 0, 1, 0}, NotifyType: RekeySA},
		&Delete{Protocol: ProtoESP, SPISize: 4, SPIs: [][]byte{{0, 0, 1, 0}, {0, 0, 2, 0}}},
		&Delete{Protocol: ProtoIKE},
		&Vendor{Data: []byte("havpn")},
		&TS{Selectors: []Selector{
			{Proto: 47, EndPort: 65535, Start: netip.MustParseAddr("198.51.100.1"), End: netip.MustParseAddr("198.51.100.1")},
			{StartPort: 0, EndPort: 65535, Start: netip.MustParseAddr("2001:db8::"), End: netip.MustParseAddr("2001:db8::ffff")},
		}},
		&TS{Responder: true, Selectors: []Selector{
			{Proto: 47, EndPort: 65535, Start: netip.MustParseAddr("203.0.113.1"), End: netip.MustParseAddr("203.0.113.1")},
		}},
		&Config{CfgType: CfgRequest, Attrs: []ConfigAttr{{Type: 1}, {Type: 3, Value: []byte{1, 2, 3, 4}}}},
		&Unknown{PType: PayloadEAP, Critical: true, Body: []byte{1, 2, 3, 4}},
	}
}

func TestMessageRoundTrip(t *testing.T) {
	tests := []struct {
		name     string
		payloads []Payload
	}{
		{"empty", nil},
		{"all payload types", allPayloads()},
		{"encrypted last", []Payload{&Notify{NotifyType: Cookie, Data: []byte{1}}, &Encrypted{Inner: PayloadIDi, Data: bytes.Repeat([]byte{3}, 40)}}},
		{"fragment", []Payload{&Fragment{Inner: PayloadIDi, Number: 1, Total: 3, Data: bytes.Repeat([]byte{4}, 40)}}},
		{"fragment not first", []Payload{&Fragment{Number: 3, Total: 3, Data: bytes.Repeat([]byte{4}, 40)}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := &Message{Header: Header{SPIi: 0x0102030405060708, SPIr: 0x1112131415161718, Exchange: IKEAuth,
				Flags: FlagInitiator, MessageID: 1}, Payloads: tc.payloads}
			b, err := m.Encode()
			if err != nil {
				t.Fatal(err)
			}
			got, err := Decode(b)
			if err != nil {
				t.Fatalf("Decode: %v\n%s", err, hex.Dump(b))
			}
			if got.Header.Length != uint32(len(b)) || got.Header.Version != Version2 {
				t.Errorf("header %+v, encoded %d bytes", got.Header, len(b))
			}
			if diff := cmp.Diff(tc.payloads, got.Payloads, cmpOpts...); diff != "" {
				t.Errorf("payloads differ (-want +got):\n%s", diff)
			}
			wantEnc := -1
			if n := len(tc.payloads); n > 0 {
				if _, ok := tc.payloads[n-1].(*Encrypted); ok {
					wantEnc = len(b) - 4 - len(tc.payloads[n-1].(*Encrypted).Data)
				}
				if f, ok := tc.payloads[n-1].(*Fragment); ok {
					wantEnc = len(b) - 8 - len(f.Data)
				}
			}
			if got.EncOffset != wantEnc {
				t.Errorf("EncOffset = %d, want %d", got.EncOffset, wantEnc)
			}
			b2, err := got.Encode()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, b2) {
				t.Errorf("re-encoding differs:\n%s\n%s", hex.Dump(b), hex.Dump(b2))
			}
		})
	}
}

// TestKnownBytes checks the encoder against hand-assembled RFC 7296 bytes.
func TestKnownBytes(t *testing.T) {
	m := &Message{
		Header: Header{SPIi: 0x1122334455667788, Exchange: IKESAInit, Flags: FlagInitiator},
		Payloads: []Payload{
			&SA{Proposals: []Proposal{{Num: 1, Protocol: ProtoIKE, Transforms: []Transform{
				NewTransform(TransformENCR, EncrAESGCM16, 128),
				NewTransform(TransformPRF, PRFHMACSHA2256, 0),
				NewTransform(TransformDH, DHCurve25519, 0),
			}}}},
			&Notify{NotifyType: IKEv2FragmentationSupported},
		},
	}
	want := "1122334455667788" + "0000000000000000" + "21" + "20" + "22" + "08" + "00000000" + "0000004c" + // 28 + 40 + 8
		// SA: next N, len 4+8+12+8+8 = 40
		"29000028" + "00000024" + "01010003" +
		"0300000c" + "01000014" + "800e0080" +
		"03000008" + "02000005" +
		"00000008" + "0400001f" +
		// N(FRAG_SUP)
		"00000008" + "0000402e"
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(b); got != want {
		t.Fatalf("encoded\n got %s\nwant %s", got, want)
	}
}

func TestDecodeErrors(t *testing.T) {
	good, err := (&Message{Header: Header{SPIi: 1, Exchange: IKESAInit, Flags: FlagInitiator},
		Payloads: []Payload{&Nonce{Data: make([]byte, 16)}, &Vendor{Data: []byte{1}}}}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"short header", good[:27], ErrShort},
		{"version 1", mod(func(b []byte) []byte { b[17] = 0x10; return b }), ErrVersion},
		{"length field too big", mod(func(b []byte) []byte { b[27]++; return b }), ErrLength},
		{"datagram longer than length", append(append([]byte(nil), good...), 0), ErrLength},
		{"payload length past end", mod(func(b []byte) []byte { b[28+2+1] = 0xff; return b }), ErrLength},
		{"payload length below 4", mod(func(b []byte) []byte { b[28+3] = 3; return b }), ErrLength},
		{"nonce too short", mod(func(b []byte) []byte {
			// shrink the nonce by moving the vendor payload: re-encode instead
			b2, _ := (&Message{Header: Header{SPIi: 1, Exchange: IKESAInit}, Payloads: []Payload{&Nonce{Data: make([]byte, 15)}}}).Encode()
			return b2
		}), ErrLength},
		{"trailing bytes after chain", mod(func(b []byte) []byte {
			b[28] = 0 // nonce claims to be last, vendor bytes follow
			return b
		}), ErrLength},
		{"SK not last", func() []byte {
			b, _ := (&Message{Header: Header{SPIi: 1, Exchange: IKEAuth}, Payloads: []Payload{&Encrypted{Inner: PayloadIDi, Data: make([]byte, 20)}}}).Encode()
			b = append(b, 0, 0, 0, 4)
			b[27] += 4
			return b
		}(), ErrSyntax},
		{"fragment number 0", func() []byte {
			b, _ := (&Message{Header: Header{SPIi: 1, Exchange: IKEAuth}, Payloads: []Payload{&Fragment{Number: 0, Total: 1, Data: make([]byte, 20)}}}).Encode()
			return b
		}(), ErrSyntax},
		{"fragment number above total", func() []byte {
			b, _ := (&Message{Header: Header{SPIi: 1, Exchange: IKEAuth}, Payloads: []Payload{&Fragment{Number: 3, Total: 2, Data: make([]byte, 20)}}}).Encode()
			return b
		}(), ErrSyntax},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Decode error = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestPayloadDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		typ  PayloadType
		body string // hex
		want error
	}{
		{"SA empty", PayloadSA, "", ErrSyntax},
		{"SA proposal short", PayloadSA, "00000008010100", ErrShort},
		{"SA proposal length past end", PayloadSA, "0000000c01010000", ErrLength},
		{"SA last substruc 1", PayloadSA, "0100000801010000", ErrSyntax},
		{"SA more but none", PayloadSA, "0200000801010000", ErrSyntax},
		{"SA trailing after last", PayloadSA, "000000080101000000", ErrLength},
		{"SA SPI past end", PayloadSA, "0000000801010800", ErrShort},
		{"SA transform missing", PayloadSA, "0000000801010001", ErrShort},
		{"SA transform last wrong", PayloadSA, "00000010010100010300000801000014", ErrSyntax},
		{"SA transform attr short", PayloadSA, "0000000f01010001" + "0000000b01000014" + "800e00", ErrShort},
		{"SA transform TLV past end", PayloadSA, "0000001401010001" + "0000000c01000014" + "000e0009", ErrLength},
		{"SA bytes after transforms", PayloadSA, "0000000901010000" + "00", ErrLength},
		{"KE short", PayloadKE, "001f00", ErrShort},
		{"nonce 257", PayloadNonce, hexRepeat("00", 257), ErrLength},
		{"ID short", PayloadIDi, "02", ErrShort},
		{"AUTH short", PayloadAUTH, "0e0000", ErrShort},
		{"CERT empty", PayloadCERT, "", ErrShort},
		{"CERTREQ empty", PayloadCERTREQ, "", ErrShort},
		{"N short", PayloadNotify, "030440", ErrShort},
		{"N SPI past end", PayloadNotify, "03044009000001", ErrShort},
		{"D count mismatch", PayloadDelete, "03040002" + "00000100", ErrLength},
		{"D SPI size 0 with count", PayloadDelete, "03000001", ErrSyntax},
		{"TS short", PayloadTSi, "01", ErrShort},
		{"TS type 9", PayloadTSi, "01000000" + "09000010" + "0000ffff" + "0000000000000000", ErrSyntax},
		{"TS v4 wrong length", PayloadTSi, "01000000" + "07000011" + "0000ffff" + "000000000000000000", ErrLength},
		{"TS count above selectors", PayloadTSi, "02000000" + "07000010" + "0000ffff" + "0000000000000000", ErrShort},
		{"TS trailing", PayloadTSi, "01000000" + "07000010" + "0000ffff" + "0000000000000000" + "00", ErrLength},
		{"CP attr past end", PayloadCP, "01000000" + "00010004", ErrLength},
		{"CP attr short", PayloadCP, "01000000" + "0001", ErrShort},
		{"SKF short", PayloadSKF, "0001", ErrShort},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := hex.DecodeString(tc.body)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := decodeBody(tc.typ, false, b); !errors.Is(err, tc.want) {
				t.Fatalf("decode %s %s: error %v, want %v", tc.typ, tc.body, err, tc.want)
			}
		})
	}
}

func hexRepeat(s string, n int) string {
	var b bytes.Buffer
	for range n {
		b.WriteString(s)
	}
	return b.String()
}

func TestSKInsideSKRejected(t *testing.T) {
	inner, first, err := AppendPayloads(nil, []Payload{&Encrypted{Inner: PayloadNone, Data: []byte{1}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodePayloads(first, inner); !errors.Is(err, ErrSyntax) {
		t.Fatalf("DecodePayloads(SK) error %v, want ErrSyntax", err)
	}
}

func TestTransformKeyLength(t *testing.T) {
	tr := NewTransform(TransformENCR, EncrAESGCM16, 256)
	if kl, ok := tr.KeyLength(); !ok || kl != 256 {
		t.Fatalf("KeyLength = %d, %v", kl, ok)
	}
	if _, ok := NewTransform(TransformPRF, PRFHMACSHA2256, 0).KeyLength(); ok {
		t.Fatal("PRF has a key length")
	}
}
