package sync

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	gosync "sync"

	"github.com/deaddrop/deaddrop/ratchet"
	"github.com/deaddrop/deaddrop/sync/merkle"
	bolt "go.etcd.io/bbolt"
)

// Who may write what in a history log (protocol version 4).
//
// Every block is signed by the device that writes it, with the signing half
// of its ratchet identity as the signed device list gives it, and names the
// history epoch whose key seals it and derives its slot. A reader accepts a
// block only if the signature verifies, its device was on the account's list
// in that epoch, and (for a removed device) it is below the log size that
// the list version removing the device recorded, with the log's merkle root
// at that size matching the recorded one. So a removed device, which keeps
// HK, the keys of the epochs it was in and its own identity, can write what
// it likes but nothing it writes after its removal is read: not in its own
// log (beyond the recorded end), not in another device's (it cannot sign as
// that device), not under an old epoch (its slots are junk to the reader,
// who goes on to the next epoch's slot for the same block).

// ProtocolVersion is the version of docs/protocol.md this package
// implements. Version 4 signs history blocks and bounds removed devices'
// logs; its readers refuse version 3's unsigned blocks (ErrOldHistoryBlock).
const ProtocolVersion = 4

// blockFormat is the first byte of a version 4 block's plaintext; version
// 3's plaintext was the block's JSON, whose first byte is '{'.
const blockFormat = ProtocolVersion

// blockSigSize is the size of the Ed25519 signature after it.
const blockSigSize = 64

// blockSigContext prefixes what a device signs: this, then the block's JSON.
const blockSigContext = "deaddrop history block v4\x00"

// ErrOldHistoryBlock reports a history block written by protocol version 3
// (unsigned): version 4 does not read it.
var ErrOldHistoryBlock = errors.New("history block in protocol version 3's unsigned format: not read by version 4 (the device that wrote it must upgrade; history it logged before is not restored)")

// encodeBlock signs a block's JSON with the writing device's identity: the
// plaintext is blockFormat, the signature, the JSON.
func encodeBlock(id *ratchet.Identity, body []byte) []byte {
	sig := id.Sign(append([]byte(blockSigContext), body...))
	out := make([]byte, 0, 1+blockSigSize+len(body))
	return append(append(append(out, blockFormat), sig...), body...)
}

// splitBlock checks a version 4 plaintext's signature against the writer's
// identity and returns the JSON.
func splitBlock(content []byte, writer ratchet.PublicIdentity, device string, index uint64) ([]byte, error) {
	switch {
	case len(content) > 0 && content[0] == '{':
		return nil, fmt.Errorf("block %d of device %s: %w", index, device, ErrOldHistoryBlock)
	case len(content) < 1+blockSigSize || content[0] != blockFormat:
		return nil, fmt.Errorf("%w: block %d of device %s has an unknown format", ErrTamperedLog, index, device)
	}
	body := content[1+blockSigSize:]
	if !writer.Verify(append([]byte(blockSigContext), body...), content[1:1+blockSigSize]) {
		return nil, fmt.Errorf("%w: block %d of device %s is not signed by that device", ErrTamperedLog, index, device)
	}
	return body, nil
}

// LogEnd is where a removed device's log ends: the list version that
// removes the device records it, and nothing after it is read.
type LogEnd struct {
	Size uint64 `json:"size"`
	Root []byte `json:"root"` // merkle root of the Size blocks, 32 bytes
}

// logWriter is what the device lists say about one log's writer.
type logWriter struct {
	identity ratchet.PublicIdentity
	from, to uint64 // the epochs it was on the list in (to: the last one)
	removed  bool   // not on the newest list
	end      *LogEnd
}

// canWrite reports whether the writer may have written a block under
// epoch e.
func (w *logWriter) canWrite(e uint64) bool {
	return e >= w.from && (!w.removed || e <= w.to)
}

// logWriters reads what every version of the device list (in order) says
// about the writers of history logs.
func logWriters(lists []*DeviceList) map[string]*logWriter {
	ws := map[string]*logWriter{}
	for _, l := range lists {
		listed := map[string]bool{}
		for _, d := range l.Devices {
			listed[d.ID] = true
			w, ok := ws[d.ID]
			if !ok {
				pub, err := ratchet.ParsePublicIdentity(d.Identity)
				if err != nil {
					continue // verifyList refuses such a list
				}
				w = &logWriter{identity: pub, from: l.Epoch}
				ws[d.ID] = w
			}
			w.to, w.removed = l.Epoch, false
		}
		for id, w := range ws {
			if !listed[id] {
				w.removed = true
			}
		}
		for id, end := range l.Ends {
			if w, ok := ws[id]; ok && !listed[id] && w.end == nil && len(end.Root) == len(merkle.Hash{}) {
				e := end
				w.end = &e
			}
		}
	}
	return ws
}

