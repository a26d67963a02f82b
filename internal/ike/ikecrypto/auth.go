package ikecrypto

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"io"
	"slices"

	"github.com/havpn/havpn/internal/ike/wire"
)

// SignedOctets returns the octets that the AUTH payload covers
// (RFC 7296 §2.15): the sender's IKE_SA_INIT message | the peer's nonce |
// prf(SK_p, ID payload body), where SK_p is SK_pi for the initiator and
// SK_pr for the responder, and idBody is the sender's ID payload without
// its generic header.
func SignedOctets(prf PRF, initMessage, peerNonce, skp, idBody []byte) []byte {
	mac := prf.Sum(skp, idBody)
	out := make([]byte, 0, len(initMessage)+len(peerNonce)+len(mac))
	return append(append(append(out, initMessage...), peerNonce...), mac...)
}

// keyPad is the constant of RFC 7296 §2.15.
const keyPad = "Key Pad for IKEv2"

// PSKAuth returns prf(prf(psk, "Key Pad for IKEv2"), octets), the AUTH data
// of method SHARED_KEY_MIC (RFC 7296 §2.15).
func PSKAuth(prf PRF, psk, octets []byte) []byte {
	return prf.Sum(prf.Sum(psk, []byte(keyPad)), octets)
}

// VerifyPSK compares AUTH data with the expected PSK MIC in constant time.
func VerifyPSK(prf PRF, psk, octets, data []byte) error {
	if !hmac.Equal(PSKAuth(prf, psk, octets), data) {
		return fmt.Errorf("shared key MIC: %w", ErrSignature)
	}
	return nil
}

// Object identifiers of RFC 7427 signature algorithms.
var (
	oidRSAPSS        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 10}
	oidSHA256RSA     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	oidSHA384RSA     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 12}
	oidSHA512RSA     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 13}
	oidMGF1          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 8}
	oidSHA256        = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384        = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512        = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
	oidECDSASHA256   = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidECDSASHA384   = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}
	oidECDSASHA512   = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}
	oidEd25519       = asn1.ObjectIdentifier{1, 3, 101, 112}
	asn1NULL         = asn1.RawValue{Tag: asn1.TagNull}
	signatureHashIDs = map[crypto.Hash]uint16{crypto.SHA256: wire.HashSHA2256, crypto.SHA384: wire.HashSHA2384, crypto.SHA512: wire.HashSHA2512}
)

// pssParams is RSASSA-PSS-params (RFC 4055 §3.1).
type pssParams struct {
	Hash    pkix.AlgorithmIdentifier `asn1:"explicit,tag:0"`
	MGF     pkix.AlgorithmIdentifier `asn1:"explicit,tag:1"`
	SaltLen int                      `asn1:"explicit,tag:2,optional,default:20"`
	Trailer int                      `asn1:"explicit,tag:3,optional,default:1"`
}

func hashOID(h crypto.Hash) asn1.ObjectIdentifier {
	switch h {
	case crypto.SHA256:
		return oidSHA256
	case crypto.SHA384:
		return oidSHA384
	case crypto.SHA512:
		return oidSHA512
	}
	return nil
}

func hashFromOID(o asn1.ObjectIdentifier) crypto.Hash {
	switch {
	case o.Equal(oidSHA256):
		return crypto.SHA256
	case o.Equal(oidSHA384):
		return crypto.SHA384
	case o.Equal(oidSHA512):
		return crypto.SHA512
	}
	return 0
}

// SignatureHashes is what havpn announces in SIGNATURE_HASH_ALGORITHMS
// (RFC 7427 §4, RFC 8420 §2): SHA2-256/384/512 and Identity (Ed25519).
func SignatureHashes() []uint16 {
	return []uint16{wire.HashSHA2256, wire.HashSHA2384, wire.HashSHA2512, wire.HashIdentity}
}

// SignOptions tune Sign.
type SignOptions struct {
	// RSAPKCS1 selects RSASSA-PKCS1-v1_5 for RSA keys instead of the
	// default RSASSA-PSS (salt length = hash length).
	RSAPKCS1 bool
}

