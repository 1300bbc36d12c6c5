package sync

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// ContactDevices is a contact's devices as the newest signed device list of
// theirs known here says.
type ContactDevices struct {
	Contact string
	Version uint64   // 0: no list of theirs arrived yet (or they keep no history)
	Devices []Device // empty while Version is 0
}

// AllContactDevices returns every contact's newest device list known here,
// sorted by contact name. The lists were verified against the contact's
// account identity when adopted; they are not verified again.
func (a *Account) AllContactDevices() ([]ContactDevices, error) {
	a.settle()
	var out []ContactDevices
	err := a.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketContacts).ForEach(func(k, v []byte) error {
			c := new(contactRecord)
			if err := decodeRecord("contact "+string(k), v, c); err != nil {
				return err
			}
			cd := ContactDevices{Contact: c.Name}
			if len(c.PeerList) != 0 {
				var s signedList
				l := new(DeviceList)
				if json.Unmarshal(c.PeerList, &s) == nil && json.Unmarshal(s.List, l) == nil {
					cd.Version, cd.Devices = l.Version, l.Devices
				}
			}
			out = append(out, cd)
			return nil
		})
	})
	return out, err
}

// ErrNoMessage reports a message ID that names no message in the history.
var ErrNoMessage = errors.New("no such message")

// MessageByID finds a message by its Message.ID (32 hex digits, the same on
// every device of both parties), in whichever conversation holds it.
func (a *Account) MessageByID(id string) (Message, error) {
	origin, err := hex.DecodeString(id)
	if err != nil || len(origin) == 0 {
		return Message{}, fmt.Errorf("%w: %q is not a message ID", ErrNoMessage, id)
	}
	a.settle()
	var out Message
	found := false
	err = a.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketContacts).ForEach(func(k, _ []byte) error {
			if found {
				return nil
			}
			m, err := messageByOrigin(tx, string(k), origin)
			if err != nil || m == nil {
				return err
			}
			out, found = m.public(string(k)), true
			return nil
		})
	})
	if err == nil && !found {
		err = fmt.Errorf("%w: %s", ErrNoMessage, id)
	}
	return out, err
}
