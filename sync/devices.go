package sync

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/ratchet"
	bolt "go.etcd.io/bbolt"
)

// Devices. An account is one person on up to MaxDevices devices. The account
// identity (derived from the recovery phrase) signs the device list; every
// device has its own ratchet identity and its own sessions with every device
// of every contact, so that a device can be removed without touching the
// others' keys. The device list travels to contacts on announcement feeds,
// and to our own devices on the directory: a chain of secret slots (derived
// from the history key) holding each version of the list.

// MaxDevices bounds an account's devices (Sesame fan-out costs one copy of
// every message per device).
const MaxDevices = 5

const deviceIDSize = 8

// Device is one device of an account.
type Device struct {
	ID       string    `json:"id"` // 16 hex digits
	Name     string    `json:"name"`
	Identity []byte    `json:"identity"` // its ratchet identity, 64 bytes
	Added    time.Time `json:"added"`
}

// DeviceList is a version of an account's devices, signed by its identity.
type DeviceList struct {
	Account []byte   `json:"account"` // the account identity, 64 bytes
	Name    string   `json:"name"`    // the account's display name
	Version uint64   `json:"version"` // from 1, +1 per change
	Devices []Device `json:"devices"`
	Removed []string `json:"removed,omitempty"` // IDs of removed devices
	// Recovery is the recovery key's public identity (64 bytes): history
	// keys are sealed to it, and only the phrase opens them.
	Recovery []byte `json:"recovery"`
	// Epoch is the history epoch this version is in; a version that starts
	// one carries its key sealed to each device (by ID) and to "recovery".
	Epoch uint64            `json:"epoch,omitempty"`
	Keys  map[string][]byte `json:"keys,omitempty"`
}

// signedList is the wire form of a DeviceList.
type signedList struct {
	List []byte `json:"list"` // JSON DeviceList
	Sig  []byte `json:"sig"`  // account identity's signature of List
}

var (
	// ErrForgedList reports a device list not signed by the account.
	ErrForgedList = errors.New("device list is not signed by the account identity")
	// ErrNoAccountKey reports a device-list change on a linked device.
	ErrNoAccountKey = errors.New("this device does not hold the account key: link and remove devices on the first device, or one restored from the recovery phrase")
	// ErrDeviceRemoved reports that this device was removed from its account.
	ErrDeviceRemoved = errors.New("this device was removed from the account")
	// ErrNoHistory reports a history or device operation on an account
	// created with history off.
	ErrNoHistory = errors.New("this account keeps no history log (created with history off)")
)

func validDeviceID(s string) error {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != deviceIDSize {
		return fmt.Errorf("invalid device ID %q: want %d hex digits", s, 2*deviceIDSize)
	}
	return nil
}

