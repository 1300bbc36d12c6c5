package mix

import (
	"crypto/rand"
	"encoding/binary"
	mrand "math/rand/v2"
)

// csprng draws every random choice of the mix — routes, entry mixes, delays,
// send and loop times — from crypto/rand. Those choices are what unlinks a
// packet from its sender: with math/rand's generators, whose state can be
// recovered from enough of their outputs, an observer who sees some of a
// client's delays could predict the rest.
var csprng = mrand.New(cryptoSource{})

// cryptoSource is a math/rand/v2 Source reading crypto/rand. It keeps no
// state, so csprng is safe for concurrent use.
type cryptoSource struct{}

func (cryptoSource) Uint64() uint64 {
	var b [8]byte
	rand.Read(b[:]) // never fails (Go 1.24+), crashes the program if it cannot
	return binary.LittleEndian.Uint64(b[:])
}
