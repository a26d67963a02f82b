package ikecrypto

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"testing"
)

// The vectors in testdata/*.json come from testdata/gen/gen.py, an
// independent Python implementation (stdlib hmac/hashlib and the
// cryptography module). Regenerate with: python3 testdata/gen/gen.py

type hexBytes []byte

func (h *hexBytes) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := hex.DecodeString(s)
	*h = v
	return err
}

func load(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func mustPRF(t *testing.T, id uint16) PRF {
	t.Helper()
	p, err := NewPRF(id)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func eq(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s:\n got %x\nwant %x", what, got, want)
	}
}

type kdfFile struct {
	PRFPlus []struct {
		PRF  uint16
		Key  hexBytes
		Seed hexBytes
		N    int
		Out  hexBytes
	} `json:"prf_plus"`
	IKE []struct {
		PRF      uint16
		Group    uint16
		IntegLen int `json:"integ_len"`
		EncLen   int `json:"enc_len"`
		Ni, Nr   hexBytes
		SPIi     hexBytes `json:"spii"`
		SPIr     hexBytes `json:"spir"`
		PrivI    hexBytes `json:"priv_i"`
		PrivR    hexBytes `json:"priv_r"`
		KEi      hexBytes `json:"ke_i"`
		KEr      hexBytes `json:"ke_r"`
		Gir      hexBytes
		SKEYSEED hexBytes `json:"skeyseed"`
		Keys     map[string]hexBytes
		Rekey    struct {
			Ni, Nr, Gir, SKEYSEED hexBytes
		}
		PSKAuth struct {
			Msg1   hexBytes
			IDBody hexBytes `json:"id_body"`
			PSK    hexBytes
			Octets hexBytes
			Auth   hexBytes
		} `json:"psk_auth"`
	}
	Child []struct {
		PRF      uint16
		EncLen   int      `json:"enc_len"`
		IntegLen int      `json:"integ_len"`
		SKd      hexBytes `json:"skd"`
		Ni, Nr   hexBytes
		Gir      hexBytes
		EncI     hexBytes `json:"enc_i"`
		IntegI   hexBytes `json:"integ_i"`
		EncR     hexBytes `json:"enc_r"`
		IntegR   hexBytes `json:"integ_r"`
	}
}

func TestPRFPlusVectors(t *testing.T) {
	var f kdfFile
	load(t, "kdf.json", &f)
	if len(f.PRFPlus) == 0 {
		t.Fatal("no vectors")
	}
	for _, v := range f.PRFPlus {
		t.Run(fmt.Sprintf("prf%d-n%d", v.PRF, v.N), func(t *testing.T) {
			eq(t, "prf+", mustPRF(t, v.PRF).Plus(v.Key, v.Seed, v.N), v.Out)
		})
	}
}

func TestIKEKeyDerivationVectors(t *testing.T) {
	var f kdfFile
	load(t, "kdf.json", &f)
	if len(f.IKE) == 0 {
		t.Fatal("no vectors")
	}
	for _, v := range f.IKE {
		t.Run(fmt.Sprintf("prf%d-group%d-integ%d", v.PRF, v.Group, v.IntegLen), func(t *testing.T) {
			prf := mustPRF(t, v.PRF)
			ki, err := NewKeyExchangeFromPrivate(v.Group, v.PrivI)
			if err != nil {
				t.Fatal(err)
			}
			kr, err := NewKeyExchangeFromPrivate(v.Group, v.PrivR)
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "KEi", ki.PublicKey(), v.KEi)
			eq(t, "KEr", kr.PublicKey(), v.KEr)
			gi, err := ki.SharedSecret(v.KEr)
			if err != nil {
				t.Fatal(err)
			}
			gr, err := kr.SharedSecret(v.KEi)
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "g^ir (initiator)", gi, v.Gir)
			eq(t, "g^ir (responder)", gr, v.Gir)
			seed := SKEYSEED(prf, v.Ni, v.Nr, gi)
			eq(t, "SKEYSEED", seed, v.SKEYSEED)
			k := DeriveIKEKeys(prf, seed, v.Ni, v.Nr, binary.BigEndian.Uint64(v.SPIi), binary.BigEndian.Uint64(v.SPIr), v.IntegLen, v.EncLen)
			for name, got := range map[string][]byte{"d": k.D, "ai": k.Ai, "ar": k.Ar, "ei": k.Ei, "er": k.Er, "pi": k.Pi, "pr": k.Pr} {
				eq(t, "SK_"+name, got, v.Keys[name])
			}
			eq(t, "rekey SKEYSEED", RekeySKEYSEED(prf, k.D, v.Rekey.Gir, v.Rekey.Ni, v.Rekey.Nr), v.Rekey.SKEYSEED)
			octets := SignedOctets(prf, v.PSKAuth.Msg1, v.Nr, k.Pi, v.PSKAuth.IDBody)
			eq(t, "signed octets", octets, v.PSKAuth.Octets)
			eq(t, "PSK AUTH", PSKAuth(prf, v.PSKAuth.PSK, octets), v.PSKAuth.Auth)
			if err := VerifyPSK(prf, v.PSKAuth.PSK, octets, v.PSKAuth.Auth); err != nil {
				t.Error(err)
			}
			if err := VerifyPSK(prf, []byte("wrong"), octets, v.PSKAuth.Auth); !errors.Is(err, ErrSignature) {
				t.Errorf("wrong PSK: %v", err)
			}
		})
	}
}

