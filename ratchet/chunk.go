package ratchet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/deaddrop/deaddrop/feed"
	"golang.org/x/crypto/chacha20poly1305"
)

// Chunk layout (docs/protocol.md §6): nonce 24 ‖ XChaCha20-Poly1305 under
// SHA-256(slot ‖ "chunk") of a fixed 4056-byte inner block. Every chunk is
// 4096 bytes of what looks like random data to the store.
const (
	innerSize  = feed.ChunkSize - chacha20poly1305.NonceSizeX - chacha20poly1305.Overhead // 4056
	encHdrSize = chacha20poly1305.NonceSizeX + headerSize + chacha20poly1305.Overhead     // 80
	headerSize = 32 + 4 + 4

	typeInit    = 0x01
	typeMessage = 0x02

	// type ‖ joiner identity ‖ EK ‖ invite ID ‖ ML-KEM ciphertext ‖ name
	initFieldsSize = 1 + 32 + 32 + 32 + 32 + pqCTSize + 1 + MaxNameLen
	messageOver    = encHdrSize + 2 + chacha20poly1305.Overhead
	pqFieldMax     = 1 + pqEKSize

	// MaxPlaintext is the largest plaintext Encrypt accepts: what fits in one
	// chunk even in the first message of a chain, which carries a PQ field.
	MaxPlaintext = innerSize - 1 - messageOver - pqFieldMax // 2772
	// MaxFirstPlaintext bounds the joiner's very first message, which also
	// carries the set-up preamble.
	MaxFirstPlaintext = innerSize - initFieldsSize - messageOver - pqFieldMax // 1491
)

var (
	// ErrTooLarge reports a plaintext over MaxPlaintext bytes.
	ErrTooLarge = fmt.Errorf("plaintext too large (at most %d bytes)", MaxPlaintext)
	// ErrDecrypt reports a chunk that does not open: not ours, damaged, or junk.
	ErrDecrypt = errors.New("chunk does not decrypt")
)

func sealChunk(slot feed.Slot, inner []byte, rand io.Reader) ([]byte, error) {
	if len(inner) != innerSize {
		panic("ratchet: inner block of wrong size")
	}
	key := feed.DeriveKey(slot, "chunk")
	aead, _ := chacha20poly1305.NewX(key[:])
	chunk := make([]byte, chacha20poly1305.NonceSizeX, feed.ChunkSize)
	if _, err := io.ReadFull(rand, chunk); err != nil {
		return nil, err
	}
	return aead.Seal(chunk, chunk, inner, nil), nil
}

func openChunk(slot feed.Slot, chunk []byte) ([]byte, error) {
	if len(chunk) != feed.ChunkSize {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrDecrypt, len(chunk), feed.ChunkSize)
	}
	key := feed.DeriveKey(slot, "chunk")
	aead, _ := chacha20poly1305.NewX(key[:])
	n := chacha20poly1305.NonceSizeX
	inner, err := aead.Open(nil, chunk[:n], chunk[n:], nil)
	if err != nil {
		return nil, fmt.Errorf("%w: outer layer fails authentication", ErrDecrypt)
	}
	return inner, nil
}

// message is a decoded inner block of type message: the encrypted header,
// the PQ field and the body ciphertext.
type message struct {
	encHeader []byte
	pq        pqField
	body      []byte
}

// appendMessage appends encHeader ‖ PQ field ‖ len u16 ‖ body.
func appendMessage(b []byte, m message) []byte {
	b = append(b, m.encHeader...)
	b = append(b, m.pq.bytes()...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.body)))
	return append(b, m.body...)
}

func parseMessage(b []byte) (message, error) {
	if len(b) < encHdrSize+1 {
		return message{}, fmt.Errorf("%w: truncated message", ErrDecrypt)
	}
	pq, rest, err := parsePQField(b[encHdrSize:])
	if err != nil {
		return message{}, err
	}
	if len(rest) < 2 {
		return message{}, fmt.Errorf("%w: truncated message", ErrDecrypt)
	}
	n := int(binary.BigEndian.Uint16(rest))
	rest = rest[2:]
	if n > len(rest) || n < chacha20poly1305.Overhead {
		return message{}, fmt.Errorf("%w: body length %d out of range", ErrDecrypt, n)
	}
	if !allZero(rest[n:]) {
		return message{}, fmt.Errorf("%w: non-zero padding", ErrDecrypt)
	}
	return message{encHeader: b[:encHdrSize], pq: pq, body: rest[:n]}, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func pad(b []byte) []byte {
	out := make([]byte, innerSize)
	copy(out, b)
	return out
}

// initFields is the joiner's first message's preamble.
type initFields struct {
	joiner   PublicIdentity
	ephem    [32]byte
	inviteID [32]byte
	kemCT    [pqCTSize]byte // encapsulated to the invite's ML-KEM key
	name     string
}

func (f *initFields) marshal() []byte {
	b := []byte{typeInit}
	b = append(b, f.joiner.Sign[:]...)
	b = append(b, f.joiner.DH[:]...)
	b = append(b, f.ephem[:]...)
	b = append(b, f.inviteID[:]...)
	b = append(b, f.kemCT[:]...)
	b = append(b, byte(len(f.name)))
	name := make([]byte, MaxNameLen) // fixed width: the name's length does not shift the header
	copy(name, f.name)
	return append(b, name...)
}

func parseInit(inner []byte) (*initFields, []byte, error) {
	if len(inner) != innerSize || inner[0] != typeInit {
		return nil, nil, fmt.Errorf("%w: not a first message", ErrDecrypt)
	}
	f := &initFields{}
	r := reader{b: inner[1:]}
	r.read(f.joiner.Sign[:])
	r.read(f.joiner.DH[:])
	r.read(f.ephem[:])
	r.read(f.inviteID[:])
	r.read(f.kemCT[:])
	n := int(r.u8())
	name := r.take(MaxNameLen)
	if n > MaxNameLen || !allZero(name[n:]) {
		return nil, nil, fmt.Errorf("%w: bad name field", ErrDecrypt)
	}
	f.name = string(name[:n])
	if err := checkName(f.name); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrDecrypt, err)
	}
	return f, inner[initFieldsSize:], nil
}
