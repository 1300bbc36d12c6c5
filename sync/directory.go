package sync

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/ratchet"
	bolt "go.etcd.io/bbolt"
)

// The directory holds every version of the account's device list, each in a
// secret slot of its own. Version v is in the slot derived from the key of
// the history epoch its predecessor is in (epoch 0's key is HK), so a device
// removed by a version that starts a new epoch can find that version, and
// learn it is out, but cannot derive any slot after it: it cannot squat the
// directory's future.
//
// Every device of the account can still write junk into the slots of its
// current epoch. A slot holding something that is not a valid list of its
// version is reported as a problem and skipped: readers look at the next
// slot, and a writer puts its list in the first free one. Nothing a device
// of the account writes there can stop the others reading conversations,
// linking, removing or restoring.

// maxDirectoryJunk bounds how many junk slots a publish steps over before
// giving up: each costs a GET or two.
const maxDirectoryJunk = 1024

func directorySlot(epochKey []byte, version uint64) feed.Slot {
	return secretSlot("directory", epochKey, u64(version))
}

func directoryAD(version uint64) []byte {
	return append([]byte("deaddrop directory\x00"), u64(version)...)
}

// dirEntry is a directory chunk as this device keeps it, for republishing:
// its slot, then the chunk. (Before protocol version 3 every directory slot
// was derived from HK and only the chunk was kept; splitDirEntry reads both.)
func dirEntry(slot feed.Slot, chunk []byte) []byte {
	return append(append(make([]byte, 0, len(slot)+len(chunk)), slot[:]...), chunk...)
}

func splitDirEntry(history []byte, version uint64, v []byte) (feed.Slot, []byte) {
	if len(v) == len(feed.Slot{})+feed.ChunkSize {
		return feed.Slot(v[:len(feed.Slot{})]), v[len(feed.Slot{}):]
	}
	return directorySlot(history, version), v
}

// openDirectory opens the chunk in the slot of version v, read in epoch
// `epoch`, and checks that it is a list of that version signed by the
// account, not rolling the epoch back.
func openDirectory(epochKey []byte, v, epoch uint64, chunk []byte, account ratchet.PublicIdentity) (*DeviceList, []byte, error) {
	signed, err := openContent(secretKey("directory", epochKey), directoryAD(v), chunk)
	if err != nil {
		return nil, nil, err
	}
	l, err := verifyList(signed, account)
	switch {
	case err != nil:
		return nil, nil, err
	case l.Version != v:
		return nil, nil, fmt.Errorf("it holds version %d (a copy)", l.Version)
	case l.Epoch < epoch || l.Epoch > epoch+1:
		return nil, nil, fmt.Errorf("it jumps from history epoch %d to %d", epoch, l.Epoch)
	case l.Epoch == epoch+1 && len(l.Keys) == 0:
		return nil, nil, fmt.Errorf("it starts history epoch %d without its key", l.Epoch)
	}
	return l, signed, nil
}

// dirReader reads the directory forward from a version it knows, learning
// each new epoch's key from the version that starts it: the slots after that
// version derive from it.
type dirReader struct {
	get     func(context.Context, feed.Slot) ([]byte, error)
	account ratchet.PublicIdentity
	keys    epochKeys         // the epoch keys known; read adds the ones it learns
	id      *ratchet.Identity // opens the epoch keys sealed to…
	as      string            // …this name: our device ID, or "recovery"
}

// directoryRead is what a dirReader found.
type directoryRead struct {
	list   *DeviceList // the newest; nil: nothing valid after the version asked for
	signed []byte
	chunks map[uint64][]byte // version → dirEntry of every valid version read
	lists  []*DeviceList     // every valid version read, in order
	junk   []error           // slots that did not hold a valid list: skipped
	skip   uint64            // the last junk slot after the newest list (0: none)
}

