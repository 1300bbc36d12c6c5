package feed

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
)

// BulkStore holds large opaque objects (the encrypted segments of an
// attachment) under references the store derives from their content: a
// Swarm /bytes reference, an IPFS CID, a SHA-256 on disk. Unlike a slot, a
// reference is not secret and not derived by the ratchet: whoever holds it
// can fetch the object, which is why what goes in is always ciphertext.
//
// Implementations must be safe for concurrent use, must stream (an object is
// never held whole in memory), and must never return bytes that differ from
// what was put under a reference without an error.
type BulkStore interface {
	// PutBulk stores everything r yields as one object and returns its
	// reference (at most MaxRefSize bytes). Putting the same bytes again
	// returns the same reference.
	PutBulk(ctx context.Context, r io.Reader) (ref []byte, err error)
	// GetBulk opens the object at ref. A reference to nothing fails here
	// with an error wrapping ErrNotFound; damage found while reading fails
	// Read with an error (ErrCorrupt where the store can tell), never EOF.
	GetBulk(ctx context.Context, ref []byte) (io.ReadCloser, error)
}

// MaxRefSize bounds a bulk reference: a Swarm reference is 32 bytes (64
// with Bee's own encryption, which deaddrop does not use), a CIDv1 of a
// SHA-256 digest 36.
const MaxRefSize = 64

// ErrBadRef reports a bulk reference that is malformed for its store.
var ErrBadRef = errors.New("feed: malformed bulk reference")

// CheckRef returns ErrBadRef unless ref has a length some store could give.
func CheckRef(ref []byte) error {
	if len(ref) == 0 || len(ref) > MaxRefSize {
		return fmt.Errorf("%w: %d bytes", ErrBadRef, len(ref))
	}
	return nil
}

// verifyingReader hashes what it passes on and, at EOF, turns a digest other
// than want into ErrCorrupt, so that a damaged object never ends in a clean
// EOF.
type verifyingReader struct {
	r    io.ReadCloser
	h    hash.Hash
	want [sha256.Size]byte
	err  error
}

func newVerifyingReader(r io.ReadCloser, want [sha256.Size]byte) *verifyingReader {
	return &verifyingReader{r: r, h: sha256.New(), want: want}
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	if errors.Is(err, io.EOF) {
		var got [sha256.Size]byte
		if v.h.Sum(got[:0]); got != v.want {
			err = fmt.Errorf("%w: object %x has digest %x", ErrCorrupt, v.want[:8], got[:8])
		}
	}
	v.err = err
	return n, err
}

func (v *verifyingReader) Close() error { return v.r.Close() }