// Sign signs octets with key for an AUTH payload of method
// DIGITAL_SIGNATURE (RFC 7427 §3): the result is the one-octet length of
// the AlgorithmIdentifier, its DER, and the signature. peerHashes is what
// the peer announced in SIGNATURE_HASH_ALGORITHMS; the hash is chosen from
// it (SHA2-256 for RSA, the curve's hash for ECDSA, Identity for Ed25519).
func Sign(key crypto.Signer, octets []byte, peerHashes []uint16, opts SignOptions, rand io.Reader) ([]byte, error) {
	var algID []byte
	var sig []byte
	var err error
	switch pub := key.Public().(type) {
	case ed25519.PublicKey:
		if !slices.Contains(peerHashes, wire.HashIdentity) {
			return nil, fmt.Errorf("Ed25519 signature: peer does not accept the Identity hash: %w", ErrUnsupported)
		}
		algID, err = asn1.Marshal(pkix.AlgorithmIdentifier{Algorithm: oidEd25519})
		if err == nil {
			sig, err = key.Sign(rand, octets, crypto.Hash(0))
		}
	case *ecdsa.PublicKey:
		var h crypto.Hash
		var oid asn1.ObjectIdentifier
		switch pub.Curve {
		case elliptic.P256():
			h, oid = crypto.SHA256, oidECDSASHA256
		case elliptic.P384():
			h, oid = crypto.SHA384, oidECDSASHA384
		case elliptic.P521():
			h, oid = crypto.SHA512, oidECDSASHA512
		default:
			return nil, fmt.Errorf("ECDSA curve %s: %w", pub.Curve.Params().Name, ErrUnsupported)
		}
		if !slices.Contains(peerHashes, signatureHashIDs[h]) {
			return nil, fmt.Errorf("ECDSA signature: peer does not accept %s: %w", h, ErrUnsupported)
		}
		algID, err = asn1.Marshal(pkix.AlgorithmIdentifier{Algorithm: oid})
		if err == nil {
			d := digest(h, octets)
			sig, err = key.Sign(rand, d, h) // ASN.1 Ecdsa-Sig-Value, as RFC 7427 wants
		}
	case *rsa.PublicKey:
		h := crypto.SHA256
		for _, c := range []crypto.Hash{crypto.SHA256, crypto.SHA384, crypto.SHA512} {
			if slices.Contains(peerHashes, signatureHashIDs[c]) {
				h = c
				break
			}
		}
		if !slices.Contains(peerHashes, signatureHashIDs[h]) {
			return nil, fmt.Errorf("RSA signature: peer accepts no SHA-2 hash: %w", ErrUnsupported)
		}
		d := digest(h, octets)
		if opts.RSAPKCS1 {
			oid := map[crypto.Hash]asn1.ObjectIdentifier{crypto.SHA256: oidSHA256RSA, crypto.SHA384: oidSHA384RSA, crypto.SHA512: oidSHA512RSA}[h]
			algID, err = asn1.Marshal(pkix.AlgorithmIdentifier{Algorithm: oid, Parameters: asn1NULL})
			if err == nil {
				sig, err = key.Sign(rand, d, h)
			}
		} else {
			algID, err = pssAlgorithmID(h)
			if err == nil {
				sig, err = key.Sign(rand, d, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: h})
			}
		}
	default:
		return nil, fmt.Errorf("signing key %T: %w", pub, ErrUnsupported)
	}
	if err != nil {
		return nil, fmt.Errorf("signing AUTH: %w", err)
	}
	out := make([]byte, 0, 1+len(algID)+len(sig))
	out = append(append(append(out, byte(len(algID))), algID...), sig...)
	return out, nil
}

func pssAlgorithmID(h crypto.Hash) ([]byte, error) {
	hashAlg := pkix.AlgorithmIdentifier{Algorithm: hashOID(h), Parameters: asn1NULL}
	hb, err := asn1.Marshal(hashAlg)
	if err != nil {
		return nil, err
	}
	params, err := asn1.Marshal(pssParams{
		Hash:    hashAlg,
		MGF:     pkix.AlgorithmIdentifier{Algorithm: oidMGF1, Parameters: asn1.RawValue{FullBytes: hb}},
		SaltLen: h.Size(),
		Trailer: 1,
	})
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(pkix.AlgorithmIdentifier{Algorithm: oidRSAPSS, Parameters: asn1.RawValue{FullBytes: params}})
}

