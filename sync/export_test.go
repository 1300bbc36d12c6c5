package sync

import (
	"encoding/binary"

	"github.com/deaddrop/deaddrop/feed"
	bolt "go.etcd.io/bbolt"
)

// OutboxSlotForTest returns the slot of an outbox entry.
func OutboxSlotForTest(a *Account, contact string, seq uint64) (feed.Slot, bool) {
	var s feed.Slot
	var ok bool
	a.db.View(func(tx *bolt.Tx) error {
		data := tx.Bucket(bucketOutbox).Get(contactKey(contact, seq))
		rec := new(outboxRecord)
		if data != nil && decodeRecord("outbox", data, rec) == nil {
			s, ok = rec.slot(), true
		}
		return nil
	})
	return s, ok
}

// LinkAndJoinForTest links a device to a and joins it in dir, both sides
// at once.
var LinkAndJoinForTest = linkAndJoin

// JoinLinkForTest joins dir with lk's code while a waits for it.
var JoinLinkForTest = joinLink

// InlineOwnBlocksForTest rewrites a's own history blocks as state written
// before the block file existed held them: the chunk inline, in JSON.
func InlineOwnBlocksForTest(a *Account) error {
	return a.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketBlocks)
		type kv struct {
			k []byte
			r *blockRecord
		}
		var all []kv
		err := b.ForEach(func(k, v []byte) error {
			r, err := a.ownBlock(binary.BigEndian.Uint64(k), v)
			if err == nil {
				all = append(all, kv{append([]byte(nil), k...), r})
			}
			return err
		})
		if err != nil {
			return err
		}
		for _, e := range all {
			if err := putRecord(b, e.k, e.r); err != nil {
				return err
			}
		}
		return nil
	})
}
