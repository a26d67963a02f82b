package ikecrypto

import "encoding/binary"

// SKEYSEED returns prf(Ni | Nr, g^ir) for a new IKE SA (RFC 7296 §2.14).
func SKEYSEED(prf PRF, ni, nr, gir []byte) []byte {
	key := make([]byte, 0, len(ni)+len(nr))
	key = append(append(key, ni...), nr...)
	return prf.Sum(key, gir)
}

// RekeySKEYSEED returns prf(SK_d (old), g^ir (new) | Ni | Nr) for an IKE SA
// created by rekeying (RFC 7296 §2.18).
func RekeySKEYSEED(prf PRF, oldSKd, gir, ni, nr []byte) []byte {
	return prf.Sum(oldSKd, gir, ni, nr)
}

// IKEKeys are the keys of one IKE SA (RFC 7296 §2.14).
type IKEKeys struct {
	D, Ai, Ar, Ei, Er, Pi, Pr []byte
}

// DeriveIKEKeys splits prf+(SKEYSEED, Ni | Nr | SPIi | SPIr) into
// SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr. SK_d, SK_pi and SK_pr
// have the PRF's size; integLen is 0 for AEAD ciphers; encLen includes the
// salt of AEAD ciphers (RFC 5282 §7.1).
func DeriveIKEKeys(prf PRF, skeyseed, ni, nr []byte, spii, spir uint64, integLen, encLen int) IKEKeys {
	seed := make([]byte, 0, len(ni)+len(nr)+16)
	seed = append(append(seed, ni...), nr...)
	seed = binary.BigEndian.AppendUint64(seed, spii)
	seed = binary.BigEndian.AppendUint64(seed, spir)
	n := prf.Size()
	km := prf.Plus(skeyseed, seed, 3*n+2*integLen+2*encLen)
	var k IKEKeys
	take := func(l int) []byte {
		v := km[:l:l]
		km = km[l:]
		return v
	}
	k.D = take(n)
	k.Ai = take(integLen)
	k.Ar = take(integLen)
	k.Ei = take(encLen)
	k.Er = take(encLen)
	k.Pi = take(n)
	k.Pr = take(n)
	return k
}

// ChildKeys are the keys of one child SA pair (RFC 7296 §2.17). For AEAD
// ciphers the integrity keys are empty and the encryption keys include the
// 4-byte salt (RFC 4106 §8.1, RFC 7634 §2).
type ChildKeys struct {
	// EncI, IntegI protect traffic from the IKE SA's initiator of the
	// exchange that created the child to its responder.
	EncI, IntegI []byte
	// EncR, IntegR protect traffic in the other direction.
	EncR, IntegR []byte
}

// DeriveChildKeys returns KEYMAT = prf+(SK_d, [g^ir (new) |] Ni | Nr) split
// as encryption then integrity key for initiator-to-responder, then the same
// for responder-to-initiator (RFC 7296 §2.17). gir is nil without PFS (and
// for the child SA of IKE_AUTH); ni and nr are the nonces of the exchange
// that created the child (IKE_SA_INIT's for the first child).
func DeriveChildKeys(prf PRF, skd, gir, ni, nr []byte, encLen, integLen int) ChildKeys {
	seed := make([]byte, 0, len(gir)+len(ni)+len(nr))
	seed = append(append(append(seed, gir...), ni...), nr...)
	km := prf.Plus(skd, seed, 2*(encLen+integLen))
	take := func(l int) []byte {
		v := km[:l:l]
		km = km[l:]
		return v
	}
	var k ChildKeys
	k.EncI = take(encLen)
	k.IntegI = take(integLen)
	k.EncR = take(encLen)
	k.IntegR = take(integLen)
	return k
}
