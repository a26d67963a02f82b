package ike

import (
	"fmt"
	"strings"

	"github.com/havpn/havpn/internal/ike/ikecrypto"
	"github.com/havpn/havpn/internal/ike/wire"
)

// Proposal is one set of algorithms, each transform type with one value.
// For an IKE SA, Encr, PRF and DH are required and Integ is required
// unless Encr is an AEAD cipher. For an ESP child SA, Encr is required
// (only the AEAD ciphers of the dataplane), DH is the PFS group (0 = no
// PFS) and ESN selects extended sequence numbers.
type Proposal struct {
	Encr    uint16 // wire.Encr*
	KeyBits uint16 // AES key size; 0 for ChaCha20-Poly1305
	Integ   uint16 // wire.Integ*; 0 with AEAD
	PRF     uint16 // wire.PRF*; IKE only
	DH      uint16 // wire.DH*; 0 = none
	ESN     bool   // ESP only
}

// DefaultIKEProposals are the IKE proposals used when the configuration
// lists none, most preferred first (X25519 first: about four times cheaper
// than ECP-384 per setup, see BenchmarkIKESASetup).
func DefaultIKEProposals() []string {
	return []string{
		"aes256gcm16-prfsha384-x25519",
		"aes128gcm16-prfsha256-x25519",
		"aes256gcm16-prfsha384-ecp384",
		"aes256-sha256-prfsha256-ecp256",
	}
}

// DefaultESPProposals are the ESP proposals used when the configuration
// lists none: the dataplane's AEAD ciphers, with PFS.
func DefaultESPProposals() []string {
	return []string{
		"aes256gcm16-x25519",
		"aes128gcm16-x25519",
		"chacha20poly1305-x25519",
	}
}

// DefaultProposals returns the default IKE and ESP proposals, parsed.
func DefaultProposals() (ikeProps, espProps []Proposal) {
	for _, s := range DefaultIKEProposals() {
		p, err := ParseProposal(s, true)
		if err != nil {
			panic(err)
		}
		ikeProps = append(ikeProps, p)
	}
	for _, s := range DefaultESPProposals() {
		p, err := ParseProposal(s, false)
		if err != nil {
			panic(err)
		}
		espProps = append(espProps, p)
	}
	return ikeProps, espProps
}

