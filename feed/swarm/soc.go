package swarm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"golang.org/x/crypto/sha3"
)

// Swarm's chunk geometry: a content-addressed chunk (CAC) is span (8 bytes,
// little-endian payload length) ‖ payload (≤ 4096 bytes); a single-owner chunk
// (SOC) wraps a CAC as id (32) ‖ signature (65) ‖ CAC.
const (
	spanSize    = 8
	idSize      = 32
	sigSize     = 65
	segmentSize = 32
	branches    = 128
	socSize     = idSize + sigSize + spanSize + feed.ChunkSize
)

func keccak256(parts ...[]byte) [32]byte {
	h := sha3.NewLegacyKeccak256()
	for _, p := range parts {
		h.Write(p)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// bmtHash is Swarm's binary Merkle tree hash of a CAC: the payload,
// zero-padded to 4096 bytes, is split into 128 segments of 32 bytes, hashed
// pairwise with Keccak-256 up to one root, and the address is
// Keccak-256(span ‖ root).
func bmtHash(span uint64, payload []byte) [32]byte {
	level := make([]byte, segmentSize*branches)
	copy(level, payload)
	for len(level) > segmentSize {
		next := make([]byte, len(level)/2)
		for i := 0; i < len(level); i += 2 * segmentSize {
			h := keccak256(level[i : i+2*segmentSize])
			copy(next[i/2:], h[:])
		}
		level = next
	}
	var sp [spanSize]byte
	binary.LittleEndian.PutUint64(sp[:], span)
	return keccak256(sp[:], level)
}

// owner is the secp256k1 key that signs a slot's chunk; only someone who
// knows the slot can derive it.
type owner struct {
	key  *secp256k1.PrivateKey
	addr [20]byte // Ethereum address
}

func ownerOf(slot feed.Slot) owner { return ownerFromSeed(feed.DeriveKey(slot, "owner")) }

func ownerFromSeed(seed [32]byte) owner {
	key := secp256k1.PrivKeyFromBytes(seed[:]) // reduced mod n; a zero scalar has probability ~2^-256
	return owner{key: key, addr: ethAddress(key.PubKey())}
}

func ethAddress(pub *secp256k1.PublicKey) (a [20]byte) {
	h := keccak256(pub.SerializeUncompressed()[1:])
	copy(a[:], h[12:])
	return a
}

// socAddress is Keccak-256(id ‖ owner address).
func socAddress(id [32]byte, ownerAddr [20]byte) [32]byte {
	return keccak256(id[:], ownerAddr[:])
}

// ethSignedHash is the Ethereum signed-message digest Bee's signer uses.
func ethSignedHash(digest [32]byte) [32]byte {
	return keccak256([]byte("\x19Ethereum Signed Message:\n32"), digest[:])
}

// sign returns Bee's 65-byte r ‖ s ‖ v signature (v = 27 + recovery id) over
// Keccak-256(id ‖ cac address).
func sign(key *secp256k1.PrivateKey, id, cacAddr [32]byte) []byte {
	h := ethSignedHash(keccak256(id[:], cacAddr[:]))
	compact := ecdsa.SignCompact(key, h[:], false) // v ‖ r ‖ s
	return append(compact[1:], compact[0])
}

// recoverOwner returns the address that made sig over Keccak-256(id ‖ cac).
func recoverOwner(sig []byte, id, cacAddr [32]byte) ([20]byte, error) {
	if len(sig) != sigSize {
		return [20]byte{}, fmt.Errorf("signature of %d bytes", len(sig))
	}
	h := ethSignedHash(keccak256(id[:], cacAddr[:]))
	compact := append([]byte{sig[64]}, sig[:64]...)
	pub, _, err := ecdsa.RecoverCompact(compact, h[:])
	if err != nil {
		return [20]byte{}, fmt.Errorf("signature does not recover: %w", err)
	}
	return ethAddress(pub), nil
}

// slotChunk holds what a slot maps to in Swarm.
type slotChunk struct {
	id      [32]byte
	owner   owner
	address [32]byte
}

func forSlot(slot feed.Slot) slotChunk {
	id := feed.DeriveKey(slot, "id")
	o := ownerOf(slot)
	return slotChunk{id: id, owner: o, address: socAddress(id, o.addr)}
}

// buildSOC returns the SOC bytes id ‖ sig ‖ span ‖ payload for a chunk.
func (s slotChunk) buildSOC(payload []byte) []byte {
	cac := bmtHash(uint64(len(payload)), payload)
	b := make([]byte, 0, socSize)
	b = append(b, s.id[:]...)
	b = append(b, sign(s.owner.key, s.id, cac)...)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(payload)))
	return append(b, payload...)
}

var errBadSOC = errors.New("invalid single-owner chunk")

// parseSOC verifies SOC bytes received for this slot and returns the
// payload. Everything is checked before the payload is trusted: size, id,
// span, signature and owner.
func (s slotChunk) parseSOC(b []byte) ([]byte, error) {
	if len(b) != socSize {
		return nil, fmt.Errorf("%w: %d bytes, want %d", errBadSOC, len(b), socSize)
	}
	if !bytes.Equal(b[:idSize], s.id[:]) {
		return nil, fmt.Errorf("%w: id does not match the slot", errBadSOC)
	}
	sig := b[idSize : idSize+sigSize]
	span := binary.LittleEndian.Uint64(b[idSize+sigSize:])
	payload := b[idSize+sigSize+spanSize:]
	if span != feed.ChunkSize {
		return nil, fmt.Errorf("%w: span %d, want %d", errBadSOC, span, feed.ChunkSize)
	}
	owner, err := recoverOwner(sig, s.id, bmtHash(span, payload))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBadSOC, err)
	}
	if owner != s.owner.addr {
		return nil, fmt.Errorf("%w: signed by %x, not the slot's owner", errBadSOC, owner)
	}
	return bytes.Clone(payload), nil
}
