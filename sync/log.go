package sync

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	gosync "sync"
	"time"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/ratchet"
	"github.com/deaddrop/deaddrop/sync/merkle"
	bolt "go.etcd.io/bbolt"
)

// The history log. Every device appends what happens to the account (a
// contact made, a message sent or received, a message read) to its own
// append-only log: blocks in secret slots derived from the history key and
// its device ID, each block sealed under the history key and carrying the
// merkle root of the log before it (RFC 9162 tree over the blocks' chunks).
// Since protocol version 4 each block is signed by its device and its slot
// derives from the key of the epoch it is sealed in (logauth.go).
// A device reads its siblings' logs to show what they sent and read; a device
// restored from the recovery phrase reads them all. Each log has one writer,
// so two devices reconcile by comparing each log's size and root and fetching
// the missing suffix, verified against the root the next block carries.

// logEntry is one event. Fields are used per Type.
type logEntry struct {
	Type    string `json:"t"` // "contact", "msg", "state"
	Contact string `json:"c"`

	// contact
	Created     time.Time `json:"created,omitzero"`
	MyAnn       []byte    `json:"my_ann,omitempty"`
	PeerAnn     []byte    `json:"peer_ann,omitempty"`
	PeerAccount []byte    `json:"peer_account,omitempty"`
	PeerAnnEp   uint64    `json:"peer_ann_epoch,omitempty"`      // the epochs PeerAnn is of (§10.4 rotation)
	PeerAnnPeer uint64    `json:"peer_ann_peer_epoch,omitempty"` // …

	// msg and state
	Origin   []byte       `json:"o,omitempty"`
	Dir      Direction    `json:"d,omitempty"`
	Body     []byte       `json:"b,omitempty"`
	Sent     time.Time    `json:"s,omitzero"`
	Received time.Time    `json:"r,omitzero"`
	State    MessageState `json:"st,omitempty"`
	Seen     bool         `json:"seen,omitempty"`

	// msg of a file or long message (logcontent.go): Kind is the content's
	// kind (0: text, Body is the text); Parts > 0 cuts the content across
	// that many entries, Part numbering them.
	Kind  Kind `json:"k,omitempty"`
	Part  int  `json:"p,omitempty"`
	Parts int  `json:"n,omitempty"`
}

func (e *logEntry) validate() error {
	if ValidName(e.Contact) != nil {
		return fmt.Errorf("bad contact name %q", e.Contact)
	}
	switch e.Type {
	case "contact":
		if len(e.MyAnn) != 32 {
			return errors.New("contact entry without an announcement secret")
		}
	case "msg", "state":
		if len(e.Origin) != originSize {
			return fmt.Errorf("message origin of %d bytes", len(e.Origin))
		}
		if e.Type == "msg" && (e.Dir != Incoming && e.Dir != Outgoing || len(e.Body) == 0 || len(e.Body) > MaxMessageSize) {
			return errors.New("malformed message entry")
		}
		if e.Type == "msg" {
			return e.validateContent()
		}
	default:
		return fmt.Errorf("unknown entry type %q", e.Type)
	}
	return nil
}

func contactEntry(c *contactRecord) *logEntry {
	return &logEntry{Type: "contact", Contact: c.Name, Created: c.Created, MyAnn: c.MyAnn, PeerAnn: c.PeerAnn, PeerAccount: c.PeerAccount, PeerAnnEp: c.PeerAnnEpoch, PeerAnnPeer: c.PeerAnnPeerEpoch}
}

// messageEntry returns the history entry of a message whose content fits
// one entry as text; messageEntries handles every message.
func messageEntry(contact string, m *messageRecord) *logEntry {
	return &logEntry{Type: "msg", Contact: contact, Origin: m.Origin, Dir: m.Dir, Body: []byte(m.Body),
		Sent: m.Sent, Received: m.Received, State: m.State, Seen: m.Seen}
}

func stateEntry(contact string, m *messageRecord) *logEntry {
	return &logEntry{Type: "state", Contact: contact, Origin: m.Origin, State: m.State, Seen: m.Seen}
}