// directoryLists returns every version of the device list this device
// keeps, in order, and the current one if it is newer.
func (a *Account) directoryLists() ([]*DeviceList, error) {
	cur, err := a.deviceList()
	if err != nil {
		return nil, err
	}
	keys := a.epochKeys()
	var lists []*DeviceList
	err = a.db.View(func(tx *bolt.Tx) error {
		var epoch uint64
		return tx.Bucket(bucketDirectory).ForEach(func(k, v []byte) error {
			e, err := openValue("directory chunk", v)
			if err != nil {
				return err
			}
			if len(k) != 8 {
				return fmt.Errorf("%w: directory version key of %d bytes", ErrCorruptState, len(k))
			}
			version := binary.BigEndian.Uint64(k)
			key, ok := keys[epoch]
			if !ok {
				return nil // an epoch not sealed to us: we are removed
			}
			_, chunk := splitDirEntry(a.history[:], version, e)
			l, _, err := openDirectory(key[:], version, epoch, chunk, a.accountPub)
			if err != nil {
				return fmt.Errorf("%w: device list version %d kept here: %v", ErrCorruptState, version, err)
			}
			lists = append(lists, l)
			epoch = l.Epoch
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	if len(lists) == 0 || lists[len(lists)-1].Version < cur.Version {
		lists = append(lists, cur)
	}
	return lists, nil
}

// writerCache holds logWriters of the directory as of one list version.
type writerCache struct {
	mu      gosync.Mutex
	version uint64
	writers map[string]*logWriter
}

// logWriter returns what the device lists say about a log's writer; nil if
// no list this device knows names it.
func (a *Account) logWriter(device string) (*logWriter, error) {
	cur, err := a.deviceList()
	if err != nil {
		return nil, err
	}
	a.writers.mu.Lock()
	defer a.writers.mu.Unlock()
	if a.writers.writers == nil || a.writers.version != cur.Version {
		lists, err := a.directoryLists()
		if err != nil {
			return nil, err
		}
		a.writers.writers, a.writers.version = logWriters(lists), cur.Version
	}
	return a.writers.writers[device], nil
}

// logEnd returns the size and root of a device's log as read here.
func (a *Account) logEnd(device string) (LogEnd, error) {
	var cur *logCursor
	err := a.db.View(func(tx *bolt.Tx) (err error) { cur, err = loadCursor(tx, device); return })
	if err != nil {
		return LogEnd{}, err
	}
	root := cur.frontier().Root()
	return LogEnd{Size: cur.Next, Root: root[:]}, nil
}

// recordEnds records in next, the list version that removes them, where the
// logs of the removed devices end: what this device has read of them.
func (a *Account) recordEnds(next *DeviceList, removed []string) error {
	for _, id := range removed {
		end, err := a.logEnd(id)
		if err != nil {
			return err
		}
		if next.Ends == nil {
			next.Ends = map[string]LogEnd{}
		}
		next.Ends[id] = end
	}
	return nil
}

// repackFrom seals this device's blocks from index from on again under the
// current epoch, in the slots of that epoch, because the slot of block from
// in the epoch it was packed under holds another chunk: a device removed in
// a later epoch, which still derives the slots of the epochs it was in, took
// it before this device learnt of the removal. Readers look for a block in
// later epochs' slots when the one they are in holds junk, so the log goes
// on there. It reports whether it repacked anything (only if the current
// epoch is later than the block's).
func (a *Account) repackFrom(from uint64) (bool, error) {
	keys := a.epochKeys()
	epoch, key := keys.current()
	repacked := false
	err := a.db.Update(func(tx *bolt.Tx) error {
		blocks := tx.Bucket(bucketBlocks)
		r, err := a.ownBlock(from, blocks.Get(u64(from)))
		if err != nil {
			return err
		}
		if r.Epoch >= epoch {
			return nil // the slot was taken within the current epoch: nothing to move to
		}
		tree, err := logTree(tx, a.device, from)
		if err != nil {
			return err
		}
		f := new(merkle.Frontier)
		for i := range tree.Size() {
			f.Append(tree.Leaf(i))
		}
		for index := from; ; index++ {
			data := blocks.Get(u64(index))
			if data == nil {
				break
			}
			r, err := a.ownBlock(index, data)
			if err != nil {
				return err
			}
			old, err := keys.sealedUnder(index, r)
			if err != nil {
				return err
			}
			content, err := openContent(secretKey("history", old[:]), blockAD(a.device, index), r.Chunk)
			if err != nil || len(content) < 1+blockSigSize || content[0] != blockFormat {
				return fmt.Errorf("%w: own history block %d does not open", ErrCorruptState, index)
			}
			b := new(block)
			if err := json.Unmarshal(content[1+blockSigSize:], b); err != nil {
				return fmt.Errorf("%w: own history block %d: %v", ErrCorruptState, index, err)
			}
			root := f.Root()
			b.Epoch, b.Prev = epoch, root[:]
			body, err := json.Marshal(b)
			if err != nil {
				return err
			}
			chunk, err := sealContent(secretKey("history", key[:]), blockAD(a.device, index), encodeBlock(a.id, body), a.opts.Rand)
			if err != nil {
				return fmt.Errorf("repacking history block %d: %w", index, err)
			}
			// Inline in the database, not in the block file: a block
			// rewritten in place in the file before this commits would
			// not match the hash the database still holds after a crash.
			if err := putRecord(blocks, u64(index), &blockRecord{Chunk: chunk, Epoch: epoch}); err != nil {
				return err
			}
			if err := tx.Bucket(bucketUnstored).Put(u64(index), marker); err != nil {
				return err
			}
			if err := putLeaf(tx, a.device, index, chunk); err != nil {
				return err
			}
			f.Append(merkle.LeafHash(chunk))
		}
		own := cursorOf(f)
		own.Epoch = epoch
		repacked = true
		return putRecord(tx.Bucket(bucketLogs), []byte(a.device), own)
	})
	return repacked, err
}
