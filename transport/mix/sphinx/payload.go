package sphinx

import (
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"

	"golang.org/x/crypto/blake2b"
	"golang.org/x/crypto/chacha20"
)

// The payload is protected by LIONESS (Anderson–Biham), a wide-block cipher,
// instantiated with ChaCha20 and keyed BLAKE2b-256 as in Katzenpost's draft
// and Nym. Katzenpost's vectors use AEZv5, which has no implementation outside
// AGPL code, so payload bytes do not match theirs; deaddrop's own vectors are
// in testdata/. A stream cipher would not do: the zero tag detects tampering
// only under a non-malleable wide-block cipher.
//
// Each hop's 48-byte payload key and 16-byte IV from the KDF are expanded
// with HKDF-SHA256 (info "deaddrop sphinx lioness v1") into LIONESS's four
// 32-byte keys and four 12-byte IVs.

const (
	tagSize         = 32 // zero bytes prepended to every payload
	payloadOverhead = tagSize
	lionessL        = 32 // the left part: one BLAKE2b-256 output
	lionessInfo     = "deaddrop sphinx lioness v1"
)

// ErrTagged reports a payload whose zero tag did not survive: it was
// modified in transit.
var ErrTagged = errors.New("sphinx: payload tag mismatch (tagged or corrupt payload)")

type lioness struct {
	k  [4][32]byte
	iv [4][12]byte
}

func newLioness(key [sprpKeySize]byte, iv [sprpIVSize]byte) *lioness {
	b, err := hkdf.Key(sha256.New, append(key[:], iv[:]...), nil, lionessInfo, 4*32+4*12)
	if err != nil {
		panic(err)
	}
	l := new(lioness)
	for i := range 4 {
		copy(l.k[i][:], b[32*i:])
		copy(l.iv[i][:], b[128+12*i:])
	}
	return l
}

// streamRound is R ^= ChaCha20(L ⊕ k, iv).
func (l *lioness) streamRound(left, right []byte, i int) {
	var key [32]byte
	subtle.XORBytes(key[:], left, l.k[i][:])
	c, _ := chacha20.NewUnauthenticatedCipher(key[:], l.iv[i][:])
	c.XORKeyStream(right, right)
}

// hashRound is L ^= BLAKE2b-256(key = k ‖ iv, R).
func (l *lioness) hashRound(left, right []byte, i int) {
	h, _ := blake2b.New256(append(l.k[i][:], l.iv[i][:]...))
	h.Write(right)
	subtle.XORBytes(left, left, h.Sum(nil))
}

func (l *lioness) encrypt(b []byte) {
	left, right := b[:lionessL], b[lionessL:]
	l.streamRound(left, right, 0)
	l.hashRound(left, right, 1)
	l.streamRound(left, right, 2)
	l.hashRound(left, right, 3)
}

func (l *lioness) decrypt(b []byte) {
	left, right := b[:lionessL], b[lionessL:]
	l.hashRound(left, right, 3)
	l.streamRound(left, right, 2)
	l.hashRound(left, right, 1)
	l.streamRound(left, right, 0)
}

func decryptPayload(key [sprpKeySize]byte, iv [sprpIVSize]byte, payload []byte) ([]byte, error) {
	if len(payload) <= lionessL {
		return nil, fmt.Errorf("%w: payload of %d bytes", ErrMalformed, len(payload))
	}
	out := append([]byte(nil), payload...)
	newLioness(key, iv).decrypt(out)
	return out, nil
}

func encryptPayload(key [sprpKeySize]byte, iv [sprpIVSize]byte, payload []byte) {
	newLioness(key, iv).encrypt(payload)
}

// OpenPayload checks the zero tag of a payload that reached its last hop and
// returns the message.
func OpenPayload(payload []byte) ([]byte, error) {
	if len(payload) < tagSize || subtle.ConstantTimeCompare(payload[:tagSize], make([]byte, tagSize)) != 1 {
		return nil, ErrTagged
	}
	return payload[tagSize:], nil
}