// stage queues an entry for this device's log, in the caller's transaction:
// the event and its log entry commit together.
func (a *Account) stage(tx *bolt.Tx, e *logEntry) error {
	if !a.historyOn {
		return nil
	}
	b := tx.Bucket(bucketStage)
	n, _ := b.NextSequence()
	return putRecord(b, u64(n), e)
}

// block is the plaintext of one history block.
type block struct {
	Device  string      `json:"dev"`
	Index   uint64      `json:"i"`
	Epoch   uint64      `json:"ep"`   // the history epoch whose key seals it
	Prev    []byte      `json:"prev"` // merkle root of blocks 0..Index-1 of this log
	Entries []*logEntry `json:"e"`
}

// blockRecord is one of our blocks as stored here; whether the store has
// accepted it is bucketUnstored's business.
type blockRecord struct {
	Chunk []byte `json:"chunk"`
	Epoch uint64 `json:"epoch,omitempty"` // its slot derives from this epoch's key
}

func (b *blockRecord) validate() error {
	if len(b.Chunk) != feed.ChunkSize {
		return fmt.Errorf("history block of %d bytes", len(b.Chunk))
	}
	return nil
}

// logSlot is the slot of block index of a device's log sealed in the epoch
// whose key is given (epoch 0's is HK).
func logSlot(epochKey []byte, device string, index uint64) feed.Slot {
	id, _ := hex.DecodeString(device)
	return secretSlot("history", epochKey, id, u64(index))
}

func blockAD(device string, index uint64) []byte {
	return append([]byte("deaddrop history block\x00"+device), u64(index)...)
}

// logCursor is how far a device's log has been read (or, for ours,
// written), with the merkle frontier of those blocks: enough to check and
// extend the log without reading its leaves.
type logCursor struct {
	Next     uint64 `json:"next"`
	Frontier []byte `json:"frontier"`        // the frontier's subtree roots, 32 bytes each
	Epoch    uint64 `json:"epoch,omitempty"` // the epoch of the last block read
}

func (c *logCursor) validate() error {
	if len(c.Frontier)%32 != 0 || !c.frontier().Valid() {
		return fmt.Errorf("merkle frontier of %d bytes for %d blocks", len(c.Frontier), c.Next)
	}
	return nil
}

func (c *logCursor) frontier() *merkle.Frontier {
	f := &merkle.Frontier{Size: c.Next}
	for i := 0; i+32 <= len(c.Frontier); i += 32 {
		f.Roots = append(f.Roots, merkle.Hash(c.Frontier[i:i+32]))
	}
	return f
}

func cursorOf(f *merkle.Frontier) *logCursor {
	c := &logCursor{Next: f.Size}
	for _, r := range f.Roots {
		c.Frontier = append(c.Frontier, r[:]...)
	}
	return c
}

func loadCursor(tx *bolt.Tx, device string) (*logCursor, error) {
	c := new(logCursor)
	data := tx.Bucket(bucketLogs).Get([]byte(device))
	if data == nil {
		return c, nil
	}
	return c, decodeRecord("log cursor "+device, data, c)
}

// logTree rebuilds the merkle tree of a log's blocks from the stored leaves.
func logTree(tx *bolt.Tx, device string, n uint64) (*merkle.Tree, error) {
	t := new(merkle.Tree)
	c := tx.Bucket(bucketLeaves).Cursor()
	p := []byte(device)
	for k, v := c.Seek(p); k != nil && hasPrefix(k, p) && t.Size() < n; k, v = c.Next() {
		if len(v) != len(merkle.Hash{}) || binary.BigEndian.Uint64(k[len(p):]) != t.Size() {
			return nil, fmt.Errorf("%w: merkle leaves of log %s", ErrCorruptState, device)
		}
		t.Append(merkle.Hash(v))
	}
	if t.Size() != n {
		return nil, fmt.Errorf("%w: log %s has %d leaves, want %d", ErrCorruptState, device, t.Size(), n)
	}
	return t, nil
}

func putLeaf(tx *bolt.Tx, device string, index uint64, chunk []byte) error {
	h := merkle.LeafHash(chunk)
	leaves := tx.Bucket(bucketLeaves)
	leaves.FillPercent = 1 // each device's keys only grow
	return leaves.Put(append([]byte(device), u64(index)...), h[:])
}

