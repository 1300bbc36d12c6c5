package sync

import (
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

func (m *messageRecord) public(contact string) Message {
	return Message{ID: hex.EncodeToString(m.Origin), Contact: contact, Local: m.Local, Dir: m.Dir, Seq: m.Seq, Body: m.Body, Attachment: m.Attach,
		Sent: m.Sent, Received: m.Received, State: m.State, Seen: m.Seen}
}

// Query selects messages from a conversation's history.
type Query struct {
	Since, Until time.Time // by the sender's clock; zero: unbounded
	UnseenOnly   bool
	Limit        int // the last Limit matching messages; 0: all
}

// History returns a conversation's messages in order. An UnseenOnly query
// reads only the unseen messages, however long the history. A damaged
// record does not hide the others: they are returned, with an error wrapping
// ErrCorruptState that counts what was skipped.
func (a *Account) History(contact string, q Query) ([]Message, error) {
	a.settle() // what Send returned is what this shows
	var out []Message
	var damaged int
	var firstErr error
	err := a.db.View(func(tx *bolt.Tx) error {
		if _, err := loadContact(tx, contact); err != nil {
			return err
		}
		messages := tx.Bucket(bucketMessages)
		index := messages // scan the history itself…
		if q.UnseenOnly {
			index = tx.Bucket(bucketUnseen) // …or only the unseen index
		}
		p := contactPrefix(contact)
		c := index.Cursor()
		k, _ := c.Seek(p)
		next := c.Next
		if q.Limit > 0 {
			// The last Limit: read from the end of the conversation
			// backwards and stop there, so a page costs the same in
			// time and memory however long the history.
			k, next = historyLast(c, contact), c.Prev
		}
		for ; k != nil && hasPrefix(k, p); k, _ = next() {
			m := new(messageRecord)
			if err := decodeRecord("message", messages.Get(k), m); err != nil {
				if damaged++; firstErr == nil {
					firstErr = err
				}
				continue
			}
			if q.matches(m) {
				out = append(out, m.public(contact))
				if q.Limit > 0 && len(out) == q.Limit {
					break
				}
			}
		}
		if q.Limit > 0 {
			slices.Reverse(out)
		}
		return nil
	})
	if err == nil && damaged > 0 {
		err = fmt.Errorf("%d damaged message records of %s skipped (the first: %w)", damaged, contact, firstErr)
	}
	return out, err
}

func (q Query) matches(m *messageRecord) bool {
	switch {
	case q.UnseenOnly && m.Seen:
		return false
	case !q.Since.IsZero() && m.Sent.Before(q.Since):
		return false
	case !q.Until.IsZero() && !m.Sent.Before(q.Until):
		return false
	}
	return true
}

// MarkSeen marks incoming messages as shown to the user, so that "unseen"
// queries do not show them again, and logs it for our other devices.
func (a *Account) MarkSeen(msgs []Message) error {
	return a.db.Update(func(tx *bolt.Tx) error {
		receipts := map[string][][]byte{} // contact → origins newly seen
		var order []string
		for _, msg := range msgs {
			key := contactKey(msg.Contact, msg.Local)
			if err := tx.Bucket(bucketUnseen).Delete(key); err != nil {
				return err
			}
			if tx.Bucket(bucketMessages).Get(key) == nil {
				continue
			}
			m, err := messageByLocal(tx, msg.Contact, msg.Local)
			if err != nil {
				return err
			}
			changed, err := raiseMessage(tx, msg.Contact, m, 0, true)
			if err != nil {
				return err
			}
			if changed {
				if err := a.stage(tx, stateEntry(msg.Contact, m)); err != nil {
					return err
				}
				if m.Dir == Incoming {
					if receipts[msg.Contact] == nil {
						order = append(order, msg.Contact)
					}
					receipts[msg.Contact] = append(receipts[msg.Contact], m.Origin)
				}
			}
		}
		for _, contact := range order {
			if err := a.queueReceipts(tx, contact, receipts[contact]); err != nil {
				return err
			}
		}
		return a.packStaged(tx) // written to the store by the next Poll, Send or Republish
	})
}

// historyLast puts c on the last key of contact's prefix (nil if none).
func historyLast(c *bolt.Cursor, contact string) []byte {
	end := append([]byte(contact), 1) // the first key past contact\0…
	k, _ := c.Seek(end)
	if k == nil {
		k, _ = c.Last()
	} else {
		k, _ = c.Prev()
	}
	return k
}
