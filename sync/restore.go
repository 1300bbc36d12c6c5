package sync

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/deaddrop/deaddrop/ratchet"
	"github.com/deaddrop/deaddrop/transport"
	bolt "go.etcd.io/bbolt"
)

// RestoreStats reports what a restore or a device join read.
type RestoreStats struct {
	Devices  int           // history logs read
	Blocks   int           // history blocks read
	Contacts int           // contacts restored
	Messages int           // messages restored
	Duration time.Duration // wall time of the whole restore
	// Evicted lists the devices a restore removed to make room for itself
	// (the account had MaxDevices): unused ones first, then the oldest.
	Evicted []Device
	// Problems lists what was skipped: directory slots holding junk.
	Problems []error

	logBlocks map[string]int // blocks per device's log
}

// Restore makes dir a new device of the account whose recovery phrase is
// given, from the store alone: every old device may be gone. It reads the
// account's device list and every device's history log, rebuilds the whole
// history in order, adds itself to the device list, and asks each contact's
// devices for new sessions, so that their next messages reach it. The phrase
// always restores: if the account has MaxDevices devices, the restore
// removes what it must (devices that never logged anything, such as
// abandoned restores, first; then the oldest) and says so in Evicted. On
// any error dir is left without an account and nothing on the store changes.
func Restore(ctx context.Context, dir, phrase, deviceName string, tr transport.Transport, opts Options) (*Account, *RestoreStats, error) {
	start := time.Now()
	opts.fill()
	seed, err := parsePhrase(phrase)
	if err != nil {
		return nil, nil, err
	}
	keys, err := deriveKeys(seed)
	if err != nil {
		return nil, nil, err
	}
	r := &dirReader{get: tr.Get, account: keys.identity.Public(), keys: epochKeys{0: keys.history}, id: keys.recovery, as: "recovery"}
	d, err := r.read(ctx, 0, 0, 0)
	if err != nil {
		return nil, nil, err
	}
	l := d.list
	if l == nil {
		return nil, nil, errors.New("no account found on this store for this recovery phrase (a wrong phrase, or another store?)")
	}
	st, dev, err := newDeviceState(l, deviceName, opts)
	if err != nil {
		return nil, nil, err
	}
	st.AccountKey, st.Key, st.Directory, st.Epochs, st.List = keys.identity, keys.history, d.chunks, r.keys, d.signed
	a, stats, err := bootstrap(ctx, dir, tr, opts, st, d.lists, func(a *Account, stats *RestoreStats) error {
		if err := a.db.Update(func(tx *bolt.Tx) error { return saveDirectorySkip(tx, d.skip) }); err != nil {
			return err
		}
		next := l.successor()
		if stats.Evicted = evictions(l, stats.logBlocks); len(stats.Evicted) > 0 {
			for _, e := range stats.Evicted {
				next.remove(e.ID)
				if err := a.recordEnds(next, []string{e.ID}); err != nil {
					return err
				}
			}
			next.Devices = append(next.Devices, *dev)
			// The evicted devices may be lost, not just unused: what the
			// account logs from now on must not open for them.
			if err := sealEpoch(next, opts.Rand); err != nil {
				return err
			}
		} else {
			next.Devices = append(next.Devices, *dev)
		}
		return a.publishList(ctx, l, next)
	})
	if err != nil {
		return nil, nil, err
	}
	a.announcements(ctx) // a failure is retried by the next Poll
	stats.Problems = append(d.junk, a.takeProblems()...)
	stats.Duration = time.Since(start)
	return a, stats, nil
}

// evictions picks the devices a restore removes from a full list l to make
// room for itself: those whose logs are empty (blocks per device) first —
// abandoned restores and links never used — then the oldest.
func evictions(l *DeviceList, blocks map[string]int) []Device {
	need := len(l.Devices) - (MaxDevices - 1)
	if need <= 0 {
		return nil
	}
	// A list appends each device it adds, so its order is their age (the
	// devices' clocks, in Added, may disagree).
	byUse := slices.Clone(l.Devices)
	slices.SortStableFunc(byUse, func(x, y Device) int {
		return cmp.Compare(min(blocks[x.ID], 1), min(blocks[y.ID], 1))
	})
	return byUse[:need]
}

// newDeviceState makes the keys of a new device of the account whose list
// is l.
func newDeviceState(l *DeviceList, deviceName string, opts Options) (*accountState, *Device, error) {
	if deviceName == "" {
		deviceName = "device"
	}
	if err := ValidName(deviceName); err != nil {
		return nil, nil, fmt.Errorf("device name: %w", err)
	}
	id, err := ratchet.NewIdentity(opts.Rand)
	if err != nil {
		return nil, nil, err
	}
	devID, err := newDeviceID(opts.Rand)
	if err != nil {
		return nil, nil, err
	}
	// Seconds are precise enough, and the list has to fit a message.
	dev := &Device{ID: devID, Name: deviceName, Identity: id.Public().Bytes(), Seal: sealPub(id), Added: opts.Now().UTC().Truncate(time.Second)}
	pub, _ := ratchet.ParsePublicIdentity(l.Account)
	return &accountState{Name: l.Name, Device: dev.ID, Identity: id, AccountPub: pub, History: true}, dev, nil
}

// bootstrap creates the account of a new device in dir and fills it from
// every history log the lists (every version read) name; then runs finish.
// Any error removes what it created.
func bootstrap(ctx context.Context, dir string, tr transport.Transport, opts Options, st *accountState, lists []*DeviceList, finish func(*Account, *RestoreStats) error) (*Account, *RestoreStats, error) {
	if _, err := os.Stat(filepath.Join(dir, stateFile)); err == nil {
		return nil, nil, fmt.Errorf("%w (%s)", ErrAccountExists, dir)
	}
	a, err := createAccount(dir, tr, opts, st)
	if err != nil {
		return nil, nil, err
	}
	stats, err := fill(ctx, a, everLogged(lists))
	if err == nil {
		err = finish(a, stats)
	}
	if err != nil {
		a.db.Close()
		a.blocks.close()
		os.Remove(filepath.Join(dir, stateFile))
		os.Remove(filepath.Join(dir, blockFileName))
		return nil, nil, err
	}
	return a, stats, nil
}

func countKeys(b *bolt.Bucket) int {
	n := 0
	c := b.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		n++
	}
	return n
}
