package sync

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Idempotent sends. A client that retries a send after an error (a timeout,
// a crash, a cancelled context) cannot tell whether the first attempt was
// committed; Matrix solves this with a transaction ID the client picks. Here
// the caller passes its own ClientID and the account remembers, in the
// clientids bucket, which message each ID became: a send repeating an ID
// returns that message instead of writing a second one.
//
// The mapping is this device's: another device of the account does not know
// the IDs its sibling saw. It is kept for as long as the message.

// bucketClientIDs maps contact\0clientID → local (the message it became).
var bucketClientIDs = []byte("clientids")

func init() { allBuckets = append(allBuckets, bucketClientIDs) }

// MaxClientIDSize is the longest ClientID in bytes.
const MaxClientIDSize = 128

// ErrClientIDReused reports a ClientID used before for a different body.
var ErrClientIDReused = errors.New("client ID already used for a different message")

// SendOptions tunes SendWith.
type SendOptions struct {
	// ClientID, if set, makes the send idempotent: a later send to the same
	// contact with the same ClientID returns the message the first one
	// created (its current state) and sends nothing.
	ClientID string
}

func clientIDKey(contact, id string) []byte {
	return append(contactPrefix(contact), id...)
}

// sentWithClientID returns the message an earlier send with the same client
// ID created, or nil.
func sentWithClientID(tx *bolt.Tx, contact, id, body string) (*messageRecord, error) {
	v := tx.Bucket(bucketClientIDs).Get(clientIDKey(contact, id))
	if v == nil {
		return nil, nil
	}
	if len(v) != 8 {
		return nil, fmt.Errorf("%w: client ID %q of %s: entry of %d bytes", ErrCorruptState, id, contact, len(v))
	}
	m, err := messageByLocal(tx, contact, binary.BigEndian.Uint64(v))
	if err != nil {
		return nil, err
	}
	if m.Body != body {
		return nil, fmt.Errorf("%w: %q", ErrClientIDReused, id)
	}
	return m, nil
}

func rememberClientID(tx *bolt.Tx, contact, id string, local uint64) error {
	return tx.Bucket(bucketClientIDs).Put(clientIDKey(contact, id), binary.BigEndian.AppendUint64(nil, local))
}

func checkClientID(id string) error {
	if len(id) > MaxClientIDSize {
		return fmt.Errorf("client ID of %d bytes (the limit is %d)", len(id), MaxClientIDSize)
	}
	if bytes.IndexByte([]byte(id), 0) >= 0 {
		return errors.New("client ID contains a NUL byte")
	}
	return nil
}

// resend answers a send whose client ID was seen: the message as it stands
// once the finisher recorded the first attempt's puts, and ErrNotStored while
// no copy has been stored yet (Republish retries it, as for the first try).
func (a *Account) resend(contact string, local uint64) (Message, error) {
	a.settle()
	var pub Message
	err := a.db.View(func(tx *bolt.Tx) error {
		m, err := messageByLocal(tx, contact, local)
		if err == nil {
			pub = m.public(contact)
		}
		return err
	})
	if err != nil {
		return Message{}, err
	}
	if pub.State == Queued {
		return pub, fmt.Errorf("%w: sent before with the same client ID", ErrNotStored)
	}
	return pub, nil
}
