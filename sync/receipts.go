package sync

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// Read receipts, off unless the account turns them on (SetReadReceipts):
// when the user has seen incoming messages (MarkSeen), the account tells the
// contact's devices which, in the body of an ack-only message:
//
//	"seen" (" " origin-in-hex)…
//
// An ack's body was always empty and readers before this ignore it, so the
// receipts need no new envelope kind or version. The reader of a receipt
// raises the messages it names to PeerRead. Delivery (Read: a device of the
// contact acknowledged the message) and reading are thus separate; a contact
// who keeps receipts off is never shown as having read anything.

// PeerRead: the contact has seen the message (a read receipt came back).
const PeerRead MessageState = 5

const receiptWord = "seen"

// receiptOrigins is how many origins fit in one receipt body.
const receiptOrigins = (MaxMessageSize - len(receiptWord)) / (1 + 2*originSize)

var keyReadReceipts = []byte("readreceipts")

// SetReadReceipts turns sending read receipts on or off for this device.
// It changes what this device sends from now on, not what it shows: the
// receipts contacts send are always shown.
func (a *Account) SetReadReceipts(on bool) error {
	return a.db.Update(func(tx *bolt.Tx) error {
		if on {
			return tx.Bucket(bucketAccount).Put(keyReadReceipts, marker)
		}
		return tx.Bucket(bucketAccount).Delete(keyReadReceipts)
	})
}

// ReadReceipts reports whether this device sends read receipts.
func (a *Account) ReadReceipts() (on bool, err error) {
	err = a.db.View(func(tx *bolt.Tx) error {
		on = tx.Bucket(bucketAccount).Get(keyReadReceipts) != nil
		return nil
	})
	return on, err
}

// queueReceipts queues receipts for the given incoming messages of contact
// on every session with the contact's devices (Republish puts them).
func (a *Account) queueReceipts(tx *bolt.Tx, contact string, origins [][]byte) error {
	if len(origins) == 0 || tx.Bucket(bucketAccount).Get(keyReadReceipts) == nil {
		return nil
	}
	sessions, err := sessionsOf(tx, contact)
	if err != nil {
		return err
	}
	for len(origins) > 0 {
		n := min(len(origins), receiptOrigins)
		var b strings.Builder
		b.WriteString(receiptWord)
		for _, o := range origins[:n] {
			b.WriteString(" ")
			b.WriteString(hex.EncodeToString(o))
		}
		origins = origins[n:]
		for _, conv := range sessions {
			s, err := loadSession(conv)
			if err != nil {
				return err
			}
			if _, err := a.queue(tx, conv, s, KindAck, []byte(b.String()), nil); err != nil {
				return err
			}
			if err := saveConv(tx, conv, s); err != nil {
				return err
			}
		}
	}
	return nil
}

// handleReceipt raises our messages a receipt names to PeerRead. Origins
// that name no outgoing message of this contact are ignored: a contact can
// only mark what we sent them.
func (a *Account) handleReceipt(tx *bolt.Tx, conv *convRecord, body []byte) error {
	fields := bytes.Fields(body)
	if len(fields) == 0 || string(fields[0]) != receiptWord {
		return nil // not a receipt: some later extension
	}
	for _, f := range fields[1:] {
		origin, err := hex.DecodeString(string(f))
		if err != nil || len(origin) != originSize {
			return fmt.Errorf("read receipt: bad message origin %q", f)
		}
		m, err := messageByOrigin(tx, conv.Contact, origin)
		if err != nil {
			return err
		}
		if m == nil || m.Dir != Outgoing {
			continue
		}
		if _, err := raiseMessage(tx, conv.Contact, m, PeerRead, false); err != nil {
			return err
		}
	}
	return nil
}
