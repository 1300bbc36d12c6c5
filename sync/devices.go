package sync

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

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
	ID       string `json:"id"` // 16 hex digits
	Name     string `json:"name"`
	Identity []byte `json:"identity"` // its ratchet identity, 64 bytes
	// Seal (protocol version 4) is the X25519 public key of the device's
	// sealing key (deviceSealKey): history epoch keys are sealed to it, not
	// to the identity. Absent on devices made by version 3.
	Seal  []byte    `json:"seal,omitempty"`
	Added time.Time `json:"added"`
}

// DeviceList is a version of an account's devices, signed by its identity.
type DeviceList struct {
	// Format is 4 for a list written under protocol version 4's key
	// separation (every device has a Seal, and no device's identity is the
	// account identity); absent (0) for version 3's.
	Format  int      `json:"format,omitempty"`
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
	// Ends, in a version that removes devices, gives the size and merkle
	// root of each removed device's history log: nothing after is read.
	Ends map[string]LogEnd `json:"ends,omitempty"`
}

// signedList is the wire form of a DeviceList.
type signedList struct {
	List listBytes `json:"list"` // JSON DeviceList, as signed
	Sig  []byte    `json:"sig"`  // account identity's signature of List
}

// listBytes is JSON embedded as it is: a list inside its signed form, a
// signed list inside a meta message or an announcement. Protocol version 2
// wrote these as base64 strings, which grew a list by a third at each level,
// and a list of five devices with its epoch keys past what a message holds.
// Both forms are read (device lists stored by version 2 are still around).
type listBytes []byte

func (b listBytes) MarshalJSON() ([]byte, error) {
	if len(b) == 0 {
		return []byte("null"), nil
	}
	return b, nil
}

func (b *listBytes) UnmarshalJSON(data []byte) error {
	switch {
	case string(data) == "null":
		*b = nil
	case data[0] == '"': // version 2
		var old []byte
		if err := json.Unmarshal(data, &old); err != nil {
			return err
		}
		*b = old
	case data[0] == '{':
		*b = bytes.Clone(data) // exactly as signed: never re-encoded
	default:
		return errors.New("device list is neither a JSON object nor base64")
	}
	return nil
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

func newDeviceID(rand io.Reader) (string, error) {
	b := make([]byte, deviceIDSize)
	if _, err := io.ReadFull(rand, b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

func signList(key *ratchet.Identity, l *DeviceList) ([]byte, error) {
	l.setFormat()
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
	if l.Format != 0 && l.Format != listFormat {
		return nil, fmt.Errorf("device list: format %d (this version reads %d and older): update deaddrop", l.Format, listFormat)
	}
	seen := map[string]bool{}
	for _, d := range l.Devices {
		if err := validDeviceID(d.ID); err != nil {
			return nil, fmt.Errorf("device list: %v", err)
		}
		if _, err := ratchet.ParsePublicIdentity(d.Identity); err != nil || seen[d.ID] {
			return nil, fmt.Errorf("device list: device %s is duplicated or has a bad identity", d.ID)
		}
		if len(d.Seal) != 0 && len(d.Seal) != 32 {
			return nil, fmt.Errorf("device list: device %s has a sealing key of %d bytes", d.ID, len(d.Seal))
		}
		if l.Format == listFormat {
			// Key separation: the account identity, which the phrase
			// yields, is never a device's session identity.
			if len(d.Seal) == 0 {
				return nil, fmt.Errorf("device list: format %d without a sealing key for device %s", listFormat, d.ID)
			}
			if bytes.Equal(d.Identity[:32], l.Account[:32]) || bytes.Equal(d.Identity[32:], l.Account[32:]) {
				return nil, fmt.Errorf("device list: format %d names the account identity as device %s", listFormat, d.ID)
			}
		}
		seen[d.ID] = true
	}
	return l, nil
}

// listFormat is the Format of lists with key separation (protocol version 4).
const listFormat = 4

// setFormat marks l as format 4 when every device it lists has a sealing
// key (and none is the account identity): an account with a device made by
// version 3 keeps writing version 3 lists until that device is gone.
func (l *DeviceList) setFormat() {
	l.Format = listFormat
	for _, d := range l.Devices {
		if len(d.Seal) != 32 || len(d.Identity) != 64 || len(l.Account) != 64 ||
			bytes.Equal(d.Identity[:32], l.Account[:32]) || bytes.Equal(d.Identity[32:], l.Account[32:]) {
			l.Format = 0
			return
		}
	}
}

// maxRemovedListed bounds how many removed devices a list names (the most
// recent): with every removal the list would grow until it no longer fit a
// message. A list names a removed device so that our devices read the end of
// its log; a restore or join reads every version, so it learns every device
// that ever had a log from the versions themselves (everLogged).
const maxRemovedListed = 8

// successor returns a copy of l to edit into its next version. It carries no
// epoch keys: only the version that starts an epoch does.
func (l *DeviceList) successor() *DeviceList {
	next := *l
	next.Devices = slices.Clone(l.Devices)
	next.Removed = slices.Clone(l.Removed)
	next.Keys = nil
	next.Ends = nil
	return &next
}

// remove takes devices off the list and names them as removed.
func (l *DeviceList) remove(ids ...string) {
	for _, id := range ids {
		l.Devices = slices.DeleteFunc(l.Devices, func(d Device) bool { return d.ID == id })
		l.Removed = append(slices.DeleteFunc(l.Removed, func(r string) bool { return r == id }), id)
	}
	if extra := len(l.Removed) - maxRemovedListed; extra > 0 {
		l.Removed = slices.Delete(l.Removed, 0, extra)
	}
}

// everLogged lists every device that has a log, from every version of the
// list read: current and removed ones, even those a list no longer names.
func everLogged(lists []*DeviceList) []string {
	var ids []string
	for _, l := range lists {
		for _, id := range logDevices(l) {
			if !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	return ids
}

// listFits checks that a signed list fits everywhere it travels: the
// tightest is a meta message (one ratchet message), then an announcement.
func listFits(signed []byte) error {
	meta, err := json.Marshal(metaBody{Device: strings.Repeat("0", 2*deviceIDSize), Account: make([]byte, 64), Ann: make([]byte, 32), List: signed})
	if err != nil {
		return err
	}
	if len(meta) > MaxMessageSize {
		return fmt.Errorf("the device list would be too large to send (%d bytes in a message of at most %d): use shorter device names", len(meta), MaxMessageSize)
	}
	return nil
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
	// Read its log to the end first: the new list records where it ends,
	// and nothing it writes after is read by anyone.
	if err := a.syncLog(ctx, a.fetchAll, gone.ID, nil); err != nil {
		a.problem(fmt.Errorf("reading the log of device %s before removing it: %w", gone.ID, err))
	}
	next := l.successor()
	next.remove(gone.ID)
	if err := a.recordEnds(next, []string{gone.ID}); err != nil {
		return nil, err
	}
	// What we log from now on, the removed device cannot open.
	if err := sealEpoch(next, a.opts.Rand); err != nil {
		return nil, err
	}
	if err := a.publishList(ctx, l, next); err != nil {
		return nil, err
	}
	a.announcements(ctx) // tell the contacts now; a failure is retried by the next Poll
	return &gone, nil
}
