package sync

import (
	"encoding/json"

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
