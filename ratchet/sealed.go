package ratchet

import (
	"crypto/ecdh"
	"errors"
	"io"

	"golang.org/x/crypto/chacha20poly1305"
)

// Sealed boxes: a message only the holder of an identity can open, from a
// sender with no key of its own (ephemeral-static X25519, as in HPKE base
// mode). deaddrop's sync layer seals each new history key to every remaining
// device and to the recovery key.
//
//	sealed = E (32) ‖ XChaCha20-Poly1305(k, nonce 0, msg, AD = E ‖ R)
//	k = HKDF-SHA256(salt = E ‖ R, IKM = X25519(e, R), info "deaddrop sealed box v1", 32)
//
// where R is the recipient identity's X25519 key and e, E a fresh key pair:
// the key is used once, so the nonce can be zero.
const sealedInfo = "deaddrop sealed box v1"

// SealedOverhead is how much longer a sealed box is than its message.
const SealedOverhead = 32 + chacha20poly1305.Overhead

// ErrSealed reports a sealed box that does not open with this identity.
var ErrSealed = errors.New("sealed box does not open with this key")

// SealTo seals msg to the identity p.
func SealTo(p PublicIdentity, msg []byte, rand io.Reader) ([]byte, error) {
	priv, pub, err := newKeyPair(rand)
	if err != nil {
		return nil, err
	}
	shared, err := x25519(priv, p.DH)
	if err != nil {
		return nil, err
	}
	aead, err := chacha20poly1305.NewX(sealedKey(shared, pub, p.DH))
	if err != nil {
		return nil, err
	}
	ad := append(pub[:], p.DH[:]...)
	return aead.Seal(append([]byte(nil), pub[:]...), make([]byte, chacha20poly1305.NonceSizeX), msg, ad), nil
}

// OpenSealed opens a box sealed to this identity.
func (id *Identity) OpenSealed(sealed []byte) ([]byte, error) {
	return openSealed(id.dh, id.pub.DH, sealed)
}

// SealKey is an X25519 key pair that only opens sealed boxes: a device's
// sealing key for history epoch keys, separate from its session identity
// (docs/protocol.md §10.9).
type SealKey struct {
	priv, pub [32]byte
}

// NewSealKey makes the sealing key whose X25519 private key is priv.
func NewSealKey(priv [32]byte) (*SealKey, error) {
	k, err := ecdh.X25519().NewPrivateKey(priv[:])
	if err != nil {
		return nil, err
	}
	s := &SealKey{priv: priv}
	copy(s.pub[:], k.PublicKey().Bytes())
	return s, nil
}

// Public returns the sealing key's X25519 public key.
func (k *SealKey) Public() [32]byte { return k.pub }

// Open opens a box sealed to this key's public key.
func (k *SealKey) Open(sealed []byte) ([]byte, error) { return openSealed(k.priv, k.pub, sealed) }

// SealToKey seals msg to the X25519 public key pub (a SealKey's), exactly as
// SealTo does to an identity's X25519 key.
func SealToKey(pub [32]byte, msg []byte, rand io.Reader) ([]byte, error) {
	return SealTo(PublicIdentity{DH: pub}, msg, rand)
}

func openSealed(priv, pub [32]byte, sealed []byte) ([]byte, error) {
	if len(sealed) < SealedOverhead {
		return nil, ErrSealed
	}
	var eph [32]byte
	copy(eph[:], sealed)
	shared, err := x25519(priv, eph)
	if err != nil {
		return nil, ErrSealed
	}
	aead, err := chacha20poly1305.NewX(sealedKey(shared, eph, pub))
	if err != nil {
		return nil, err
	}
	ad := append(eph[:], pub[:]...)
	msg, err := aead.Open(nil, make([]byte, chacha20poly1305.NonceSizeX), sealed[32:], ad)
	if err != nil {
		return nil, ErrSealed
	}
	return msg, nil
}

func sealedKey(shared, eph, recipient [32]byte) []byte {
	return hkdfSHA256(shared[:], append(eph[:], recipient[:]...), sealedInfo, 32)
}
