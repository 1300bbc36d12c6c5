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

// countMessages counts a contact's messages from the history. It reads
// only each record's header (direction and state), never the body; a
// record that does not decode is skipped (History reports it).
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

// messageHeader returns a message record's direction and state, decoding
// the binary form's header only (a JSON record from before it in full).
func messageHeader(v []byte) (Direction, MessageState, bool) {
	if len(v) > 0 && (v[0] == messageRecordV1 || v[0] == messageRecordV2) {
		r := &recordReader{b: v[1:]}
		r.uvarint()          // local
		r.bytes(r.uvarint()) // origin
		dir := Direction(r.byte())
		r.uvarint() // seq
		r.varint()  // sent
		r.uvarint()
		r.varint() // received
		r.uvarint()
		state := MessageState(r.byte())
		return dir, state, r.err == nil
	}
	m := new(messageRecord)
	if decodeRecord("message", v, m) != nil {
		return 0, 0, false
	}
	return m.Dir, m.State, true
}
