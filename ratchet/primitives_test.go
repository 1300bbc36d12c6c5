package ratchet

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"
)

// Published vectors for every primitive the protocol uses, so that a change
// of library or a misuse of one shows up here rather than as an interop bug.
// They live in testdata/primitives.json (docs/protocol.md §7): each entry
// names its source; the inputs are the published ones, and the outputs are
// what this code computes from them, which must equal the published outputs.
// -update rewrites the outputs from the code: for this file a diff means a
// broken primitive, never a protocol change.

const primitivesFile = "testdata/primitives.json"

type primitives struct {
	X25519 []struct {
		Source string `json:"source"`
		Scalar string `json:"scalar"`
		U      string `json:"u"`
		Out    string `json:"out"`
	} `json:"x25519"`
	X25519Public []struct {
		Source  string `json:"source"`
		Private string `json:"private"`
		Public  string `json:"public"`
	} `json:"x25519_public"`
	X25519LowOrder struct {
		Source string   `json:"source"`
		Scalar string   `json:"scalar"`
		U      []string `json:"u"`
		// Rejected is true when every u gives an error.
		Rejected bool `json:"rejected"`
	} `json:"x25519_low_order"`
	HKDF []struct {
		Source string `json:"source"`
		IKM    string `json:"ikm"`
		Salt   string `json:"salt"`
		Info   string `json:"info"`
		Length int    `json:"length"`
		PRK    string `json:"prk"`
		OKM    string `json:"okm"`
	} `json:"hkdf_sha256"`
	HMAC []struct {
		Source string `json:"source"`
		Key    string `json:"key"`
		Data   string `json:"data"`
		Out    string `json:"out"`
	} `json:"hmac_sha256"`
	AEAD []struct {
		Source     string `json:"source"`
		AEAD       string `json:"aead"` // ChaCha20-Poly1305 or XChaCha20-Poly1305
		Key        string `json:"key"`
		Nonce      string `json:"nonce"`
		AAD        string `json:"aad"`
		Plaintext  string `json:"plaintext"`
		Ciphertext string `json:"ciphertext"` // with the tag
	} `json:"aead"`
	ChainKey []struct {
		Source    string `json:"source"`
		CK        string `json:"ck"`
		CipherKey string `json:"cipher_key"`
		MACKey    string `json:"mac_key"`
		NextCK    string `json:"next_ck"`
	} `json:"chain_key"`
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func key32(t *testing.T, s string) (k [32]byte) {
	t.Helper()
	if copy(k[:], unhex(t, s)) != 32 {
		t.Fatalf("%q is not 32 bytes", s)
	}
	return k
}

// computePrimitives returns p with every output recomputed by this code
// from p's inputs.
func computePrimitives(t *testing.T, p *primitives) {
	for i := range p.X25519 {
		c := &p.X25519[i]
		out, err := x25519(key32(t, c.Scalar), key32(t, c.U))
		if err != nil {
			t.Fatalf("%s: %v", c.Source, err)
		}
		c.Out = hex.EncodeToString(out[:])
	}
	for i := range p.X25519Public {
		c := &p.X25519Public[i]
		pub := publicKey(key32(t, c.Private))
		c.Public = hex.EncodeToString(pub[:])
	}
	lo := &p.X25519LowOrder
	lo.Rejected = true
	for _, u := range lo.U {
		if _, err := x25519(key32(t, lo.Scalar), key32(t, u)); !errors.Is(err, errLowOrder) {
			lo.Rejected = false
			t.Errorf("u=%s: got %v, want a low-order error", u, err)
		}
	}
	for i := range p.HKDF {
		c := &p.HKDF[i]
		ikm, salt := unhex(t, c.IKM), unhex(t, c.Salt)
		prk, err := hkdf.Extract(sha256.New, ikm, salt)
		if err != nil {
			t.Fatal(err)
		}
		c.PRK = hex.EncodeToString(prk)
		c.OKM = hex.EncodeToString(hkdfSHA256(ikm, salt, string(unhex(t, c.Info)), c.Length))
	}
	for i := range p.HMAC {
		c := &p.HMAC[i]
		out := hmacSHA256(unhex(t, c.Key), unhex(t, c.Data)...)
		c.Out = hex.EncodeToString(out[:])
	}
	for i := range p.AEAD {
		c := &p.AEAD[i]
		key := unhex(t, c.Key)
		aead, err := chacha20poly1305.New(key)
		if c.AEAD == "XChaCha20-Poly1305" {
			aead, err = chacha20poly1305.NewX(key)
		} else if c.AEAD != "ChaCha20-Poly1305" {
			t.Fatalf("%s: unknown AEAD %q", c.Source, c.AEAD)
		}
		if err != nil {
			t.Fatal(err)
		}
		c.Ciphertext = hex.EncodeToString(aead.Seal(nil, unhex(t, c.Nonce), unhex(t, c.Plaintext), unhex(t, c.AAD)))
	}
	for i := range p.ChainKey {
		// Our KDF_CK is Signal's, so libsignal's vector applies: its message
		// key expanded with Signal's own label gives its cipher and MAC keys.
		c := &p.ChainKey[i]
		next, mk := kdfCK(key32(t, c.CK))
		okm := hkdfSHA256(mk[:], nil, "WhisperMessageKeys", 80)
		c.CipherKey, c.MACKey, c.NextCK = hex.EncodeToString(okm[:32]), hex.EncodeToString(okm[32:64]), hex.EncodeToString(next[:])
	}
}

// TestPrimitiveVectors recomputes every output of testdata/primitives.json
// and compares the result with the file, byte for byte.
func TestPrimitiveVectors(t *testing.T) {
	data, err := os.ReadFile(primitivesFile)
	if err != nil {
		t.Fatal(err)
	}
	p := new(primitives)
	if err := json.Unmarshal(data, p); err != nil {
		t.Fatal(err)
	}
	if len(p.X25519) == 0 || len(p.HKDF) == 0 || len(p.HMAC) == 0 || len(p.AEAD) == 0 || len(p.ChainKey) == 0 || len(p.X25519LowOrder.U) == 0 {
		t.Fatalf("%s lacks a primitive", primitivesFile)
	}
	computePrimitives(t, p)
	got, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	if *update {
		if err := os.WriteFile(primitivesFile, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("the code no longer reproduces the published vectors of %s (a broken primitive; do not -update it away)", primitivesFile)
	}
}