func TestChildKeyVectors(t *testing.T) {
	var f kdfFile
	load(t, "kdf.json", &f)
	if len(f.Child) == 0 {
		t.Fatal("no vectors")
	}
	for _, v := range f.Child {
		t.Run(fmt.Sprintf("prf%d-enc%d-integ%d-pfs%v", v.PRF, v.EncLen, v.IntegLen, len(v.Gir) > 0), func(t *testing.T) {
			k := DeriveChildKeys(mustPRF(t, v.PRF), v.SKd, v.Gir, v.Ni, v.Nr, v.EncLen, v.IntegLen)
			eq(t, "enc i", k.EncI, v.EncI)
			eq(t, "integ i", k.IntegI, v.IntegI)
			eq(t, "enc r", k.EncR, v.EncR)
			eq(t, "integ r", k.IntegR, v.IntegR)
		})
	}
}

type fixedReader struct{ b []byte }

func (r *fixedReader) Read(p []byte) (int, error) {
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

func TestSKVectors(t *testing.T) {
	var vs []struct {
		Encr     uint16
		EncKey   hexBytes `json:"enc_key"`
		Integ    uint16
		IntegKey hexBytes `json:"integ_key"`
		Prefix   hexBytes
		Inner    hexBytes
		Data     hexBytes
	}
	load(t, "sk.json", &vs)
	if len(vs) == 0 {
		t.Fatal("no vectors")
	}
	for _, v := range vs {
		t.Run(fmt.Sprintf("encr%d-%d-integ%d", v.Encr, len(v.EncKey), v.Integ), func(t *testing.T) {
			c, err := NewSKCipher(v.Encr, v.EncKey, v.Integ, v.IntegKey)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.SealedLen(len(v.Inner)); got != len(v.Data) {
				t.Errorf("SealedLen = %d, want %d", got, len(v.Data))
			}
			ivLen := 8
			if v.Encr == 12 {
				ivLen = 16
			}
			sealed, err := c.Seal(append([]byte(nil), v.Prefix...), v.Inner, &fixedReader{v.Data[:ivLen]})
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "sealed", sealed, append(append([]byte(nil), v.Prefix...), v.Data...))
			inner, err := c.Open(v.Prefix, v.Data)
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "opened", inner, v.Inner)
			for _, pos := range []int{0, ivLen, len(v.Data) - 1} {
				bad := append([]byte(nil), v.Data...)
				bad[pos] ^= 1
				if _, err := c.Open(v.Prefix, bad); !errors.Is(err, ErrAuth) {
					t.Errorf("flipped byte %d: error %v, want ErrAuth", pos, err)
				}
			}
			badPrefix := append([]byte(nil), v.Prefix...)
			badPrefix[3] ^= 1
			if _, err := c.Open(badPrefix, v.Data); !errors.Is(err, ErrAuth) {
				t.Errorf("flipped AAD: error %v, want ErrAuth", err)
			}
			if _, err := c.Open(v.Prefix, v.Data[:5]); !errors.Is(err, ErrAuth) {
				t.Errorf("short: error %v, want ErrAuth", err)
			}
		})
	}
}

func TestAuthSignatureVectors(t *testing.T) {
	var vs []struct {
		Name   string
		Alg    string
		AlgID  hexBytes `json:"alg_id"`
		SPKI   hexBytes `json:"spki"`
		Octets hexBytes
		Auth   hexBytes
	}
	load(t, "auth.json", &vs)
	if len(vs) == 0 {
		t.Fatal("no vectors")
	}
	for _, v := range vs {
		t.Run(v.Name, func(t *testing.T) {
			pub, err := x509.ParsePKIXPublicKey(v.SPKI)
			if err != nil {
				t.Fatal(err)
			}
			if err := Verify(pub, v.Auth, v.Octets); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			bad := append([]byte(nil), v.Octets...)
			bad[0] ^= 1
			if err := Verify(pub, v.Auth, bad); !errors.Is(err, ErrSignature) {
				t.Fatalf("Verify of changed octets: %v, want ErrSignature", err)
			}
		})
	}
	// Our own AlgorithmIdentifier encodings must equal RFC 7427 Appendix A.
	byAlg := map[string][]byte{}
	for _, v := range vs {
		byAlg[v.Alg] = v.AlgID
	}
	pss, err := pssAlgorithmID(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "RSASSA-PSS SHA-256 AlgorithmIdentifier", pss, byAlg["rsassa-pss-sha256"])
}
