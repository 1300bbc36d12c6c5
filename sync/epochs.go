package sync

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"

	"github.com/deaddrop/deaddrop/ratchet"
	bolt "go.etcd.io/bbolt"
)

// History epochs. The history key HK (from the phrase) derives every slot of
// the log and the directory, and seals the log's blocks of epoch 0. Removing a
// device starts a new epoch: a random key seals the blocks written from then
// on, and the device list that removes the device carries that key sealed to
// each remaining device's identity and to the recovery key (derived from the
// phrase; no device stores its private half). A removed device can still find
// the blocks (it knows HK) but cannot open the new ones.

// epochKeys maps an epoch to its key; epoch 0's is HK.
type epochKeys map[uint64][32]byte

// current returns the newest epoch and its key.
func (k epochKeys) current() (uint64, [32]byte) {
	var e uint64
	for n := range k {
		e = max(e, n)
	}
	return e, k[e]
}

func (k epochKeys) marshal() []byte {
	var b []byte
	for e, key := range k {
		b = binary.BigEndian.AppendUint64(b, e)
		b = append(b, key[:]...)
	}
	return b
}

func parseEpochKeys(b []byte) (epochKeys, error) {
	if len(b)%40 != 0 {
		return nil, fmt.Errorf("%w: epoch keys of %d bytes", ErrCorruptState, len(b))
	}
	k := epochKeys{}
	for ; len(b) > 0; b = b[40:] {
		k[binary.BigEndian.Uint64(b)] = [32]byte(b[8:40])
	}
	return k, nil
}

func saveEpochKeys(tx *bolt.Tx, k epochKeys) error {
	return tx.Bucket(bucketAccount).Put([]byte("epochs"), sealValue(k.marshal()))
}

// sealEpoch starts epoch l.Epoch+1 in list l: a fresh key sealed to every
// device l lists and to the recovery key. Whoever adopts l learns the key
// from it (learnEpochs).
func sealEpoch(l *DeviceList, rand io.Reader) error {
	var key [32]byte
	if _, err := io.ReadFull(rand, key[:]); err != nil {
		return err
	}
	rec, err := ratchet.ParsePublicIdentity(l.Recovery)
	if err != nil {
		return errors.New("device list without a recovery key")
	}
	l.Epoch++
	l.Keys = map[string][]byte{}
	if l.Keys["recovery"], err = ratchet.SealTo(rec, key[:], rand); err != nil {
		return err
	}
	for _, d := range l.Devices {
		if len(d.Seal) == 32 { // version 4: to its sealing key
			if l.Keys[d.ID], err = ratchet.SealToKey([32]byte(d.Seal), key[:], rand); err != nil {
				return err
			}
			continue
		}
		pub, _ := ratchet.ParsePublicIdentity(d.Identity) // version 3: to its identity
		if l.Keys[d.ID], err = ratchet.SealTo(pub, key[:], rand); err != nil {
			return err
		}
	}
	return nil
}

// learnEpochs adds the epoch keys that lists (in version order) carry for
// whoever opens with id under the name `as` (a device ID, or "recovery"). A
// device whose entry in the list has a sealing key (version 4) opens with
// the key derived from id (deviceSealKey), else with id itself.
func learnEpochs(k epochKeys, lists []*DeviceList, id *ratchet.Identity, as string) error {
	for _, l := range lists {
		if l.Epoch == 0 {
			continue
		}
		if _, ok := k[l.Epoch]; ok || len(l.Keys) == 0 {
			continue // known, or not the version that starts it
		}
		sealed, ok := l.Keys[as]
		if !ok {
			if as != "recovery" && l.find(as) == nil {
				continue // removed: the list is not for us
			}
			return fmt.Errorf("device list version %d starts history epoch %d without a key for %s", l.Version, l.Epoch, as)
		}
		var key []byte
		var err error
		if d := l.find(as); as != "recovery" && d != nil && len(d.Seal) != 0 {
			key, err = deviceSealKey(id).Open(sealed) // version 4: our sealing key
		} else {
			key, err = id.OpenSealed(sealed) // version 3, or the recovery key
		}
		if err != nil || len(key) != 32 {
			return fmt.Errorf("device list version %d: the history key of epoch %d does not open for %s", l.Version, l.Epoch, as)
		}
		k[l.Epoch] = [32]byte(key)
	}
	return nil
}

// epochKeys returns a copy of the account's epoch keys.
func (a *Account) epochKeys() epochKeys {
	a.epochMu.RLock()
	defer a.epochMu.RUnlock()
	return maps.Clone(a.epochs)
}

func (a *Account) setEpochs(k epochKeys) {
	a.epochMu.Lock()
	a.epochs = maps.Clone(k)
	a.epochMu.Unlock()
}
