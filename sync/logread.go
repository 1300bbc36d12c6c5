package sync

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
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
// each block (its device's signature, an epoch its device was in, the merkle
// root of the blocks before it), and hands the entries of every window to
// sink inside the transaction that advances the cursor. It returns the
// number of blocks read. A slot holding something else than the log's next
// block is reported once as a problem and skipped (the block may be in a
// later epoch's slot); a removed device's log is read only up to the end its
// removal recorded, and only if its root there is the recorded one.
func (a *Account) readLog(ctx context.Context, get fetcher, device string, sink func(*bolt.Tx, []*logEntry) error) (int, error) {
	return a.readLogAfter(ctx, get, device, nil, sink)
}

// readLogAfter is readLog for a Poll, whose directory read runs side by
// side: before it applies anything, it waits for ready (the directory read
// done) and, if the device lists changed meanwhile (the writer may have
// been removed, its log's end recorded), reads again under what they say
// now. Otherwise blocks a removed device wrote after its removal would be
// applied by a device that learns of the removal in that same Poll.
func (a *Account) readLogAfter(ctx context.Context, get fetcher, device string, ready func(), sink func(*bolt.Tx, []*logEntry) error) (int, error) {
	w, err := a.logWriter(device)
	if err != nil {
		return 0, err
	}
	if w == nil {
		a.reportOnce("writer "+device, fmt.Errorf("%w: history log of device %s: no device list kept here names the device: not read", ErrTamperedLog, device))
		return 0, nil
	}
	var cur *logCursor
	err = a.db.View(func(tx *bolt.Tx) (err error) { cur, err = loadCursor(tx, device); return })
	if err != nil {
		return 0, err
	}
	f := cur.frontier()
	epoch := max(cur.Epoch, w.from)
	limit := uint64(math.MaxUint64)
	if w.removed {
		limit = f.Size // removed before protocol version 4 recorded where logs end
		if w.end != nil && !a.reported("end "+device) {
			limit = w.end.Size
		}
	}
	read := 0
	window := firstLogWindow
	var blocks []*block
	var chunks [][]byte
	for done := false; !done; {
		n := 0
		if f.Size < limit {
			n = int(min(uint64(window), limit-f.Size))
		}
		var got []*block
		var gotChunks [][]byte
		more := false
		if n > 0 {
			if got, gotChunks, more, err = a.fetchBlocks(ctx, get, device, w, f, &epoch, n, window == firstLogWindow); err != nil {
				return read, err
			}
		}
		blocks, chunks = append(blocks, got...), append(chunks, gotChunks...)
		done = !more
		window = min(2*window, maxLogWindow)
		if w.end != nil {
			// A removed device's log is applied whole, once its root at
			// the recorded end checks out.
			if !done || len(blocks) == 0 || f.Size < w.end.Size {
				continue
			}
			if root := f.Root(); string(root[:]) != string(w.end.Root) {
				a.reportOnce("end "+device, fmt.Errorf("%w: the log of removed device %s does not have the merkle root its removal recorded at size %d: not read", ErrTamperedLog, device, w.end.Size))
				return read, nil
			}
		}
		// Commit what was read every so many blocks and at the end: one
		// durable commit per window would cost more than the fetching.
		if len(blocks) >= commitLogBlocks || (done && len(blocks) > 0) {
			if ready != nil {
				ready()
				if w2, err := a.logWriter(device); err != nil || w2 != w {
					return a.readLogAfter(ctx, get, device, nil, sink)
				}
				ready = nil
			}
			if err := a.commitBlocks(device, blocks, chunks, f, epoch, sink); err != nil {
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

// fetchBlocks fetches up to window blocks of a log after f from the slots
// of *epoch, in parallel, and returns those before the first missing or
// invalid one, each verified and appended to f. If it found fewer than
// window, it looks for the next block in the slots of the later epochs its
// writer was in, moving *epoch on to the first that holds it (with ahead,
// it asks for those in the same wave as the window); more reports that the
// log may go on.
func (a *Account) fetchBlocks(ctx context.Context, get fetcher, device string, w *logWriter, f *merkle.Frontier, epoch *uint64, window int, ahead bool) (blocks []*block, chunks [][]byte, more bool, err error) {
	keys := a.epochKeys()
	var later []uint64
	for e := range keys {
		if e > *epoch && w.canWrite(e) {
			later = append(later, e)
		}
	}
	slices.Sort(later)
	laterSlots := func() []feed.Slot {
		slots := make([]feed.Slot, len(later))
		for i, e := range later {
			key := keys[e]
			slots[i] = logSlot(key[:], device, f.Size)
		}
		return slots
	}
	var slots []feed.Slot
	key, inEpoch := keys[*epoch]
	inEpoch = inEpoch && w.canWrite(*epoch)
	if inEpoch {
		for i := range window {
			slots = append(slots, logSlot(key[:], device, f.Size+uint64(i)))
		}
	}
	n := len(slots)
	if ahead || !inEpoch {
		// The next block may be in a later epoch's slot: ask in the same
		// wave (a poll that finds nothing new then costs one round trip).
		slots = append(slots, laterSlots()...)
	}
	if len(slots) == 0 {
		return nil, nil, false, nil
	}
	results := get(ctx, slots)
	for i, r := range results[:n] {
		if errors.Is(r.err, feed.ErrNotFound) {
			break
		}
		if r.err != nil {
			return nil, nil, false, fmt.Errorf("history log of device %s: %w", device, r.err)
		}
		b, err := openBlock(key[:], *epoch, w.identity, device, f.Size, r.chunk, f.Root())
		if err != nil {
			a.junkSlot(slots[i], err)
			break
		}
		f.Append(merkle.LeafHash(r.chunk))
		blocks, chunks = append(blocks, b), append(chunks, r.chunk)
	}
	if n > 0 && len(blocks) == n {
		return blocks, chunks, true, nil
	}
	if len(later) == 0 {
		return blocks, chunks, false, nil
	}
	laterResults, ls := results[n:], slots[n:]
	if len(blocks) > 0 || len(laterResults) == 0 {
		ls = laterSlots() // for the index after the blocks found
		laterResults = get(ctx, ls)
	}
	for i, r := range laterResults {
		if errors.Is(r.err, feed.ErrNotFound) {
			continue
		}
		if r.err != nil {
			return nil, nil, false, fmt.Errorf("history log of device %s: %w", device, r.err)
		}
		key := keys[later[i]]
		b, err := openBlock(key[:], later[i], w.identity, device, f.Size, r.chunk, f.Root())
		if err != nil {
			a.junkSlot(ls[i], err)
			continue
		}
		f.Append(merkle.LeafHash(r.chunk))
		*epoch = later[i]
		return append(blocks, b), append(chunks, r.chunk), true, nil
	}
	return blocks, chunks, false, nil
}

// junkSlot reports, once per slot, a history slot that does not hold the
// block a reader looked for there: written by a removed device, or by a
// device of protocol version 3.
func (a *Account) junkSlot(slot feed.Slot, err error) {
	a.reportOnce(string(slot[:]), fmt.Errorf("%w: skipped", err))
}

// reported reports whether reportOnce has reported key.
func (a *Account) reported(key string) bool {
	a.junkMu.Lock()
	defer a.junkMu.Unlock()
	return a.junk[key]
}

// reportOnce reports a problem the first time this Account meets it.
func (a *Account) reportOnce(key string, err error) {
	a.junkMu.Lock()
	defer a.junkMu.Unlock()
	if a.junk == nil {
		a.junk = map[string]bool{}
	}
	if a.junk[key] {
		return
	}
	a.junk[key] = true
	a.problem(err)
}

// commitBlocks stores the leaves and locations of blocks just read, hands
// their entries to sink and advances the cursor to f (its last block in
// epoch), in one transaction.
func (a *Account) commitBlocks(device string, blocks []*block, chunks [][]byte, f *merkle.Frontier, epoch uint64, sink func(*bolt.Tx, []*logEntry) error) error {
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
		c := cursorOf(f)
		c.Epoch = epoch
		return putRecord(tx.Bucket(bucketLogs), []byte(device), c)
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
			errs = append(errs, a.syncLog(ctx, a.fetchAll, id, nil))
		}
	}
	return errors.Join(errs...)
}

// syncLog reads one other device's log and applies it. The directory read
// of this same Poll (they run side by side; ready waits for it, see
// readLogAfter) may learn a new epoch, whose slots may hold the log's next
// blocks: then it reads once more.
func (a *Account) syncLog(ctx context.Context, get fetcher, device string, ready func()) error {
	before := len(a.epochKeys())
	err := a.syncLogOnce(ctx, get, device, ready)
	if err == nil && len(a.epochKeys()) > before {
		err = a.syncLogOnce(ctx, get, device, nil)
	}
	return err
}

func (a *Account) syncLogOnce(ctx context.Context, get fetcher, device string, ready func()) error {
	_, err := a.readLogAfter(ctx, get, device, ready, func(tx *bolt.Tx, entries []*logEntry) error {
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
