package sync

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/sync/merkle"
	bolt "go.etcd.io/bbolt"
)

// A log is read in windows of blocks fetched in parallel: the first of
// firstLogWindow (a poll usually finds nothing new: one probe), doubling while
// every block was there, up to maxLogWindow (a restore reads thousands).
const (
	firstLogWindow = 1
	maxLogWindow   = 64
)

// readLog reads a device's log from where this device stopped, verifying
// each block against the merkle root of the blocks before it, and hands the
// entries of every window to sink inside the transaction that advances the
// cursor. It returns the number of blocks read.
func (a *Account) readLog(ctx context.Context, get fetcher, device string, sink func(*bolt.Tx, []*logEntry) error) (int, error) {
	var cur *logCursor
	err := a.db.View(func(tx *bolt.Tx) (err error) { cur, err = loadCursor(tx, device); return })
	if err != nil {
		return 0, err
	}
	f := cur.frontier()
	read := 0
	window := firstLogWindow
	var blocks []*block
	var chunks [][]byte
	for done := false; !done; {
		got, gotChunks, err := a.fetchBlocks(ctx, get, device, f, window)
		if err != nil {
			return read, err
		}
		blocks, chunks = append(blocks, got...), append(chunks, gotChunks...)
		done = len(got) < window
		window = min(2*window, maxLogWindow)
		// Commit what was read every so many blocks and at the end: one
		// durable commit per window would cost more than the fetching.
		if len(blocks) >= commitLogBlocks || (done && len(blocks) > 0) {
			if err := a.commitBlocks(device, blocks, chunks, f, sink); err != nil {
				return read, err
			}
			read += len(blocks)
			blocks, chunks = nil, nil
		}
	}
	return read, nil
}

// commitLogBlocks bounds how many blocks a log read holds before committing.
const commitLogBlocks = 1024

// fetchBlocks fetches up to window blocks of a log after f, in parallel, and
// returns those before the first missing one, each verified and appended to f.
func (a *Account) fetchBlocks(ctx context.Context, get fetcher, device string, f *merkle.Frontier, window int) ([]*block, [][]byte, error) {
	slots := make([]feed.Slot, window)
	for i := range slots {
		slots[i] = logSlot(a.history[:], device, f.Size+uint64(i))
	}
	var blocks []*block
	var chunks [][]byte
	keys := a.epochKeys().blockKeys()
	for _, r := range get(ctx, slots) {
		if errors.Is(r.err, feed.ErrNotFound) {
			break
		}
		if r.err != nil {
			return nil, nil, fmt.Errorf("history log of device %s: %w", device, r.err)
		}
		b, err := openBlock(keys, device, f.Size, r.chunk, f.Root())
		if err != nil {
			return nil, nil, err
		}
		f.Append(merkle.LeafHash(r.chunk))
		blocks, chunks = append(blocks, b), append(chunks, r.chunk)
	}
	return blocks, chunks, nil
}

// commitBlocks stores the leaves and locations of blocks just read, hands
// their entries to sink and advances the cursor to f, in one transaction.
func (a *Account) commitBlocks(device string, blocks []*block, chunks [][]byte, f *merkle.Frontier, sink func(*bolt.Tx, []*logEntry) error) error {
	return a.db.Update(func(tx *bolt.Tx) error {
		var entries []*logEntry
		for i, b := range blocks {
			if err := putLeaf(tx, device, b.Index, chunks[i]); err != nil {
				return err
			}
			if err := recordLocations(tx, b); err != nil {
				return err
			}
			entries = append(entries, b.Entries...)
		}
		if err := sink(tx, entries); err != nil {
			return err
		}
		return putRecord(tx.Bucket(bucketLogs), []byte(device), cursorOf(f))
	})
}

// syncLogs reads what our other devices logged since the last time and
// applies it: messages they sent or received, read and seen state.
func (a *Account) syncLogs(ctx context.Context) error {
	l, err := a.deviceList()
	if err != nil {
		return err
	}
	var errs []error
	for _, id := range logDevices(l) {
		if id != a.device {
			errs = append(errs, a.syncLog(ctx, a.fetchAll, id))
		}
	}
	return errors.Join(errs...)
}

// syncLog reads one other device's log and applies it. A block that no
// epoch key we know opens may be of an epoch whose key the directory read of
// this same Poll is about to learn (they run side by side): then it reads
// the directory itself and tries once more.
func (a *Account) syncLog(ctx context.Context, get fetcher, device string) error {
	err := a.syncLogOnce(ctx, get, device)
	if errors.Is(err, errSealed) {
		if derr := a.syncDirectoryWith(ctx, get); derr != nil {
			return derr
		}
		err = a.syncLogOnce(ctx, get, device)
	}
	return err
}