func digest(h crypto.Hash, b []byte) []byte {
	d := h.New()
	d.Write(b)
	return d.Sum(nil)
}

// Verify checks AUTH data of method DIGITAL_SIGNATURE (RFC 7427) over
// octets with the peer's public key. It accepts RSASSA-PSS and
// RSASSA-PKCS1-v1_5 with SHA2-256/384/512, ECDSA with SHA2 (DER
// signature), and Ed25519; anything with SHA-1 is refused. The algorithm
// must fit the key type.
func Verify(pub crypto.PublicKey, data, octets []byte) error {
	if len(data) < 1 || int(data[0])+1 > len(data) {
		return fmt.Errorf("AUTH data of %d bytes: %w", len(data), ErrSignature)
	}
	var alg pkix.AlgorithmIdentifier
	rest, err := asn1.Unmarshal(data[1:1+int(data[0])], &alg)
	if err != nil || len(rest) != 0 {
		return fmt.Errorf("AUTH AlgorithmIdentifier: %w", ErrSignature)
	}
	sig := data[1+int(data[0]):]
	switch o := alg.Algorithm; {
	case o.Equal(oidEd25519):
		k, ok := pub.(ed25519.PublicKey)
		if !ok {
			return fmt.Errorf("Ed25519 signature with a %T key: %w", pub, ErrSignature)
		}
		if !ed25519.Verify(k, octets, sig) {
			return fmt.Errorf("Ed25519 signature: %w", ErrSignature)
		}
		return nil
	case o.Equal(oidECDSASHA256), o.Equal(oidECDSASHA384), o.Equal(oidECDSASHA512):
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok {
			return fmt.Errorf("ECDSA signature with a %T key: %w", pub, ErrSignature)
		}
		h := map[string]crypto.Hash{oidECDSASHA256.String(): crypto.SHA256, oidECDSASHA384.String(): crypto.SHA384, oidECDSASHA512.String(): crypto.SHA512}[o.String()]
		if !ecdsa.VerifyASN1(k, digest(h, octets), sig) {
			return fmt.Errorf("ECDSA-%s signature: %w", h, ErrSignature)
		}
		return nil
	case o.Equal(oidSHA256RSA), o.Equal(oidSHA384RSA), o.Equal(oidSHA512RSA):
		k, ok := pub.(*rsa.PublicKey)
		if !ok {
			return fmt.Errorf("RSA signature with a %T key: %w", pub, ErrSignature)
		}
		h := map[string]crypto.Hash{oidSHA256RSA.String(): crypto.SHA256, oidSHA384RSA.String(): crypto.SHA384, oidSHA512RSA.String(): crypto.SHA512}[o.String()]
		if err := rsa.VerifyPKCS1v15(k, h, digest(h, octets), sig); err != nil {
			return fmt.Errorf("RSA PKCS#1 %s signature: %w", h, ErrSignature)
		}
		return nil
	case o.Equal(oidRSAPSS):
		k, ok := pub.(*rsa.PublicKey)
		if !ok {
			return fmt.Errorf("RSA-PSS signature with a %T key: %w", pub, ErrSignature)
		}
		var p pssParams
		if rest, err := asn1.Unmarshal(alg.Parameters.FullBytes, &p); err != nil || len(rest) != 0 {
			return fmt.Errorf("RSA-PSS parameters: %w", ErrSignature)
		}
		h := hashFromOID(p.Hash.Algorithm)
		var mgfHash pkix.AlgorithmIdentifier
		if _, err := asn1.Unmarshal(p.MGF.Parameters.FullBytes, &mgfHash); err != nil || !p.MGF.Algorithm.Equal(oidMGF1) ||
			hashFromOID(mgfHash.Algorithm) != h || h == 0 || p.Trailer != 1 || p.SaltLen < 0 {
			return fmt.Errorf("RSA-PSS parameters (hash, MGF1, trailer): %w", ErrUnsupported)
		}
		if err := rsa.VerifyPSS(k, h, digest(h, octets), sig, &rsa.PSSOptions{SaltLength: p.SaltLen, Hash: h}); err != nil {
			return fmt.Errorf("RSA-PSS %s signature: %w", h, ErrSignature)
		}
		return nil
	}
	return fmt.Errorf("AUTH signature algorithm %s: %w", alg.Algorithm, ErrUnsupported)
}
