// Package x25519 is X25519 (RFC 7748) as one Montgomery ladder on
// filippo.io/edwards25519's field arithmetic. crypto/ecdh (and
// x/crypto/curve25519, which wraps it) also computes the private key's public
// key on every call, a second scalar multiplication that Sphinx hops and
// ratchet steps never use; this halves their cost.
package x25519

import (
	"crypto/subtle"
	"errors"

	"filippo.io/edwards25519/field"
)

// ErrLowOrder reports an all-zero output: the point had small order.
var ErrLowOrder = errors.New("x25519: low-order point")

// X25519 returns scalar·point. Both are 32 bytes; the scalar is clamped and
// the point's top bit ignored, as RFC 7748 specifies.
func X25519(scalar, point []byte) ([]byte, error) {
	if len(scalar) != 32 || len(point) != 32 {
		return nil, errors.New("x25519: inputs must be 32 bytes")
	}
	var out [32]byte
	ladder(&out, scalar, point)
	if subtle.ConstantTimeCompare(out[:], make([]byte, 32)) == 1 {
		return nil, ErrLowOrder
	}
	return out[:], nil
}

func ladder(out *[32]byte, scalar, point []byte) {
	var e [32]byte
	copy(e[:], scalar)
	e[0] &= 248
	e[31] &= 127
	e[31] |= 64
	var x1, x2, z2, x3, z3, tmp0, tmp1 field.Element
	x1.SetBytes(point)
	x2.One()
	x3.Set(&x1)
	z3.One()
	swap := 0
	for pos := 254; pos >= 0; pos-- {
		b := int(e[pos/8]>>uint(pos&7)) & 1
		swap ^= b
		x2.Swap(&x3, swap)
		z2.Swap(&z3, swap)
		swap = b
		tmp0.Subtract(&x3, &z3)
		tmp1.Subtract(&x2, &z2)
		x2.Add(&x2, &z2)
		z2.Add(&x3, &z3)
		z3.Multiply(&tmp0, &x2)
		z2.Multiply(&z2, &tmp1)
		tmp0.Square(&tmp1)
		tmp1.Square(&x2)
		x3.Add(&z3, &z2)
		z2.Subtract(&z3, &z2)
		x2.Multiply(&tmp1, &tmp0)
		tmp1.Subtract(&tmp1, &tmp0)
		z2.Square(&z2)
		z3.Mult32(&tmp1, 121666)
		x3.Square(&x3)
		tmp0.Add(&tmp0, &z3)
		z3.Multiply(&x1, &z2)
		z2.Multiply(&tmp1, &tmp0)
	}
	x2.Swap(&x3, swap)
	z2.Swap(&z3, swap)
	z2.Invert(&z2)
	x2.Multiply(&x2, &z2)
	copy(out[:], x2.Bytes())
}