func (a *Account) syncLogOnce(ctx context.Context, get fetcher, device string) error {
	_, err := a.readLog(ctx, get, device, func(tx *bolt.Tx, entries []*logEntry) error {
		contacts := contactCache{}
		for _, e := range entries {
			if err := applyEntry(tx, e, contacts); err != nil {
				return err
			}
		}
		return contacts.save(tx)
	})
	return err
}

// logDevices lists every device that has a log: current and removed ones
// (whose logs still hold history).
func logDevices(l *DeviceList) []string {
	var ids []string
	for _, d := range l.Devices {
		ids = append(ids, d.ID)
	}
	return append(ids, l.Removed...)
}

// applyEntry applies another device's log entry to this device's state. It
// never stages: what we learn from a log is not logged again.
func applyEntry(tx *bolt.Tx, e *logEntry, contacts contactCache) error {
	if e.Type == "contact" {
		if c, ok := contacts[e.Contact]; ok { // write back before it is reloaded
			if err := saveContact(tx, c); err != nil {
				return err
			}
			delete(contacts, e.Contact)
		}
		return applyContact(tx, e)
	}
	c, err := contacts.get(tx, e.Contact)
	if errors.Is(err, ErrUnknownContact) {
		return nil // its contact entry is in a log not read yet: skipped, harmless
	}
	if err != nil {
		return err
	}
	if e.Type == "state" {
		m, err := messageByOrigin(tx, c.Name, e.Origin)
		if err != nil || m == nil {
			return err
		}
		_, err = raiseMessage(tx, c.Name, m, e.State, e.Seen)
		return err
	}
	ct, err := entryContent(tx, e)
	if errors.Is(err, ErrBadPart) || errors.Is(err, ErrBadContent) {
		return nil // a malformed message entry is skipped, like one of an unknown contact
	}
	if err != nil || ct == nil {
		return err // or a part of a long message not complete yet
	}
	m := &messageRecord{Origin: e.Origin, Dir: e.Dir, Seq: 1, Body: ct.Text, Attach: ct.Attach, Sent: e.Sent,
		Received: e.Received, State: e.State, Seen: e.Seen || e.Dir == Outgoing}
	if m.State == 0 || m.State == Queued {
		m.State = Stored // a sibling's queued message is its business, not ours to resend
	}
	if m.Dir == Incoming {
		m.State = Received
	}
	_, _, err = insertMessage(tx, c, m)
	return err
}

// contactCache holds the contact records a transaction applying many log
// entries has changed; save writes them back.
type contactCache map[string]*contactRecord

func (cc contactCache) get(tx *bolt.Tx, name string) (*contactRecord, error) {
	if c, ok := cc[name]; ok {
		return c, nil
	}
	c, err := loadContact(tx, name)
	if err == nil {
		cc[name] = c
	}
	return c, err
}

func (cc contactCache) save(tx *bolt.Tx) error {
	for _, c := range cc {
		if err := saveContact(tx, c); err != nil {
			return err
		}
	}
	return nil
}

func applyContact(tx *bolt.Tx, e *logEntry) error {
	c, err := loadContact(tx, e.Contact)
	if errors.Is(err, ErrUnknownContact) {
		c = &contactRecord{Name: e.Contact, NextLocal: 1, Created: e.Created, MyAnn: e.MyAnn}
	} else if err != nil {
		return err
	}
	if len(e.PeerAnn) == 32 {
		adoptPeerAnn(c, e.PeerAnn, annGen{e.PeerAnnEp, e.PeerAnnPeer}) // the newest feed any of our devices learnt
	}
	if len(c.PeerAccount) == 0 {
		c.PeerAccount = e.PeerAccount
	}
	return saveContact(tx, c)
}

// applySorted applies entries gathered from several logs: contacts first,
// then messages in the order they were sent, then state changes.
func applySorted(tx *bolt.Tx, entries []*logEntry) error {
	rank := map[string]int{"contact": 0, "msg": 1, "state": 2}
	slices.SortStableFunc(entries, func(x, y *logEntry) int {
		if c := cmp.Compare(rank[x.Type], rank[y.Type]); c != 0 || x.Type != "msg" {
			return c
		}
		return x.Sent.Compare(y.Sent)
	})
	contacts := contactCache{}
	for _, e := range entries {
		if err := applyEntry(tx, e, contacts); err != nil {
			return err
		}
	}
	return contacts.save(tx)
}
