package sync

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/deaddrop/deaddrop/feed"
	bolt "go.etcd.io/bbolt"
)

// A chunk this device wrote is kept alive by whoever puts it again before
// the network forgets it: this device (RepublishAll) or a keeper that holds
// only the chunks' signed records. These are the chunks a reader may still
// need when every device of the account is gone.

// Kept calls keep with every chunk this device must keep in the store for as
// long as the account lives: messages the peer has not acknowledged, the
// announcements it wrote, every device-list version it knows and every block
// of its own history log. keep runs inside a read transaction: it must not
// do network I/O.
func (a *Account) Kept(keep func(slot feed.Slot, chunk []byte) error) error {
	a.settlePacked() // the history block of a message Send just returned is kept too
	return a.db.View(func(tx *bolt.Tx) error {
		return errors.Join(
			outboxChunks(tx, keep),
			announcementChunks(tx, keep),
			a.directoryChunks(tx, keep),
			a.logChunks(tx, keep),
		)
	})
}

func outboxChunks(tx *bolt.Tx, keep func(feed.Slot, []byte) error) error {
	return tx.Bucket(bucketOutbox).ForEach(func(_, v []byte) error {
		rec := new(outboxRecord)
		if err := decodeRecord("outbox entry", v, rec); err != nil {
			return err
		}
		return keep(rec.slot(), rec.Chunk)
	})
}

// announcementChunks lists the announcements this device wrote to contacts
// it still has.
func announcementChunks(tx *bolt.Tx, keep func(feed.Slot, []byte) error) error {
	return tx.Bucket(bucketAnnounced).ForEach(func(k, v []byte) error {
		chunk, err := openValue("announcement", v)
		if err != nil {
			return err
		}
		c, err := loadContact(tx, contactOf(k))
		if errors.Is(err, ErrUnknownContact) {
			return nil
		}
		if err != nil {
			return err
		}
		return keep(annSlot(c.myFeed(), binary.BigEndian.Uint64(k[len(k)-8:])), chunk)
	})
}

// logChunks lists every block of this device's own history log.
func (a *Account) logChunks(tx *bolt.Tx, keep func(feed.Slot, []byte) error) error {
	if !a.historyOn {
		return nil
	}
	keys := a.epochKeys()
	return tx.Bucket(bucketBlocks).ForEach(func(k, v []byte) error {
		index := binary.BigEndian.Uint64(k)
		r, err := a.ownBlock(index, v)
		if err != nil {
			return err
		}
		key, err := keys.sealedUnder(index, r)
		if err != nil {
			return err
		}
		return keep(logSlot(key[:], a.device, index), r.Chunk)
	})
}

// putListed puts again every chunk a listing yields; a slot that already
// holds it (or, on a write-once store, anything) is not an error.
func (a *Account) putListed(ctx context.Context, what string, list func(*bolt.Tx, func(feed.Slot, []byte) error) error) error {
	type kept struct {
		slot  feed.Slot
		chunk []byte
	}
	var all []kept
	err := a.db.View(func(tx *bolt.Tx) error {
		return list(tx, func(s feed.Slot, c []byte) error { all = append(all, kept{s, c}); return nil })
	})
	if err != nil {
		return err
	}
	var errs []error
	for _, k := range all {
		if err := a.tr.Put(ctx, k.slot, k.chunk); err != nil && !errors.Is(err, feed.ErrSlotUsed) {
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
		}
	}
	return errors.Join(errs...)
}