// read reads the versions after `after` (a list in epoch `epoch`), starting
// after skip if that is further: slots up to it are known junk.
func (r *dirReader) read(ctx context.Context, after, epoch, skip uint64) (*directoryRead, error) {
	d := &directoryRead{chunks: map[uint64][]byte{}}
	for v := max(after, skip) + 1; ; v++ {
		key, ok := r.keys[epoch]
		if !ok {
			return d, nil // the epoch's key was not sealed to us: removed, as d.list says
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		slot := directorySlot(key[:], v)
		chunk, err := r.get(ctx, slot)
		if errors.Is(err, feed.ErrNotFound) {
			return d, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading the device list: %w", err)
		}
		l, signed, err := openDirectory(key[:], v, epoch, chunk, r.account)
		if err != nil {
			d.junk = append(d.junk, fmt.Errorf("directory slot of device list version %d: %w: skipped", v, err))
			d.skip = v
			continue
		}
		if err := learnEpochs(r.keys, []*DeviceList{l}, r.id, r.as); err != nil {
			return nil, err
		}
		d.list, d.signed, d.chunks[v], d.skip = l, signed, dirEntry(slot, chunk), 0
		d.lists = append(d.lists, l)
		epoch = l.Epoch
	}
}

func (a *Account) dirReader(get func(context.Context, feed.Slot) ([]byte, error)) *dirReader {
	return &dirReader{get: get, account: a.accountPub, keys: a.epochKeys(), id: a.id, as: a.device}
}

// keepDirectory stores directory entries (version → dirEntry) and, if
// signed is set, adopts it as our device list.
func keepDirectory(tx *bolt.Tx, entries map[uint64][]byte, signed []byte) error {
	for v, e := range entries {
		if err := tx.Bucket(bucketDirectory).Put(u64(v), sealValue(e)); err != nil {
			return err
		}
	}
	if signed == nil {
		return nil
	}
	return tx.Bucket(bucketAccount).Put([]byte("devices"), sealValue(signed))
}

// directoryChunks lists every device-list version this device knows, with
// its slot.
func (a *Account) directoryChunks(tx *bolt.Tx, keep func(feed.Slot, []byte) error) error {
	return tx.Bucket(bucketDirectory).ForEach(func(k, v []byte) error {
		e, err := openValue("directory chunk", v)
		if err != nil {
			return err
		}
		if len(k) != 8 {
			return fmt.Errorf("%w: directory version key of %d bytes", ErrCorruptState, len(k))
		}
		slot, chunk := splitDirEntry(a.history[:], binary.BigEndian.Uint64(k), e)
		return keep(slot, chunk)
	})
}

// The junk slots already reported, so that each Poll does not read and
// report them again (on a write-once store they stay junk).
func directorySkip(tx *bolt.Tx) uint64 {
	if v, err := openValue("directory skip", tx.Bucket(bucketAccount).Get([]byte("directory_skip"))); err == nil && len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func saveDirectorySkip(tx *bolt.Tx, v uint64) error {
	return tx.Bucket(bucketAccount).Put([]byte("directory_skip"), sealValue(u64(v)))
}

// adoptLists keeps the directory entries just read or written, the epoch
// keys learnt on the way and signed as our device list, in one transaction:
// a crash in between must not lose a key.
func (a *Account) adoptLists(keys epochKeys, entries map[uint64][]byte, signed []byte) error {
	err := a.db.Update(func(tx *bolt.Tx) error {
		if err := saveEpochKeys(tx, keys); err != nil {
			return err
		}
		return keepDirectory(tx, entries, signed)
	})
	if err == nil {
		a.setEpochs(keys)
	}
	return err
}

// republishDirectory puts every directory chunk this device knows again.
func (a *Account) republishDirectory(ctx context.Context) error {
	return a.putListed(ctx, "device list", a.directoryChunks)
}

// syncDirectory adopts newer versions of our device list.
func (a *Account) syncDirectory(ctx context.Context) error {
	return a.syncDirectoryWith(ctx, a.fetchAll)
}

// syncDirectoryWith reads the directory after our list. Junk is reported
// (once) as a problem, never an error: it must not stop a Poll.
func (a *Account) syncDirectoryWith(ctx context.Context, get fetcher) error {
	cur, err := a.deviceList()
	if err != nil {
		return err
	}
	var skip uint64
	a.db.View(func(tx *bolt.Tx) error { skip = directorySkip(tx); return nil })
	r := a.dirReader(one(get))
	d, err := r.read(ctx, cur.Version, cur.Epoch, skip)
	if err != nil {
		return err
	}
	for _, j := range d.junk {
		a.problem(j)
	}
	if d.skip > 0 {
		if err := a.db.Update(func(tx *bolt.Tx) error { return saveDirectorySkip(tx, d.skip) }); err != nil {
			return err
		}
	}
	switch {
	case d.list == nil && cur.find(a.device) == nil:
		return ErrDeviceRemoved
	case d.list == nil:
		return nil
	case d.list.find(a.device) == nil:
		a.db.Update(func(tx *bolt.Tx) error { return keepDirectory(tx, d.chunks, d.signed) })
		return ErrDeviceRemoved
	}
	return a.adoptLists(r.keys, d.chunks, d.signed)
}

var (
	errListChanged = errors.New("the device list was changed on another device at the same time: run 'deaddrop read' and try again")
	errJunkSlot    = errors.New("directory slot holds something that is not a device list")
)

// publishList signs next, the version after prev, puts it in the first
// free directory slot after prev's (stepping over junk, see above) and
// adopts it. The directory is write-once per slot, so two devices changing
// the list at once cannot both win: the loser gets an error and changes
// nothing.
func (a *Account) publishList(ctx context.Context, prev, next *DeviceList) error {
	if a.accountKey == nil {
		return ErrNoAccountKey
	}
	// Versions are read from 1 up: the first one, written lazily after
	// Create, must be there before the next.
	if err := a.flushDirectory(ctx); err != nil {
		return err
	}
	keys := a.epochKeys()
	key, ok := keys[prev.Epoch]
	if !ok {
		return fmt.Errorf("this device lacks the key of history epoch %d", prev.Epoch)
	}
	var skip uint64 // junk read and reported before
	a.db.View(func(tx *bolt.Tx) error { skip = directorySkip(tx); return nil })
	for v := max(prev.Version, skip) + 1; v <= prev.Version+maxDirectoryJunk; v++ {
		next.Version = v
		signed, err := signList(a.accountKey, next)
		if err != nil {
			return err
		}
		if err := listFits(signed); err != nil {
			return err
		}
		entry, err := a.putDirectory(ctx, key[:], prev.Epoch, v, signed)
		if errors.Is(err, errJunkSlot) {
			a.problem(fmt.Errorf("device list version %d: %w: skipped", v, err))
			continue
		}
		if err != nil {
			return err
		}
		if err := learnEpochs(keys, []*DeviceList{next}, a.id, a.device); err != nil {
			return err
		}
		return a.adoptLists(keys, map[uint64][]byte{v: entry}, signed)
	}
	return fmt.Errorf("the next %d directory slots all hold junk: cannot publish the device list", maxDirectoryJunk)
}

// putDirectory seals a signed device list into the directory slot of its
// version (derived from the key of the epoch before it) and writes it,
// unless the slot is taken: errListChanged if by a valid list, errJunkSlot
// if by anything else. It returns the dirEntry.
func (a *Account) putDirectory(ctx context.Context, epochKey []byte, epoch, version uint64, signed []byte) ([]byte, error) {
	slot := directorySlot(epochKey, version)
	taken := func(chunk []byte) error {
		if _, _, err := openDirectory(epochKey, version, epoch, chunk, a.accountPub); err == nil {
			return errListChanged
		}
		return errJunkSlot
	}
	// Look first: not every store refuses a second, different chunk in a
	// used slot.
	if chunk, err := a.tr.Get(ctx, slot); err == nil {
		return nil, taken(chunk)
	} else if !errors.Is(err, feed.ErrNotFound) {
		return nil, fmt.Errorf("reading the directory: %w", err)
	}
	chunk, err := sealContent(secretKey("directory", epochKey), directoryAD(version), signed, a.opts.Rand)
	if err != nil {
		return nil, fmt.Errorf("device list too large: %w", err)
	}
	err = a.tr.Put(ctx, slot, chunk)
	if errors.Is(err, feed.ErrSlotUsed) {
		got, gerr := a.tr.Get(ctx, slot)
		if gerr != nil {
			return nil, fmt.Errorf("writing the device list: %w", err)
		}
		return nil, taken(got)
	}
	if err != nil {
		return nil, fmt.Errorf("writing the device list: %w", err)
	}
	// A store that keeps either of two chunks put at once (Swarm) may have
	// kept the other one: read back, so that readers see what we adopt.
	if got, err := a.tr.Get(ctx, slot); err == nil && !bytes.Equal(got, chunk) {
		return nil, taken(got)
	}
	return dirEntry(slot, chunk), nil
}

// The directory write of a new account's first device list waits for the
// first flush: Create works offline.
func (a *Account) markDirectoryPending() error {
	return a.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAccount).Put([]byte("directory_pending"), marker)
	})
}

