package sync

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// The change feed: every message that enters the history or changes (an
// outgoing one stored or delivered, an incoming one seen) gets the next
// change number, so that a client that was away (a chat app closed, a
// daemon client reconnecting) asks for everything after the last number it
// saw and misses nothing: Watch's channel and a poll's result live only as
// long as their caller.
//
// changes: change number (u64) → contact\0local; changeOf: contact\0local →
// its change number. A message keeps only its latest entry, so the feed is
// one entry per message, never more.
var (
	bucketChanges  = []byte("changes")
	bucketChangeOf = []byte("changeof")
)

func init() { allBuckets = append(allBuckets, bucketChanges, bucketChangeOf) }

// recordChange gives the message at key (contact\0local) the next change
// number, dropping its previous entry.
func recordChange(tx *bolt.Tx, key []byte) error {
	changes, of := tx.Bucket(bucketChanges), tx.Bucket(bucketChangeOf)
	// Change numbers only grow, and each contact's message keys too: fill
	// pages instead of splitting them half full.
	changes.FillPercent, of.FillPercent = 1, 0.9
	if old := of.Get(key); old != nil {
		if err := changes.Delete(old); err != nil {
			return err
		}
	}
	n, err := changes.NextSequence()
	if err != nil {
		return err
	}
	nk := binary.BigEndian.AppendUint64(nil, n)
	if err := changes.Put(nk, append([]byte(nil), key...)); err != nil {
		return err
	}
	return of.Put(append([]byte(nil), key...), nk)
}

// Change is one entry of the change feed: a message as it stands now, and
// the change number that names this version of it.
type Change struct {
	Cursor  uint64
	Message Message
}

// Changes returns the messages that entered the history or changed after
// change number after (0: every change this device recorded), oldest change
// first, at most limit of them (0: 1000), and the cursor to pass next time
// (the last one returned, or after itself when there is nothing new). A
// message changed twice since after appears once, as it stands now.
// Changes made before this device had the change feed are not in it.
func (a *Account) Changes(after uint64, limit int) ([]Change, uint64, error) {
	a.settle() // what Send returned is what this shows
	if limit <= 0 {
		limit = 1000
	}
	var out []Change
	next := after
	err := a.db.View(func(tx *bolt.Tx) error {
		messages := tx.Bucket(bucketMessages)
		c := tx.Bucket(bucketChanges).Cursor()
		for k, v := c.Seek(binary.BigEndian.AppendUint64(nil, after+1)); k != nil && len(out) < limit; k, v = c.Next() {
			contact, _, ok := splitContactKey(v)
			if !ok {
				return fmt.Errorf("%w: change %x names %x", ErrCorruptState, k, v)
			}
			m := new(messageRecord)
			if err := decodeRecord("message", messages.Get(v), m); err != nil {
				return err
			}
			n := binary.BigEndian.Uint64(k)
			out = append(out, Change{Cursor: n, Message: m.public(contact)})
			next = n
		}
		return nil
	})
	return out, next, err
}

// splitContactKey splits contact\0n.
func splitContactKey(k []byte) (string, uint64, bool) {
	if len(k) < 9 || k[len(k)-9] != 0 {
		return "", 0, false
	}
	return string(k[:len(k)-9]), binary.BigEndian.Uint64(k[len(k)-8:]), true
}

// LastChange returns the change number of the latest change: a cursor
// for Changes that skips everything before now.
func (a *Account) LastChange() (n uint64, err error) {
	a.settle()
	err = a.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketChanges).Sequence()
		return nil
	})
	return n, err
}
