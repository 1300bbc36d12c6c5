package sync

import (
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
