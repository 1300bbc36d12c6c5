package sync

import (
	"bytes"

	bolt "go.etcd.io/bbolt"
)

// MessageCounts counts the user's messages of one conversation, those its
// history holds (text, long text and file messages), never the protocol
// messages that carry them (acks, hellos, meta, receipts), which
// Contact.Sent, PeerAcked and Received count.
type MessageCounts struct {
	Sent      int // outgoing messages
	Delivered int // of them, acknowledged by a device of the contact (read ones included)
	Read      int // of them, seen by the contact (a read receipt)
	Received  int // incoming messages
}

// countMessages counts a contact's messages from the history; a record that
// does not decode is skipped (History reports it).
func countMessages(tx *bolt.Tx, contact string) MessageCounts {
	var n MessageCounts
	prefix := contactPrefix(contact)
	cur := tx.Bucket(bucketMessages).Cursor()
	for k, v := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = cur.Next() {
		dir, state, ok := messageHeader(v)
		if !ok {
			continue
		}
		switch {
		case dir == Incoming:
			n.Received++
		case dir == Outgoing:
			n.Sent++
			if state == Read || state == PeerRead {
				n.Delivered++
			}
			if state == PeerRead {
				n.Read++
			}
		}
	}
	return n
}

// messageHeader returns a message record's direction and state. It decodes
// the record as every reader does (decodeRecord: checksum, either form,
// validation), so the counts never read a record History would refuse.
func messageHeader(v []byte) (Direction, MessageState, bool) {
	m := new(messageRecord)
	if decodeRecord("message", v, m) != nil {
		return 0, 0, false
	}
	return m.Dir, m.State, true
}
