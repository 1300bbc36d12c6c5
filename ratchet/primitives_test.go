package ratchet

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"
)

// Published vectors for every primitive the protocol uses, so that a change
// of library or a misuse of one shows up here rather than as an interop bug.

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func key32(t *testing.T, s string) (k [32]byte) {
	copy(k[:], unhex(t, s))
	return k
}

// RFC 7748 §5.2 (single scalar multiplications) and §6.1 (Diffie-Hellman).
func TestX25519RFC7748(t *testing.T) {
	cases := []struct{ scalar, u, out string }{
		{"a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
			"e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
			"c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"},
		{"4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
			"e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
			"95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957"},
		// §6.1: Alice's private key with Bob's public key gives K.
		{"77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
			"de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f",
			"4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"},
		{"5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
			"8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a",
			"4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"},
	}
	for i, c := range cases {
		got, err := x25519(key32(t, c.scalar), key32(t, c.u))
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if hex.EncodeToString(got[:]) != c.out {
			t.Errorf("case %d: got %x, want %s", i, got, c.out)
		}
	}
	// §6.1 public keys.
	if pub := publicKey(key32(t, "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")); hex.EncodeToString(pub[:]) != "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a" {
		t.Errorf("Alice's public key: %x", pub)
	}
}

// Low-order points give an all-zero shared secret; they must be an error.
func TestX25519LowOrderRejected(t *testing.T) {
	priv := key32(t, "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
	for _, u := range []string{
		"0000000000000000000000000000000000000000000000000000000000000000",
		"0100000000000000000000000000000000000000000000000000000000000000",
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
		"5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
	} {
		if _, err := x25519(priv, key32(t, u)); !errors.Is(err, errLowOrder) {
			t.Errorf("u=%s: got %v, want a low-order error", u, err)
		}
	}
}

// RFC 5869 test cases 1 and 3 (HKDF-SHA256).
func TestHKDFRFC5869(t *testing.T) {
	ikm := bytes.Repeat([]byte{0x0b}, 22)
	cases := []struct{ salt, info, prk, okm string }{
		{"000102030405060708090a0b0c", "f0f1f2f3f4f5f6f7f8f9",
			"077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
			"3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"},
		{"", "",
			"19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
			"8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"},
	}
	for i, c := range cases {
		prk, _ := hkdf.Extract(sha256.New, ikm, unhex(t, c.salt))
		if hex.EncodeToString(prk) != c.prk {
			t.Errorf("case %d PRK: %x", i, prk)
		}
		if okm := hkdfSHA256(ikm, unhex(t, c.salt), string(unhex(t, c.info)), 42); hex.EncodeToString(okm) != c.okm {
			t.Errorf("case %d OKM: %x", i, okm)
		}
	}
}

// RFC 4231 test cases 1 and 2 (HMAC-SHA256).
func TestHMACRFC4231(t *testing.T) {
	cases := []struct {
		key, data []byte
		out       string
	}{
		{bytes.Repeat([]byte{0x0b}, 20), []byte("Hi There"), "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
		{[]byte("Jefe"), []byte("what do ya want for nothing?"), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
	}
	for i, c := range cases {
		if got := hmacSHA256(c.key, c.data...); hex.EncodeToString(got[:]) != c.out {
			t.Errorf("case %d: %x", i, got)
		}
	}
}

const sunscreen = "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it."

// RFC 8439 §2.8.2 (ChaCha20-Poly1305 AEAD) and draft-irtf-cfrg-xchacha-03
// §A.3.1 (XChaCha20-Poly1305, the AEAD deaddrop uses).
func TestAEADVectors(t *testing.T) {
	key := unhex(t, "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f")
	aad := unhex(t, "50515253c0c1c2c3c4c5c6c7")
	cases := []struct {
		name, nonce, ct string
		x               bool
	}{
		{"RFC 8439", "070000004041424344454647",
			"d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116" +
				"1ae10b594f09e26a7e902ecbd0600691", false},
		{"XChaCha A.3.1", "404142434445464748494a4b4c4d4e4f5051525354555657",
			"bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b4522f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff921f9664c97637da9768812f615c68b13b52e" +
				"c0875924c1c7987947deafd8780acf49", true},
	}
	for _, c := range cases {
		aead, _ := chacha20poly1305.New(key)
		if c.x {
			aead, _ = chacha20poly1305.NewX(key)
		}
		got := aead.Seal(nil, unhex(t, c.nonce), []byte(sunscreen), aad)
		if hex.EncodeToString(got) != c.ct {
			t.Errorf("%s: got %x", c.name, got)
		}
	}
}

// libsignal's chain-key vector (rust/protocol/src/ratchet/keys.rs,
// test_chain_key_derivation): our KDF_CK is Signal's, so its message key,
// expanded with Signal's "WhisperMessageKeys", and its next chain key match.
func TestChainKeyLibsignal(t *testing.T) {
	seed := key32(t, "8ab72d6f4cc5ac0d387eaf463378ddb28edd07385b1cb01250c715982e7ad48f")
	next, mk := kdfCK(seed)
	okm := hkdfSHA256(mk[:], nil, "WhisperMessageKeys", 80)
	if got := hex.EncodeToString(okm[:32]); got != "bf51e9d75e0e31031051f82a2491ffc084fa298b7793bd9db620056febf45217" {
		t.Errorf("cipher key %s", got)
	}
	if got := hex.EncodeToString(okm[32:64]); got != "c6c77d6a73a354337a56435e34607dfe48e3ace14e77314dc6abc172e7a7030b" {
		t.Errorf("mac key %s", got)
	}
	if got := hex.EncodeToString(next[:]); got != "28e8f8fee54b801eef7c5cfb2f17f32c7b334485bbb70fac6ec10342a246d15d" {
		t.Errorf("next chain key %s", got)
	}
}
