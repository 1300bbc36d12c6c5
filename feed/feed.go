// Package feed defines the storage abstraction deaddrop writes to: a Store maps
// a 32-byte secret slot to one fixed-size chunk. Backends (the embedded on-disk
// store in this package, Swarm in feed/swarm, IPFS in feed/ipfs) turn a slot into
// their own address and write authority, so the storage network sees uniform,
// unlinkable chunks at unrelated addresses.
package feed

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
)

// ChunkSize is the exact size in bytes of every chunk a Store holds. It is the
// largest payload of a Swarm chunk, and every chunk is padded to it so that the
// store cannot tell messages apart by size.
const ChunkSize = 4096

// Slot is a secret location derived by the topic ratchet. Only the two parties of
// a conversation can derive it; a backend derives its own address from it with
// DeriveKey so that the slot itself never leaves the client.
type Slot [32]byte

// String prints a short, non-secret fingerprint of the slot for logs and errors.
func (s Slot) String() string {
	fp := DeriveKey(s, "fingerprint")
	return fmt.Sprintf("slot:%x", fp[:6])
}

var (
	// ErrNotFound reports that nothing is stored at a slot (yet).
	ErrNotFound = errors.New("feed: slot not found")
	// ErrSlotUsed reports an attempt to write different bytes into a slot that
	// already holds a chunk. Re-putting the same bytes (republish) is allowed.
	ErrSlotUsed = errors.New("feed: slot already holds a different chunk")
	// ErrChunkSize reports a chunk that is not exactly ChunkSize bytes long.
	ErrChunkSize = errors.New("feed: chunk is not exactly 4096 bytes")
	// ErrUnavailable reports that the store could not be reached or answered
	// with a server-side failure; the operation may succeed if retried later.
	ErrUnavailable = errors.New("feed: store unavailable")
	// ErrCorrupt reports a stored chunk that is damaged (wrong size, bad
	// signature, wrong owner): it is never returned as data.
	ErrCorrupt = errors.New("feed: corrupt chunk")
	// ErrClosed reports use of a store after Close.
	ErrClosed = errors.New("feed: store closed")
)

// Store is the storage backend interface. Implementations must be safe for
// concurrent use by multiple goroutines.
type Store interface {
	// Put stores chunk (exactly ChunkSize bytes) at slot. Putting the same
	// bytes again succeeds (republish); a backend that can detect different
	// bytes in a used slot returns ErrSlotUsed.
	Put(ctx context.Context, slot Slot, chunk []byte) error
	// Get returns the chunk stored at slot, or an error wrapping ErrNotFound.
	Get(ctx context.Context, slot Slot) ([]byte, error)
	// Close releases the store's resources.
	Close() error
}

// DeriveKey derives a backend-specific 32-byte value from a slot:
// SHA-256(slot ‖ label). Backends use labels such as "addr" (embedded file
// name), "id" and "owner" (Swarm), "ipns" (IPFS key seed); the ratchet uses
// "chunk" for the chunk encryption key. Distinct labels give unrelated values.
func DeriveKey(slot Slot, label string) [32]byte {
	h := sha256.New()
	h.Write(slot[:])
	h.Write([]byte(label))
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// CheckChunk returns ErrChunkSize, wrapped with the actual length, unless chunk
// is exactly ChunkSize bytes.
func CheckChunk(chunk []byte) error {
	if len(chunk) != ChunkSize {
		return fmt.Errorf("%w (got %d bytes)", ErrChunkSize, len(chunk))
	}
	return nil
}
