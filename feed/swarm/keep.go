package swarm

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/deaddrop/deaddrop/feed"
)

var _ feed.Keepable = (*Store)(nil)

// Sign implements feed.Keepable: the single-owner chunk Put uploads for
// slot, named by its address in hex.
func (s *Store) Sign(slot feed.Slot, chunk []byte) (feed.Signed, error) {
	if err := feed.CheckChunk(chunk); err != nil {
		return feed.Signed{}, err
	}
	soc, addr := BuildSOC(slot, chunk)
	return feed.Signed{Name: hex.EncodeToString(addr[:]), Data: soc}, nil
}

// VerifySigned implements feed.Keepable. A keeper knows no slot, so the
// owner is not compared with a slot's: it is whoever the signature
// recovers, and the name must be that owner's address for the chunk's id.
// Anyone can sign a chunk for an address of their own, but none for
// someone else's.
func (s *Store) VerifySigned(r feed.Signed) error {
	name, err := hex.DecodeString(r.Name)
	if err != nil || len(name) != 32 {
		return fmt.Errorf("swarm: %w: name %q is not a chunk address", errBadSOC, r.Name)
	}
	b := r.Data
	if len(b) != socSize {
		return fmt.Errorf("swarm: %w: %d bytes, want %d", errBadSOC, len(b), socSize)
	}
	var id [32]byte
	copy(id[:], b[:idSize])
	span := binary.LittleEndian.Uint64(b[idSize+sigSize:])
	if span != feed.ChunkSize {
		return fmt.Errorf("swarm: %w: span %d, want %d", errBadSOC, span, feed.ChunkSize)
	}
	owner, err := recoverOwner(b[idSize:idSize+sigSize], id, bmtHash(span, b[idSize+sigSize+spanSize:]))
	if err != nil {
		return fmt.Errorf("swarm: %w: %v", errBadSOC, err)
	}
	if addr := socAddress(id, owner); !bytes.Equal(addr[:], name) {
		return fmt.Errorf("swarm: %w: signed for address %x, not %s", errBadSOC, addr, r.Name)
	}
	return nil
}

// PutSigned implements feed.Keepable: the same bytes, stamped again with
// this store's batch, which is what keeps a chunk alive on Swarm.
func (s *Store) PutSigned(ctx context.Context, r feed.Signed) error {
	if err := s.VerifySigned(r); err != nil {
		return err
	}
	if err := s.putSOC(ctx, r.Data); err != nil {
		return fmt.Errorf("swarm: put again %s: %w", r.Name, err)
	}
	return nil
}

// Lifetime implements feed.Keepable: zero, because putting a chunk again
// with the same batch does not extend its life — it lives as long as the
// batch that stamped it, which is topped up instead (PostageTTL,
// ExtendPostage; a keeper re-stamps with its own batch).
func (s *Store) Lifetime(context.Context) (time.Duration, error) { return 0, nil }