// packLog seals the staged entries into new blocks of our log, in one
// transaction, so that a crash never packs an entry twice or loses it.
func (a *Account) packLog() error {
	if !a.historyOn {
		return nil
	}
	empty := true
	a.db.View(func(tx *bolt.Tx) error {
		k, _ := tx.Bucket(bucketStage).Cursor().First()
		empty = k == nil
		return nil
	})
	if empty {
		return nil // and write nothing: a bbolt commit always rewrites the meta page
	}
	for !empty { // packBatch entries a transaction: memory stays bounded
		if err := a.db.Update(func(tx *bolt.Tx) error {
			if err := a.packStaged(tx); err != nil {
				return err
			}
			k, _ := tx.Bucket(bucketStage).Cursor().First()
			empty = k == nil
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}

// packBatch bounds the staged entries one packStaged seals, so that packing
// the history of a catch-up of any size holds a bounded number in memory.
const packBatch = 512

// packStaged is packLog inside the caller's transaction, for the first
// packBatch staged entries (packLog packs the rest).
func (a *Account) packStaged(tx *bolt.Tx) error {
	if !a.historyOn {
		return nil
	}
	stage := tx.Bucket(bucketStage)
	var entries []*logEntry
	var keys [][]byte
	c := stage.Cursor()
	for k, v := c.First(); k != nil && len(entries) < packBatch; k, v = c.Next() {
		e := new(logEntry)
		if err := decodeRecord("staged history entry", v, e); err != nil {
			return err
		}
		entries, keys = append(entries, e), append(keys, append([]byte(nil), k...))
	}
	if len(entries) == 0 {
		return nil
	}
	cur, err := loadCursor(tx, a.device)
	if err != nil {
		return err
	}
	f := cur.frontier()
	epoch, epochKey := a.epochKeys().current()
	for len(entries) > 0 {
		index := f.Size
		n, body, err := fillBlock(&block{Device: a.device, Index: index, Epoch: epoch}, entries, f.Root())
		if err != nil {
			return err
		}
		chunk, err := sealContent(secretKey("history", epochKey[:]), blockAD(a.device, index), encodeBlock(a.id, body), a.opts.Rand)
		if err != nil {
			return err
		}
		if err := a.putOwnBlock(tx, index, chunk, epoch); err != nil {
			return err
		}
		if err := tx.Bucket(bucketUnstored).Put(u64(index), marker); err != nil {
			return err
		}
		if err := putLeaf(tx, a.device, index, chunk); err != nil {
			return err
		}
		if err := recordLocations(tx, &block{Device: a.device, Index: index, Entries: entries[:n]}); err != nil {
			return err
		}
		f.Append(merkle.LeafHash(chunk))
		entries = entries[n:]
	}
	for _, k := range keys {
		if err := stage.Delete(k); err != nil {
			return err
		}
	}
	if err := a.syncOwnBlocks(); err != nil { // before the hashes commit
		return err
	}
	own := cursorOf(f)
	own.Epoch = epoch
	return putRecord(tx.Bucket(bucketLogs), []byte(a.device), own)
}

// fillBlock puts as many entries as fit into b and returns how many and the
// block's JSON (what its device signs). Each entry is encoded once: the block's encoding is its
// frame (with no entries) plus the entries and the commas between them, so
// the count that fits is found by adding lengths, not by encoding the block
// again for every entry added.
func fillBlock(b *block, entries []*logEntry, prev merkle.Hash) (int, []byte, error) {
	b.Prev = prev[:]
	b.Entries = []*logEntry{}
	frame, err := json.Marshal(b)
	if err != nil {
		return 0, nil, err
	}
	size, n := len(frame), 0
	for n < len(entries) {
		e, err := json.Marshal(entries[n])
		if err != nil {
			return 0, nil, err
		}
		add := len(e)
		if n > 0 {
			add++ // the comma
		}
		if size+add > sealedContentMax-1-blockSigSize {
			break
		}
		size, n = size+add, n+1
	}
	if n == 0 {
		return 0, nil, fmt.Errorf("history entry too large for a block")
	}
	b.Entries = entries[:n]
	content, err := json.Marshal(b)
	if err != nil {
		return 0, nil, err
	}
	if len(content) != size {
		return 0, nil, fmt.Errorf("history block encodes to %d bytes, computed %d", len(content), size)
	}
	return n, content, nil
}

// flushLog packs staged entries and writes every block the store has not
// accepted yet. A failure leaves them for the next flush.
func (a *Account) flushLog(ctx context.Context) error {
	if err := a.packLog(); err != nil {
		return err
	}
	return a.putOwnBlocks(ctx, false)
}

// putOwnBlocks puts this device's history blocks, all or only those not
// stored yet, MaxInFlight at a time: a long log is never held in memory
// whole. It stops at the first batch that the store refused in part (the
// rest waits for the next flush).
func (a *Account) putOwnBlocks(ctx context.Context, all bool) error {
	from := uint64(0)
	for {
		indexes, recs, err := a.ownBlocks(all, from, a.opts.MaxInFlight)
		if err != nil || len(indexes) == 0 {
			return err
		}
		if err := a.putBlocks(ctx, indexes, recs); err != nil {
			return err
		}
		from = indexes[len(indexes)-1] + 1
	}
}

// ownBlocks lists up to limit of this device's history blocks from index
// from on: all, or only those not stored yet.
func (a *Account) ownBlocks(all bool, from uint64, limit int) (indexes []uint64, recs []*blockRecord, err error) {
	err = a.db.View(func(tx *bolt.Tx) error {
		blocks := tx.Bucket(bucketBlocks)
		index := tx.Bucket(bucketUnstored) // only those: a send must not scan the whole log
		if all {
			index = blocks
		}
		c := index.Cursor()
		for k, _ := c.Seek(u64(from)); k != nil && len(indexes) < limit; k, _ = c.Next() {
			index := binary.BigEndian.Uint64(k)
			r, err := a.ownBlock(index, blocks.Get(k))
			if err != nil {
				return err
			}
			indexes, recs = append(indexes, index), append(recs, r)
		}
		return nil
	})
	return indexes, recs, err
}

// putBlocks writes our blocks to the store, in parallel (at most
// Options.MaxInFlight at once: after a catch-up there may be dozens, and one
// after another they would cost a round trip each), and records, in one
// commit after every put returned, which ones it accepted.
func (a *Account) putBlocks(ctx context.Context, indexes []uint64, recs []*blockRecord) error {
	errs := make([]error, len(indexes))
	keys := a.epochKeys()
	sem := make(chan struct{}, a.opts.MaxInFlight)
	var wg gosync.WaitGroup
	for i, idx := range indexes {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			key, err := keys.sealedUnder(idx, recs[i])
			if err != nil {
				errs[i] = err
				return
			}
			err = a.tr.Put(ctx, logSlot(key[:], a.device, idx), recs[i].Chunk)
			switch {
			case errors.Is(err, feed.ErrSlotUsed):
				errs[i] = fmt.Errorf("history block %d: its slot holds another block (is this device's state a copy of another's?): %w", idx, err)
			case err != nil:
				errs[i] = fmt.Errorf("history block %d: %w", idx, err)
			}
		}()
	}
	wg.Wait()
	var stored []uint64
	squatted := uint64(math.MaxUint64)
	for i, idx := range indexes {
		switch {
		case errors.Is(errs[i], feed.ErrSlotUsed) && a.holds(ctx, recs[i], idx):
			errs[i] = nil // a put that reached the store before, unrecorded
		case errors.Is(errs[i], feed.ErrSlotUsed):
			squatted = min(squatted, idx)
		}
		if errs[i] == nil {
			stored = append(stored, idx)
		}
	}
	if len(stored) > 0 {
		if err := a.db.Update(func(tx *bolt.Tx) error { return markBlocksStored(tx, stored) }); err != nil {
			return err
		}
	}
	if squatted != math.MaxUint64 {
		// Taken by a removed device in an old epoch: move on to the
		// current one (the next flush writes the repacked blocks).
		ok, err := a.repackFrom(squatted)
		if err != nil {
			return err
		}
		if ok {
			a.problem(fmt.Errorf("history block %d: its slot in an old epoch was taken (by a removed device?): repacked under the current epoch", squatted))
			return a.putOwnBlocks(ctx, false)
		}
	}
	return errors.Join(errs...)
}

// holds reports whether the slot of one of our blocks holds that block.
func (a *Account) holds(ctx context.Context, r *blockRecord, index uint64) bool {
	key, ok := a.epochKeys()[r.Epoch]
	if !ok {
		return false
	}
	got, err := a.tr.Get(ctx, logSlot(key[:], a.device, index))
	return err == nil && bytes.Equal(got, r.Chunk)
}

// markBlocksStored records that the store accepted some of our blocks.
func markBlocksStored(tx *bolt.Tx, indexes []uint64) error {
	for _, idx := range indexes {
		if err := tx.Bucket(bucketUnstored).Delete(u64(idx)); err != nil {
			return err
		}
	}
	return nil
}

// republishLog writes every block of this device's history log again: after
// a store lost data.
func (a *Account) republishLog(ctx context.Context) error {
	if !a.historyOn {
		return nil
	}
	return a.putOwnBlocks(ctx, true)
}

// ErrTamperedLog reports a history block that fails verification.
var ErrTamperedLog = errors.New("history log does not verify")

// openBlock opens block index of a device's log, found in the slot of
// epoch `epoch` (whose key is epochKey), and checks that its writer signed
// it for that epoch and that it extends the blocks before it (root prev).
func openBlock(epochKey []byte, epoch uint64, writer ratchet.PublicIdentity, device string, index uint64, chunk []byte, prev merkle.Hash) (*block, error) {
	content, err := openContent(secretKey("history", epochKey), blockAD(device, index), chunk)
	if err != nil {
		return nil, fmt.Errorf("%w: block %d of device %s in epoch %d %w", ErrTamperedLog, index, device, epoch, err)
	}
	body, err := splitBlock(content, writer, device, index)
	if err != nil {
		return nil, err
	}
	b, err := decodeBlock(body, device, index, prev)
	if err == nil && b.Epoch != epoch {
		err = fmt.Errorf("%w: block %d of device %s says it is of epoch %d, not %d", ErrTamperedLog, index, device, b.Epoch, epoch)
	}
	return b, err
}

// decodeBlock decodes and checks a block's JSON.
func decodeBlock(content []byte, device string, index uint64, prev merkle.Hash) (*block, error) {
	b := new(block)
	if err := json.Unmarshal(content, b); err != nil {
		return nil, fmt.Errorf("%w: block %d of device %s: %v", ErrTamperedLog, index, device, err)
	}
	switch {
	case b.Device != device || b.Index != index:
		return nil, fmt.Errorf("%w: block %d of device %s says it is block %d of %s", ErrTamperedLog, index, device, b.Index, b.Device)
	case string(b.Prev) != string(prev[:]):
		return nil, fmt.Errorf("%w: block %d of device %s does not extend the log read so far (merkle root mismatch)", ErrTamperedLog, index, device)
	}
	for i, e := range b.Entries {
		if e == nil {
			return nil, fmt.Errorf("%w: block %d of device %s: entry %d is empty", ErrTamperedLog, index, device, i)
		}
		if err := e.validate(); err != nil {
			return nil, fmt.Errorf("%w: block %d of device %s: entry %d: %v", ErrTamperedLog, index, device, i, err)
		}
	}
	return b, nil
}

// LogHead is the size and merkle root of one device's history log as known
// here: two devices with equal heads for every log have the same history.
type LogHead struct {
	Device string
	Size   uint64
	Root   merkle.Hash
}

// LogHeads returns the head of every history log this device has read or
// written.
func (a *Account) LogHeads() ([]LogHead, error) {
	var out []LogHead
	err := a.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketLogs).ForEach(func(k, v []byte) error {
			c := new(logCursor)
			if err := decodeRecord("log cursor", v, c); err != nil {
				return err
			}
			out = append(out, LogHead{string(k), c.Next, c.frontier().Root()})
			return nil
		})
	})
	return out, err
}
