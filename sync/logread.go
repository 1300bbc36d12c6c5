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
// firstLogWindow (a sibling usually added a block or two), doubling while
// every block was there, up to maxLogWindow (a restore reads thousands).
const (
	firstLogWindow = 2
	maxLogWindow   = 64
)

// readLog reads a device's log from where this device stopped, verifying
// each block against the merkle root of the blocks before it, and hands the
// entries of every window to sink inside the transaction that advances the
// cursor. It returns the number of blocks read.
func (a *Account) readLog(ctx context.Context, device string, sink func(*bolt.Tx, []*logEntry) error) (int, error) {
	var cur *logCursor
	var tree *merkle.Tree
	err := a.db.View(func(tx *bolt.Tx) error {
		var err error
		if cur, err = loadCursor(tx, device); err == nil {
			tree, err = logTree(tx, device, cur.Next)
		}
		return err
	})
	if err != nil {
		return 0, err
	}
	read := 0
	window := firstLogWindow
	for {
		slots := make([]feed.Slot, window)
		for i := range slots {
			slots[i] = logSlot(a.history[:], device, cur.Next+uint64(i))
		}
		results := a.fetchAll(ctx, slots)
		var blocks []*block
		var chunks [][]byte
		for i, r := range results {
			if errors.Is(r.err, feed.ErrNotFound) {
				break
			}
			if r.err != nil {
				return read, fmt.Errorf("history log of device %s: %w", device, r.err)
			}
			b, err := openBlock(a.history[:], device, cur.Next+uint64(i), r.chunk, tree.Root())
			if err != nil {
				return read, err
			}
			tree.Append(merkle.LeafHash(r.chunk))
			blocks, chunks = append(blocks, b), append(chunks, r.chunk)
		}
		if len(blocks) == 0 {
			return read, nil
		}
		err := a.db.Update(func(tx *bolt.Tx) error {
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
			return putRecord(tx.Bucket(bucketLogs), []byte(device), &logCursor{Next: cur.Next + uint64(len(blocks))})
		})
		if err != nil {
			return read, err
		}
		cur.Next += uint64(len(blocks))
		read += len(blocks)
		if len(blocks) < window {
			return read, nil
		}
		window = min(2*window, maxLogWindow)
	}
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
		if id == a.device {
			continue
		}
		_, err := a.readLog(ctx, id, func(tx *bolt.Tx, entries []*logEntry) error {
			for _, e := range entries {
				if err := applyEntry(tx, e); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
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
func applyEntry(tx *bolt.Tx, e *logEntry) error {
	if e.Type == "contact" {
		return applyContact(tx, e)
	}
	c, err := loadContact(tx, e.Contact)
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
		return raiseMessage(tx, c.Name, m, e.State, e.Seen)
	}
	m := &messageRecord{Origin: e.Origin, Dir: e.Dir, Seq: 1, Body: string(e.Body), Sent: e.Sent,
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

func applyContact(tx *bolt.Tx, e *logEntry) error {
	c, err := loadContact(tx, e.Contact)
	if errors.Is(err, ErrUnknownContact) {
		c = &contactRecord{Name: e.Contact, NextLocal: 1, Created: e.Created, MyAnn: e.MyAnn}
	} else if err != nil {
		return err
	}
	if len(c.PeerAnn) == 0 {
		c.PeerAnn = e.PeerAnn
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
	for _, e := range entries {
		if err := applyEntry(tx, e); err != nil {
			return err
		}
	}
	return nil
}
