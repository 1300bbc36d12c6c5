package sync

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/sync/merkle"
	bolt "go.etcd.io/bbolt"
)

// recordLocations remembers, for each message a block logs, where: the first
// block found is kept.
func recordLocations(tx *bolt.Tx, b *block) error {
	where := tx.Bucket(bucketWhere)
	for _, e := range b.Entries {
		if e.Type != "msg" {
			continue
		}
		key := append(contactPrefix(e.Contact), e.Origin...)
		if where.Get(key) != nil {
			continue
		}
		if err := where.Put(key, append([]byte(b.Device), u64(b.Index)...)); err != nil {
			return err
		}
	}
	return nil
}

// MessageProof shows that a message is in the account's history log: the
// block that logs it, and an RFC 9162 inclusion proof of that block in its
// device's log of Size blocks with root Root.
type MessageProof struct {
	Device string
	Block  uint64
	Size   uint64
	Root   merkle.Hash
	Proof  []merkle.Hash
	Chunk  []byte // the block as stored
}

// ErrNotLogged reports a message no history block logs (yet): history off,
// or not written to the store yet.
var ErrNotLogged = errors.New("the message is not in the history log yet")

// ProveMessage fetches the block that logs a message and proves it is in its
// device's log as this device knows it (and checks the proof).
func (a *Account) ProveMessage(ctx context.Context, m Message) (*MessageProof, error) {
	var p MessageProof
	var tree *merkle.Tree
	var origin []byte
	err := a.db.View(func(tx *bolt.Tx) error {
		rec, err := messageByLocal(tx, m.Contact, m.Local)
		if err != nil {
			return err
		}
		loc := tx.Bucket(bucketWhere).Get(append(contactPrefix(m.Contact), rec.Origin...))
		if len(loc) != 2*deviceIDSize+8 {
			return ErrNotLogged
		}
		p.Device, p.Block = string(loc[:2*deviceIDSize]), binary.BigEndian.Uint64(loc[2*deviceIDSize:])
		origin = rec.Origin
		cur, err := loadCursor(tx, p.Device)
		if err != nil {
			return err
		}
		if tree, err = logTree(tx, p.Device, cur.Next); err != nil {
			return err
		}
		p.Size, p.Root = tree.Size(), tree.Root()
		p.Proof, err = tree.InclusionProof(p.Block, p.Size)
		return err
	})
	if err != nil {
		return nil, err
	}
	// The block is in the slot of the epoch it was sealed in: the one whose
	// chunk the tree holds.
	err = feed.ErrNotFound
	for _, key := range a.epochKeys() {
		chunk, gerr := a.tr.Get(ctx, logSlot(key[:], p.Device, p.Block))
		if gerr == nil && merkle.VerifyInclusion(p.Block, p.Size, merkle.LeafHash(chunk), p.Proof, p.Root) == nil {
			p.Chunk, err = chunk, nil
			break
		}
		if gerr != nil && !errors.Is(gerr, feed.ErrNotFound) {
			err = gerr
		}
	}
	if err != nil {
		return nil, fmt.Errorf("fetching history block %d of device %s: %w", p.Block, p.Device, err)
	}
	return &p, a.verifyProof(m, &p, tree, origin)
}

// VerifyMessageProof checks a proof against this device's view of the log
// and the message: the block is included under the root this device holds
// for that log size, it opens under the history key, and it logs the
// message with its body.
func (a *Account) VerifyMessageProof(m Message, p *MessageProof) error {
	var tree *merkle.Tree
	var origin []byte
	err := a.db.View(func(tx *bolt.Tx) error {
		rec, err := messageByLocal(tx, m.Contact, m.Local)
		if err != nil {
			return err
		}
		origin = rec.Origin
		tree, err = logTree(tx, p.Device, p.Size)
		return err
	})
	if err != nil {
		return err
	}
	return a.verifyProof(m, p, tree, origin)
}

// verifyProof checks a proof against tree, this device's view of the log
// (at least p.Size blocks), and the message with the given origin.
func (a *Account) verifyProof(m Message, p *MessageProof, tree *merkle.Tree, origin []byte) error {
	if err := merkle.VerifyInclusion(p.Block, p.Size, merkle.LeafHash(p.Chunk), p.Proof, p.Root); err != nil {
		return fmt.Errorf("%w: %v", ErrTamperedLog, err)
	}
	if tree.RootAt(p.Size) != p.Root {
		return fmt.Errorf("%w: the proof's root is not this device's root of log %s at size %d", ErrTamperedLog, p.Device, p.Size)
	}
	if p.Block >= p.Size {
		return fmt.Errorf("%w: block %d beyond the log's %d", ErrTamperedLog, p.Block, p.Size)
	}
	w, err := a.logWriter(p.Device)
	if err != nil {
		return err
	}
	if w == nil {
		return fmt.Errorf("%w: no device list names device %s", ErrTamperedLog, p.Device)
	}
	var b *block
	err = fmt.Errorf("%w: block %d of device %s opens under no epoch key its device had", ErrTamperedLog, p.Block, p.Device)
	for e, key := range a.epochKeys() {
		if _, oerr := openContent(secretKey("history", key[:]), blockAD(p.Device, p.Block), p.Chunk); oerr != nil || !w.canWrite(e) {
			continue
		}
		b, err = openBlock(key[:], e, w.identity, p.Device, p.Block, p.Chunk, tree.RootAt(p.Block))
		break
	}
	if err != nil {
		return err
	}
	whole := (&content{Text: m.Body, Attach: m.Attachment}).marshal()
	for _, e := range b.Entries {
		if e.Type != "msg" || e.Contact != m.Contact || !bytes.Equal(e.Origin, origin) {
			continue
		}
		// A long or file message: the block logs its first entry, which
		// the proof covers (logcontent.go).
		if e.Kind == 0 && string(e.Body) == m.Body || e.Kind != 0 && e.Part == 0 && bytes.HasPrefix(whole, e.Body) {
			return nil
		}
	}
	return fmt.Errorf("%w: block %d of device %s does not log this message", ErrTamperedLog, p.Block, p.Device)
}

func messageByLocal(tx *bolt.Tx, contact string, local uint64) (*messageRecord, error) {
	data := tx.Bucket(bucketMessages).Get(contactKey(contact, local))
	if data == nil {
		return nil, fmt.Errorf("no message %d with %s", local, contact)
	}
	m := new(messageRecord)
	return m, decodeRecord("message", data, m)
}
