package wire

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func seedMessages(tb testing.TB) [][]byte {
	tb.Helper()
	var out [][]byte
	for _, ps := range [][]Payload{
		allPayloads(),
		{&Encrypted{Inner: PayloadIDi, Data: bytes.Repeat([]byte{3}, 40)}},
		{&Fragment{Inner: PayloadIDi, Number: 1, Total: 2, Data: bytes.Repeat([]byte{3}, 40)}},
		nil,
	} {
		b, err := (&Message{Header: Header{SPIi: 1, SPIr: 2, Exchange: IKEAuth, MessageID: 1}, Payloads: ps}).Encode()
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// FuzzDecode checks that Decode never panics, that every decoded message
// re-encodes to bytes that decode to the same payloads, and that the
// re-encoding is stable.
func FuzzDecode(f *testing.F) {
	for _, s := range seedMessages(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			return
		}
		if m.EncOffset >= 0 && (m.EncOffset < HeaderLen || m.EncOffset+genericHeaderLen > len(m.Raw)) {
			t.Fatalf("EncOffset %d outside message of %d bytes", m.EncOffset, len(m.Raw))
		}
		enc, err := m.Encode()
		if err != nil {
			// A decoded message always fits: Encode can only fail on length.
			t.Fatalf("re-encoding a decoded message: %v", err)
		}
		m2, err := Decode(enc)
		if err != nil {
			t.Fatalf("decoding re-encoded message: %v\n%s", err, hex.Dump(enc))
		}
		if diff := cmp.Diff(m.Payloads, m2.Payloads, cmpOpts...); diff != "" {
			t.Fatalf("round trip differs:\n%s", diff)
		}
		enc2, err := m2.Encode()
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("unstable encoding: %v", err)
		}
	})
}

// FuzzDecodePayloads fuzzes the inner payload chain decoder used on
// decrypted SK content.
func FuzzDecodePayloads(f *testing.F) {
	inner, first, err := AppendPayloads(nil, allPayloads())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(byte(first), inner)
	f.Add(byte(PayloadNotify), []byte{0, 0, 0, 8, 0, 0, 0x40, 0})
	f.Fuzz(func(t *testing.T, first byte, b []byte) {
		ps, err := DecodePayloads(PayloadType(first), b)
		if err != nil {
			return
		}
		enc, first2, err := AppendPayloads(nil, ps)
		if err != nil {
			t.Fatal(err)
		}
		ps2, err := DecodePayloads(first2, enc)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(ps, ps2, cmpOpts...); diff != "" {
			t.Fatalf("round trip differs:\n%s", diff)
		}
	})
}

// fuzzBody is the shared body of the per-payload fuzz targets: decode,
// re-encode, decode again; the two decodings and the two encodings must
// agree.
func fuzzBody(f *testing.F, typ PayloadType) {
	for _, p := range allPayloads() {
		if p.Type() == typ {
			f.Add(p.appendBody(nil))
		}
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodeBody(typ, false, b)
		if err != nil {
			return
		}
		if p.Type() != typ {
			t.Fatalf("decoded %s as %s", typ, p.Type())
		}
		enc := p.appendBody(nil)
		p2, err := decodeBody(typ, false, enc)
		if err != nil {
			t.Fatalf("decoding re-encoded %s: %v\n%s", typ, err, hex.Dump(enc))
		}
		if diff := cmp.Diff(p, p2, cmpOpts...); diff != "" {
			t.Fatalf("%s round trip differs:\n%s", typ, diff)
		}
		if enc2 := p2.appendBody(nil); !bytes.Equal(enc, enc2) {
			t.Fatalf("%s unstable encoding", typ)
		}
	})
}

func FuzzSA(f *testing.F)        { fuzzBody(f, PayloadSA) }
func FuzzKE(f *testing.F)        { fuzzBody(f, PayloadKE) }
func FuzzNonce(f *testing.F)     { fuzzBody(f, PayloadNonce) }
func FuzzIDi(f *testing.F)       { fuzzBody(f, PayloadIDi) }
func FuzzIDr(f *testing.F)       { fuzzBody(f, PayloadIDr) }
func FuzzCert(f *testing.F)      { fuzzBody(f, PayloadCERT) }
func FuzzCertReq(f *testing.F)   { fuzzBody(f, PayloadCERTREQ) }
func FuzzAuth(f *testing.F)      { fuzzBody(f, PayloadAUTH) }
func FuzzNotify(f *testing.F)    { fuzzBody(f, PayloadNotify) }
func FuzzDelete(f *testing.F)    { fuzzBody(f, PayloadDelete) }
func FuzzVendor(f *testing.F)    { fuzzBody(f, PayloadVendor) }
func FuzzTSi(f *testing.F)       { fuzzBody(f, PayloadTSi) }
func FuzzTSr(f *testing.F)       { fuzzBody(f, PayloadTSr) }
func FuzzConfig(f *testing.F)    { fuzzBody(f, PayloadCP) }
func FuzzEncrypted(f *testing.F) { fuzzBody(f, PayloadSK) }
func FuzzFragment(f *testing.F) {
	f.Add([]byte{0, 1, 0, 2, 9, 9, 9})
	fuzzBody(f, PayloadSKF)
}
func FuzzUnknown(f *testing.F) { fuzzBody(f, PayloadEAP) }
