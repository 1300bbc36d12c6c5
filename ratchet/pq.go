package ratchet

import (
	"crypto/mlkem"
	"fmt"
	"io"
)

// Post-quantum hybrid (protocol version 2). The invite carries an ML-KEM-768
// encapsulation key and the joiner's first message a ciphertext to it, whose
// shared secret joins the four X25519 outputs in the key agreement (as in
// Signal's PQXDH). Then a KEM ratchet runs beside the DH ratchet (in the
// manner of Apple's PQ3): the first message of every sending chain carries a
// PQ field, either an encapsulation key the peer should answer ("offer") or a
// ciphertext to the peer's outstanding offer ("answer"), whose shared secret
// is mixed into the root key and the chain key of that chain on both sides.
// The joiner always offers and the inviter always answers, because a party
// starts a chain only after receiving its peer's new chain, so once per round
// trip the whole future of the conversation gains a fresh ML-KEM secret.

const (
	pqNone   = 0x00
	pqOffer  = 0x01
	pqAnswer = 0x02

	pqEKSize   = mlkem.EncapsulationKeySize768 // 1184
	pqCTSize   = mlkem.CiphertextSize768       // 1088
	pqSeedSize = mlkem.SeedSize                // 64

	infoPQRatchet = "deaddrop v2 pq ratchet"
)

// pqField is the PQ field of a message: a type byte and an offer or answer.
type pqField struct {
	kind byte
	data []byte
}

func (f pqField) bytes() []byte { return append([]byte{f.kind}, f.data...) }

func parsePQField(b []byte) (pqField, []byte, error) {
	if len(b) < 1 {
		return pqField{}, nil, fmt.Errorf("%w: no PQ field", ErrDecrypt)
	}
	f := pqField{kind: b[0]}
	var n int
	switch f.kind {
	case pqNone:
	case pqOffer:
		n = pqEKSize
	case pqAnswer:
		n = pqCTSize
	default:
		return pqField{}, nil, fmt.Errorf("%w: unknown PQ field type %d", ErrDecrypt, b[0])
	}
	if len(b) < 1+n {
		return pqField{}, nil, fmt.Errorf("%w: truncated PQ field", ErrDecrypt)
	}
	f.data = b[1 : 1+n]
	return f, b[1+n:], nil
}

// encapsulate is ML-KEM-768 encapsulation. The standard library draws its own
// randomness; tests that need reproducible vectors replace this function with
// the derandomized one from crypto/mlkem/mlkemtest.
var encapsulate = func(ek *mlkem.EncapsulationKey768, _ io.Reader) (ss, ct []byte, err error) {
	ss, ct = ek.Encapsulate()
	return ss, ct, nil
}

func encapsulateTo(ekBytes []byte, rnd io.Reader) (ss, ct []byte, err error) {
	ek, err := mlkem.NewEncapsulationKey768(ekBytes)
	if err != nil {
		return nil, nil, fmt.Errorf("bad ML-KEM encapsulation key: %w", err)
	}
	return encapsulate(ek, rnd)
}

func decapsulate(seed [pqSeedSize]byte, ct []byte) ([]byte, error) {
	dk, err := mlkem.NewDecapsulationKey768(seed[:])
	if err != nil {
		return nil, err
	}
	return dk.Decapsulate(ct)
}

// newPQKey draws a decapsulation key seed from rand and returns it with its
// encapsulation key.
func newPQKey(rnd io.Reader) (seed [pqSeedSize]byte, ek []byte, err error) {
	if _, err = io.ReadFull(rnd, seed[:]); err != nil {
		return
	}
	dk, err := mlkem.NewDecapsulationKey768(seed[:])
	if err != nil {
		return
	}
	return seed, dk.EncapsulationKey().Bytes(), nil
}

// pqMix folds an ML-KEM shared secret into the root key and the chain key of
// the chain that carried it: HKDF(ck ‖ ss, salt = rk) → rk' ‖ ck'.
func pqMix(rk, ck [32]byte, ss []byte) (newRK, newCK [32]byte) {
	b := hkdfSHA256(append(ck[:], ss...), rk[:], infoPQRatchet, 64)
	copy(newRK[:], b[:32])
	copy(newCK[:], b[32:])
	return
}

// pqSend returns the PQ field of the first message of a new sending chain and
// applies its effect: an answer mixes its secret into the root and sending
// chain keys; an offer records the decapsulation key to use when answered.
func (c *Session) pqSend(rnd io.Reader) (pqField, error) {
	if c.hasPQPeerEK {
		ss, ct, err := encapsulateTo(c.pqPeerEK[:], rnd)
		if err != nil {
			return pqField{}, err
		}
		c.rk, c.cks = pqMix(c.rk, c.cks, ss)
		c.hasPQPeerEK = false
		return pqField{kind: pqAnswer, data: ct}, nil
	}
	seed, ek, err := newPQKey(rnd)
	if err != nil {
		return pqField{}, err
	}
	c.pqDK, c.hasPQDK = seed, true
	return pqField{kind: pqOffer, data: ek}, nil
}

// pqReceive applies the PQ field of the first message of the peer's new
// chain, between the two halves of the DH ratchet step: an answer to our
// offer is mixed into the root and receiving chain keys; an offer is kept to
// be answered by our next chain.
func (c *Session) pqReceive(f pqField) error {
	switch f.kind {
	case pqAnswer:
		if !c.hasPQDK {
			return fmt.Errorf("%w: PQ answer without an outstanding offer", ErrDecrypt)
		}
		ss, err := decapsulate(c.pqDK, f.data)
		if err != nil {
			return fmt.Errorf("%w: PQ answer: %v", ErrDecrypt, err)
		}
		c.rk, c.ckr = pqMix(c.rk, c.ckr, ss)
		c.hasPQDK = false
	case pqOffer:
		copy(c.pqPeerEK[:], f.data)
		c.hasPQPeerEK = true
	default:
		return fmt.Errorf("%w: the first message of a chain has no PQ field", ErrDecrypt)
	}
	return nil
}