func newDeviceID() string {
	b := make([]byte, deviceIDSize)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func signList(key *ratchet.Identity, l *DeviceList) ([]byte, error) {
	body, err := json.Marshal(l)
	if err != nil {
		return nil, err
	}
	return json.Marshal(signedList{List: body, Sig: key.Sign(append([]byte("deaddrop device list\x00"), body...))})
}

// verifyList checks a signed device list against the account identity and
// returns it. Errors name what is wrong.
func verifyList(signed []byte, account ratchet.PublicIdentity) (*DeviceList, error) {
	var s signedList
	if err := json.Unmarshal(signed, &s); err != nil {
		return nil, fmt.Errorf("device list: %v", err)
	}
	if !account.Verify(append([]byte("deaddrop device list\x00"), s.List...), s.Sig) {
		return nil, ErrForgedList
	}
	l := new(DeviceList)
	if err := json.Unmarshal(s.List, l); err != nil {
		return nil, fmt.Errorf("device list: %v", err)
	}
	switch {
	case !bytes.Equal(l.Account, account.Bytes()):
		return nil, fmt.Errorf("%w (it names another account)", ErrForgedList)
	case l.Version == 0:
		return nil, errors.New("device list: version 0")
	case len(l.Devices) == 0 || len(l.Devices) > MaxDevices:
		return nil, fmt.Errorf("device list: %d devices (1 to %d allowed)", len(l.Devices), MaxDevices)
	case len(l.Recovery) != 64:
		return nil, errors.New("device list: no recovery key")
	}
	seen := map[string]bool{}
	for _, d := range l.Devices {
		if err := validDeviceID(d.ID); err != nil {
			return nil, fmt.Errorf("device list: %v", err)
		}
		if _, err := ratchet.ParsePublicIdentity(d.Identity); err != nil || seen[d.ID] {
			return nil, fmt.Errorf("device list: device %s is duplicated or has a bad identity", d.ID)
		}
		seen[d.ID] = true
	}
	return l, nil
}

func (l *DeviceList) find(id string) *Device {
	for i := range l.Devices {
		if l.Devices[i].ID == id {
			return &l.Devices[i]
		}
	}
	return nil
}

// DeviceInfo describes one device of the account for listing.
type DeviceInfo struct {
	Device
	This bool // the device this account runs on
}

// Devices lists the account's devices, newest list version first known here.
func (a *Account) Devices() ([]DeviceInfo, uint64, error) {
	if !a.historyOn {
		return nil, 0, ErrNoHistory
	}
	l, err := a.deviceList()
	if err != nil {
		return nil, 0, err
	}
	var out []DeviceInfo
	for _, d := range l.Devices {
		out = append(out, DeviceInfo{d, d.ID == a.device})
	}
	return out, l.Version, nil
}

// DeviceID returns this device's ID.
func (a *Account) DeviceID() string { return a.device }

func (a *Account) deviceList() (*DeviceList, error) {
	var signed []byte
	err := a.db.View(func(tx *bolt.Tx) (err error) {
		signed, err = a.signedDeviceList(tx)
		return err
	})
	if err != nil {
		return nil, err
	}
	return verifyList(signed, a.accountPub)
}

func (a *Account) signedDeviceList(tx *bolt.Tx) ([]byte, error) {
	return openValue("device list", tx.Bucket(bucketAccount).Get([]byte("devices")))
}

// publishList signs and adopts a new version of the device list and writes
// it to the directory. The directory is write-once per version, so two
// devices changing the list at once cannot both win: the loser gets an error
// and changes nothing.
func (a *Account) publishList(ctx context.Context, l *DeviceList) error {
	if a.accountKey == nil {
		return ErrNoAccountKey
	}
	// Versions are read from 1 up: the first one, written lazily after
	// Create, must be there before the next.
	if err := a.flushDirectory(ctx); err != nil {
		return err
	}
	signed, err := signList(a.accountKey, l)
	if err != nil {
		return err
	}
	chunk, err := a.putDirectory(ctx, l.Version, signed)
	if errors.Is(err, feed.ErrSlotUsed) {
		return errors.New("the device list was changed on another device at the same time: run 'deaddrop read' and try again")
	}
	if err != nil {
		return err
	}
	return a.adoptLists([]*DeviceList{l}, map[uint64][]byte{l.Version: chunk}, signed)
}

// putDirectory seals a signed device list into the directory slot of its
// version and writes it; it returns the chunk.
func (a *Account) putDirectory(ctx context.Context, version uint64, signed []byte) ([]byte, error) {
	chunk, err := sealContent(secretKey("directory", a.history[:]), directoryAD(version), signed, a.opts.Rand)
	if err != nil {
		return nil, fmt.Errorf("device list too large: %w", err)
	}
	if err := a.tr.Put(ctx, directorySlot(a.history[:], version), chunk); err != nil {
		return nil, fmt.Errorf("writing the device list: %w", err)
	}
	return chunk, nil
}

// adoptLists learns the history keys that lists (in version order) start,
// keeps their directory chunks and adopts signed as our device list, in one
// transaction: a crash in between must not lose a key.
func (a *Account) adoptLists(lists []*DeviceList, chunks map[uint64][]byte, signed []byte) error {
	keys := a.epochKeys()
	if err := learnEpochs(keys, lists, a.id, a.device); err != nil {
		return err
	}
	err := a.db.Update(func(tx *bolt.Tx) error {
		if err := saveEpochKeys(tx, keys); err != nil {
			return err
		}
		return keepDirectory(tx, chunks, signed)
	})
	if err == nil {
		a.setEpochs(keys)
	}
	return err
}

func directorySlot(history []byte, version uint64) feed.Slot {
	return secretSlot("directory", history, u64(version))
}

func directoryAD(version uint64) []byte {
	return append([]byte("deaddrop directory\x00"), u64(version)...)
}

// directoryRead is what fetchDirectory found: the newest list and the
// chunk of every version read, kept so that a republish can put them back.
type directoryRead struct {
	list   *DeviceList // the newest; nil: nothing after the version asked for
	signed []byte
	chunks map[uint64][]byte
	lists  []*DeviceList // every version read, in order
}

// fetchDirectory reads the device lists after version `after`, verified and
// version-checked.
func fetchDirectory(ctx context.Context, get func(context.Context, feed.Slot) ([]byte, error), history []byte, account ratchet.PublicIdentity, after uint64) (*directoryRead, error) {
	d := &directoryRead{chunks: map[uint64][]byte{}}
	for v := after + 1; ; v++ {
		chunk, err := get(ctx, directorySlot(history, v))
		if errors.Is(err, feed.ErrNotFound) {
			return d, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading the device list: %w", err)
		}
		signed, err := openContent(secretKey("directory", history), directoryAD(v), chunk)
		if err != nil {
			return nil, fmt.Errorf("device list version %d: %w", v, err)
		}
		l, err := verifyList(signed, account)
		if err != nil {
			return nil, fmt.Errorf("device list version %d: %w", v, err)
		}
		if l.Version != v {
			return nil, fmt.Errorf("device list in slot of version %d says version %d", v, l.Version)
		}
		d.list, d.signed, d.chunks[v] = l, signed, chunk
		d.lists = append(d.lists, l)
	}
}

// keepDirectory stores directory chunks and, if signed is set, adopts it as
// our device list.
func keepDirectory(tx *bolt.Tx, chunks map[uint64][]byte, signed []byte) error {
	for v, c := range chunks {
		if err := tx.Bucket(bucketDirectory).Put(u64(v), sealValue(c)); err != nil {
			return err
		}
	}
	if signed == nil {
		return nil
	}
	return tx.Bucket(bucketAccount).Put([]byte("devices"), sealValue(signed))
}

// republishDirectory puts every directory chunk this device knows again.
func (a *Account) republishDirectory(ctx context.Context) error {
	return a.putListed(ctx, "device list", a.directoryChunks)
}

// syncDirectory adopts newer versions of our device list.
func (a *Account) syncDirectory(ctx context.Context) error {
	return a.syncDirectoryWith(ctx, a.fetchAll)
}

func (a *Account) syncDirectoryWith(ctx context.Context, get fetcher) error {
	cur, err := a.deviceList()
	if err != nil {
		return err
	}
	d, err := fetchDirectory(ctx, one(get), a.history[:], a.accountPub, cur.Version)
	if err != nil || d.list == nil {
		if err == nil && cur.find(a.device) == nil {
			return ErrDeviceRemoved
		}
		return err
	}
	if d.list.find(a.device) == nil {
		a.db.Update(func(tx *bolt.Tx) error { return keepDirectory(tx, d.chunks, d.signed) })
		return ErrDeviceRemoved
	}
	return a.adoptLists(d.lists, d.chunks, d.signed)
}

// RemoveDevice removes a device (by ID or name) from the account: contacts'
// devices drop their sessions with it when they read the new list, and our
// other devices stop reading its log. It must run on a device with the
// account key.
func (a *Account) RemoveDevice(ctx context.Context, which string) (*Device, error) {
	if !a.historyOn {
		return nil, ErrNoHistory
	}
	if err := a.syncDirectory(ctx); err != nil {
		return nil, err
	}
	l, err := a.deviceList()
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(l.Devices, func(d Device) bool { return d.ID == which || d.Name == which })
	switch {
	case i < 0:
		return nil, fmt.Errorf("no device %q in the account (see 'deaddrop device list')", which)
	case l.Devices[i].ID == a.device:
		return nil, errors.New("this is the device you are on: remove it from another device")
	}
	gone := l.Devices[i]
	l.Devices = slices.Delete(l.Devices, i, i+1)
	l.Removed = append(l.Removed, gone.ID)
	l.Version++
	// What we log from now on, the removed device cannot open.
	if _, err := sealEpoch(l); err != nil {
		return nil, err
	}
	if err := a.publishList(ctx, l); err != nil {
		return nil, err
	}
	a.announcements(ctx) // tell the contacts now; a failure is retried by the next Poll
	return &gone, nil
}
