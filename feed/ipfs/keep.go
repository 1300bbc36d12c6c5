package ipfs

import (
	"context"
	"fmt"
	"time"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/ipfs/boxo/ipns"
)

var _ feed.Keepable = (*Store)(nil)

// Sign implements feed.Keepable: the record Put stores for slot. Records are
// deterministic (fixed sequence, validity and TTL; Ed25519), so a keeper's
// re-put is byte for byte the device's own.
func (s *Store) Sign(slot feed.Slot, chunk []byte) (feed.Signed, error) {
	if err := feed.CheckChunk(chunk); err != nil {
		return feed.Signed{}, err
	}
	k := keyFor(slot)
	rec, err := buildRecord(k, chunk, RecordEOL)
	if err != nil {
		return feed.Signed{}, fmt.Errorf("ipfs: record for %v: %w", slot, err)
	}
	return feed.Signed{Name: k.name.String(), Data: rec}, nil
}

// VerifySigned implements feed.Keepable: r must be a valid, unexpired record
// signed by the key of its name and inline a whole chunk.
func (s *Store) VerifySigned(r feed.Signed) error { return VerifyRecord(r, time.Now()) }

// VerifyRecord checks a record the way a keeper must before it stores one.
func VerifyRecord(r feed.Signed, now time.Time) error {
	name, err := ipns.NameFromString(r.Name)
	if err != nil {
		return fmt.Errorf("ipfs: %w: %.60q is not an IPNS name", errBadRecord, r.Name)
	}
	if _, err := parseRecord(name, r.Data, now); err != nil {
		return fmt.Errorf("ipfs: record for %s: %w", r.Name, err)
	}
	return nil
}

// PutSigned implements feed.Keepable.
func (s *Store) PutSigned(ctx context.Context, r feed.Signed) error {
	name, err := ipns.NameFromString(r.Name)
	if err != nil {
		return fmt.Errorf("ipfs: %w: %.60q is not an IPNS name", errBadRecord, r.Name)
	}
	if err := s.RawPutRecord(ctx, name, r.Data); err != nil {
		return fmt.Errorf("ipfs: re-put %s: %w", r.Name, err)
	}
	return nil
}

// Lifetime implements feed.Keepable: the DHT forgets a record RecordExpiry
// after its last put.
func (s *Store) Lifetime(context.Context) (time.Duration, error) { return RecordExpiry, nil }