// flushDirectory writes the first device list if Create could not.
func (a *Account) flushDirectory(ctx context.Context) error {
	var pending bool
	var signed []byte
	err := a.db.View(func(tx *bolt.Tx) error {
		pending = tx.Bucket(bucketAccount).Get([]byte("directory_pending")) != nil
		var err error
		signed, err = a.signedDeviceList(tx)
		return err
	})
	if err != nil || !pending {
		return err
	}
	l, err := verifyList(signed, a.accountPub)
	if err != nil {
		return err
	}
	entry, err := a.putDirectory(ctx, a.history[:], 0, l.Version, signed)
	if errors.Is(err, errListChanged) {
		// Only this device held the account key when it made version 1:
		// the list there is ours, put by a flush that crashed before it
		// could clear the mark.
		slot := directorySlot(a.history[:], l.Version)
		var chunk []byte
		if chunk, err = a.tr.Get(ctx, slot); err == nil {
			entry = dirEntry(slot, chunk)
		}
	}
	if err != nil {
		return err
	}
	return a.db.Update(func(tx *bolt.Tx) error {
		if err := keepDirectory(tx, map[uint64][]byte{l.Version: entry}, nil); err != nil {
			return err
		}
		return tx.Bucket(bucketAccount).Delete([]byte("directory_pending"))
	})
}