// ParseProposal parses a proposal in strongSwan's notation, for example
// "aes128gcm16-prfsha256-x25519" (IKE) or "aes256gcm16-ecp384-esn" (ESP).
// Tokens: aes128gcm16 aes256gcm16 (aes128gcm aes256gcm), chacha20poly1305,
// aes128 aes256 (CBC, IKE only); sha256 sha384 sha512 (integrity, CBC
// only); prfsha256 prfsha384 prfsha512; ecp256 ecp384 x25519
// (curve25519); esn noesn. Weak algorithms (3des, sha1, md5, modp1024,
// modp2048, gcm with 8/12-byte ICVs, ...) are refused with ErrProposal.
func ParseProposal(s string, ike bool) (Proposal, error) {
	var p Proposal
	seen := map[string]bool{}
	set := func(kind string) error {
		if seen[kind] {
			return fmt.Errorf("proposal %q: two %s algorithms (list alternatives as separate proposals): %w", s, kind, ErrProposal)
		}
		seen[kind] = true
		return nil
	}
	for _, tok := range strings.Split(strings.ToLower(strings.TrimSpace(s)), "-") {
		var err error
		switch tok {
		case "aes128gcm16", "aes128gcm", "aes256gcm16", "aes256gcm":
			err = set("encryption")
			p.Encr, p.KeyBits = wire.EncrAESGCM16, 128
			if strings.HasPrefix(tok, "aes256") {
				p.KeyBits = 256
			}
		case "chacha20poly1305":
			err = set("encryption")
			p.Encr, p.KeyBits = wire.EncrChaCha20Poly1305, 0
		case "aes128", "aes256":
			if !ike {
				return p, fmt.Errorf("proposal %q: %s: the dataplane supports only AEAD ciphers for ESP: %w", s, tok, ErrProposal)
			}
			err = set("encryption")
			p.Encr, p.KeyBits = wire.EncrAESCBC, 128
			if tok == "aes256" {
				p.KeyBits = 256
			}
		case "sha256", "sha384", "sha512":
			err = set("integrity")
			p.Integ = map[string]uint16{"sha256": wire.IntegHMACSHA256128, "sha384": wire.IntegHMACSHA384192, "sha512": wire.IntegHMACSHA512256}[tok]
		case "prfsha256", "prfsha384", "prfsha512":
			if !ike {
				return p, fmt.Errorf("proposal %q: %s in an ESP proposal: %w", s, tok, ErrProposal)
			}
			err = set("PRF")
			p.PRF = map[string]uint16{"prfsha256": wire.PRFHMACSHA2256, "prfsha384": wire.PRFHMACSHA2384, "prfsha512": wire.PRFHMACSHA2512}[tok]
		case "ecp256", "ecp384", "x25519", "curve25519":
			err = set("key exchange")
			p.DH = map[string]uint16{"ecp256": wire.DHECP256, "ecp384": wire.DHECP384, "x25519": wire.DHCurve25519, "curve25519": wire.DHCurve25519}[tok]
		case "esn", "noesn":
			if ike {
				return p, fmt.Errorf("proposal %q: %s in an IKE proposal: %w", s, tok, ErrProposal)
			}
			err = set("ESN")
			p.ESN = tok == "esn"
		case "":
			return p, fmt.Errorf("proposal %q: empty algorithm: %w", s, ErrProposal)
		default:
			return p, fmt.Errorf("proposal %q: %q is weak or not supported: %w", s, tok, ErrProposal)
		}
		if err != nil {
			return p, err
		}
	}
	if p.Encr == 0 {
		return p, fmt.Errorf("proposal %q: no encryption algorithm: %w", s, ErrProposal)
	}
	aead := ikecrypto.IsAEAD(p.Encr)
	if aead && p.Integ != 0 {
		return p, fmt.Errorf("proposal %q: integrity algorithm with an AEAD cipher: %w", s, ErrProposal)
	}
	if ike {
		if !aead && p.Integ == 0 {
			return p, fmt.Errorf("proposal %q: AES-CBC needs an integrity algorithm: %w", s, ErrProposal)
		}
		if p.PRF == 0 {
			return p, fmt.Errorf("proposal %q: no PRF (prfsha256, prfsha384, prfsha512): %w", s, ErrProposal)
		}
		if p.DH == 0 {
			return p, fmt.Errorf("proposal %q: no key exchange group (ecp256, ecp384, x25519): %w", s, ErrProposal)
		}
	} else if p.Integ != 0 {
		return p, fmt.Errorf("proposal %q: integrity algorithm in an ESP proposal: %w", s, ErrProposal)
	}
	return p, nil
}

// ParseProposals parses a list; an empty list yields the defaults.
func ParseProposals(ss []string, ike bool) ([]Proposal, error) {
	if len(ss) == 0 {
		i, e := DefaultProposals()
		if ike {
			return i, nil
		}
		return e, nil
	}
	var out []Proposal
	for _, s := range ss {
		p, err := ParseProposal(s, ike)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// String returns the proposal in strongSwan notation.
func (p Proposal) String() string {
	var parts []string
	switch p.Encr {
	case wire.EncrAESGCM16:
		parts = append(parts, fmt.Sprintf("aes%dgcm16", p.KeyBits))
	case wire.EncrChaCha20Poly1305:
		parts = append(parts, "chacha20poly1305")
	case wire.EncrAESCBC:
		parts = append(parts, fmt.Sprintf("aes%d", p.KeyBits))
	default:
		parts = append(parts, fmt.Sprintf("encr%d", p.Encr))
	}
	switch p.Integ {
	case 0:
	case wire.IntegHMACSHA256128:
		parts = append(parts, "sha256")
	case wire.IntegHMACSHA384192:
		parts = append(parts, "sha384")
	case wire.IntegHMACSHA512256:
		parts = append(parts, "sha512")
	default:
		parts = append(parts, fmt.Sprintf("integ%d", p.Integ))
	}
	switch p.PRF {
	case 0:
	case wire.PRFHMACSHA2256:
		parts = append(parts, "prfsha256")
	case wire.PRFHMACSHA2384:
		parts = append(parts, "prfsha384")
	case wire.PRFHMACSHA2512:
		parts = append(parts, "prfsha512")
	default:
		parts = append(parts, fmt.Sprintf("prf%d", p.PRF))
	}
	switch p.DH {
	case 0:
	case wire.DHECP256:
		parts = append(parts, "ecp256")
	case wire.DHECP384:
		parts = append(parts, "ecp384")
	case wire.DHCurve25519:
		parts = append(parts, "x25519")
	default:
		parts = append(parts, fmt.Sprintf("dh%d", p.DH))
	}
	if p.ESN {
		parts = append(parts, "esn")
	}
	return strings.Join(parts, "-")
}

// ESPCipher returns the dataplane cipher name of an ESP proposal
// ("aes-gcm-128", "aes-gcm-256", "chacha20-poly1305").
func (p Proposal) ESPCipher() string {
	switch {
	case p.Encr == wire.EncrAESGCM16 && p.KeyBits == 128:
		return "aes-gcm-128"
	case p.Encr == wire.EncrAESGCM16 && p.KeyBits == 256:
		return "aes-gcm-256"
	case p.Encr == wire.EncrChaCha20Poly1305:
		return "chacha20-poly1305"
	}
	return ""
}

// toWire returns the proposal as a wire proposal with number num.
func (p Proposal) toWire(num uint8, proto wire.ProtocolID, spi []byte, withDH bool) wire.Proposal {
	w := wire.Proposal{Num: num, Protocol: proto, SPI: spi}
	w.Transforms = append(w.Transforms, wire.NewTransform(wire.TransformENCR, p.Encr, p.KeyBits))
	if p.PRF != 0 {
		w.Transforms = append(w.Transforms, wire.NewTransform(wire.TransformPRF, p.PRF, 0))
	}
	if p.Integ != 0 {
		w.Transforms = append(w.Transforms, wire.NewTransform(wire.TransformINTEG, p.Integ, 0))
	}
	if withDH && p.DH != 0 {
		w.Transforms = append(w.Transforms, wire.NewTransform(wire.TransformDH, p.DH, 0))
	}
	if proto == wire.ProtoESP {
		esn := wire.ESNNo
		if p.ESN {
			esn = wire.ESNYes
		}
		w.Transforms = append(w.Transforms, wire.NewTransform(wire.TransformESN, esn, 0))
	}
	return w
}

// saPayload builds an SA payload offering ps (numbered from 1).
func saPayload(ps []Proposal, proto wire.ProtocolID, spi []byte, withDH bool) *wire.SA {
	sa := &wire.SA{}
	for i, p := range ps {
		sa.Proposals = append(sa.Proposals, p.toWire(uint8(i+1), proto, spi, withDH))
	}
	return sa
}

// offers reports whether wire proposal w (which may list alternatives per
// type) contains every transform of p. With ignoreDH the key exchange
// transforms are not compared (child SA of IKE_AUTH, RFC 7296 §1.2).
func (p Proposal) offeredBy(w wire.Proposal, ignoreDH bool) bool {
	has := func(t wire.TransformType, id uint16, keyBits uint16) bool {
		for _, tr := range w.Transforms {
			if tr.Type != t || tr.ID != id {
				continue
			}
			kl, ok := tr.KeyLength()
			if keyBits != 0 && (!ok || kl != keyBits) || keyBits == 0 && ok {
				continue
			}
			if len(tr.Attrs) > 1 || len(tr.Attrs) == 1 && !ok {
				continue // unknown attribute: transform must be ignored (§3.3.6)
			}
			return true
		}
		return false
	}
	none := func(t wire.TransformType, noneID uint16) bool {
		for _, tr := range w.Transforms {
			if tr.Type == t && tr.ID != noneID {
				// present with a real value: acceptable only if NONE is also offered
				return has(t, noneID, 0)
			}
		}
		return true
	}
	if !has(wire.TransformENCR, p.Encr, p.KeyBits) {
		return false
	}
	if p.Integ != 0 && !has(wire.TransformINTEG, p.Integ, 0) || p.Integ == 0 && !none(wire.TransformINTEG, wire.IntegNone) {
		return false
	}
	if w.Protocol == wire.ProtoIKE && !has(wire.TransformPRF, p.PRF, 0) {
		return false
	}
	if !ignoreDH {
		if p.DH != 0 && !has(wire.TransformDH, p.DH, 0) || p.DH == 0 && !none(wire.TransformDH, wire.DHNone) {
			return false
		}
	}
	if w.Protocol == wire.ProtoESP {
		esn := wire.ESNNo
		if p.ESN {
			esn = wire.ESNYes
		}
		if !has(wire.TransformESN, esn, 0) && !(esn == wire.ESNNo && !hasType(w, wire.TransformESN)) {
			return false
		}
	}
	return true
}

func hasType(w wire.Proposal, t wire.TransformType) bool {
	for _, tr := range w.Transforms {
		if tr.Type == t {
			return true
		}
	}
	return false
}

// selectProposal is the responder's choice (RFC 7296 §2.7): the first of
// our proposals, in our order of preference, that one of the peer's
// proposals of protocol proto offers. It returns our proposal and the
// peer's proposal it matched (for its number and SPI).
func selectProposal(ours []Proposal, sa *wire.SA, proto wire.ProtocolID, ignoreDH bool) (Proposal, wire.Proposal, bool) {
	for _, p := range ours {
		for _, w := range sa.Proposals {
			if w.Protocol == proto && p.offeredBy(w, ignoreDH) {
				return p, w, true
			}
		}
	}
	return Proposal{}, wire.Proposal{}, false
}

// selectProposalKE is selectProposal preferring, among acceptable
// proposals, one whose key exchange group is the one the peer already sent
// a KE payload for (saves the INVALID_KE_PAYLOAD round trip, RFC 7296
// §1.2).
func selectProposalKE(ours []Proposal, sa *wire.SA, proto wire.ProtocolID, group uint16) (Proposal, wire.Proposal, bool) {
	var same []Proposal
	for _, p := range ours {
		if p.DH == group {
			same = append(same, p)
		}
	}
	if p, w, ok := selectProposal(same, sa, proto, false); ok {
		return p, w, true
	}
	return selectProposal(ours, sa, proto, false)
}

// acceptChoice checks the responder's answer (RFC 7296 §2.7): exactly one
// proposal, with one transform per type, equal to one we offered.
func acceptChoice(ours []Proposal, sa *wire.SA, proto wire.ProtocolID, withDH bool) (Proposal, wire.Proposal, bool) {
	if sa == nil || len(sa.Proposals) != 1 {
		return Proposal{}, wire.Proposal{}, false
	}
	w := sa.Proposals[0]
	if w.Protocol != proto || w.Num == 0 || int(w.Num) > len(ours) {
		return Proposal{}, wire.Proposal{}, false
	}
	types := map[wire.TransformType]int{}
	for _, t := range w.Transforms {
		types[t.Type]++
		if types[t.Type] > 1 {
			return Proposal{}, wire.Proposal{}, false
		}
	}
	p := ours[w.Num-1]
	if !withDH {
		p.DH = 0
	}
	if !p.offeredBy(w, !withDH) {
		return Proposal{}, wire.Proposal{}, false
	}
	return p, w, true
}
