package sync

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	gosync "sync"

	"github.com/deaddrop/deaddrop/feed"
	bolt "go.etcd.io/bbolt"
)

// This device's own history blocks live in a file of fixed 4,096-byte
// records beside the state database, block i at offset i × 4,096, and the
// database keeps only each block's SHA-256 (bucketBlocks). A block in a
// bbolt value overflowed to two pages (4,096 bytes plus the page and
// element headers do not fit one page), so half of every block's pages
// were empty, and blocks are the largest part of the state.
//
// The database stays the one commit point: a block is written and synced
// to the file before the transaction that records its hash commits, so a
// crash leaves at most bytes past the last recorded block, which the next
// block at that index overwrites. A record whose bytes do not hash to the
// recorded value is reported as damaged state, never put on the store.
//
// State written before the block file existed keeps its blocks inline (a
// blockRecord in JSON): both are read.

const blockFileName = "logblocks.dat"

// blockFile is the lazily opened file of this device's own blocks.
type blockFile struct {
	mu    gosync.Mutex
	path  string
	f     *os.File
	dirty bool // written since the last sync
}

func (b *blockFile) open() (*os.File, error) {
	if b.f == nil {
		f, err := os.OpenFile(b.path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("history block file: %w", err)
		}
		b.f = f
	}
	return b.f, nil
}

// write puts block index into the file; sync makes it durable.
func (b *blockFile) write(index uint64, chunk []byte) error {
	if len(chunk) != feed.ChunkSize {
		return fmt.Errorf("history block of %d bytes", len(chunk))
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	f, err := b.open()
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(chunk, int64(index)*feed.ChunkSize); err != nil {
		return fmt.Errorf("history block file %s: %w", b.path, err)
	}
	b.dirty = true
	return nil
}

// sync flushes what write wrote; noSync (the database's own setting, for
// bulk set-ups in benchmarks) skips it.
func (b *blockFile) sync(noSync bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.dirty || noSync {
		return nil
	}
	if err := b.f.Sync(); err != nil {
		return fmt.Errorf("history block file %s: %w", b.path, err)
	}
	b.dirty = false
	return nil
}

// read returns block index, checked against the hash the database holds.
func (b *blockFile) read(index uint64, want []byte) ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f, err := b.open()
	if err != nil {
		return nil, err
	}
	chunk := make([]byte, feed.ChunkSize)
	if _, err := f.ReadAt(chunk, int64(index)*feed.ChunkSize); err != nil {
		if errors.Is(err, io.EOF) {
			err = errors.New("the file ends before it")
		}
		return nil, fmt.Errorf("%w: history block %d in %s: %v", ErrCorruptState, index, b.path, err)
	}
	if h := sha256.Sum256(chunk); !bytes.Equal(h[:], want) {
		return nil, fmt.Errorf("%w: history block %d in %s does not match its hash in the state file", ErrCorruptState, index, b.path)
	}
	return chunk, nil
}

func (b *blockFile) close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.f == nil {
		return nil
	}
	err := b.f.Close()
	b.f = nil
	return err
}

func newBlockFile(db *bolt.DB) *blockFile {
	return &blockFile{path: filepath.Join(filepath.Dir(db.Path()), blockFileName)}
}

// putOwnBlock records block index of this device's log, sealed under the
// key of epoch: the bytes in the block file; the hash and the epoch in the
// transaction. The caller syncs the file (syncOwnBlocks) before the
// transaction commits.
func (a *Account) putOwnBlock(tx *bolt.Tx, index uint64, chunk []byte, epoch uint64) error {
	if err := a.blocks.write(index, chunk); err != nil {
		return err
	}
	h := sha256.Sum256(chunk)
	blocks := tx.Bucket(bucketBlocks)
	blocks.FillPercent = 1 // keys only grow: full pages, not half-full ones
	return blocks.Put(u64(index), binary.BigEndian.AppendUint64(h[:], epoch))
}

// sealedUnder returns the key of the epoch own block index (record r) was
// sealed under: its slot and its seal derive from it.
func (k epochKeys) sealedUnder(index uint64, r *blockRecord) ([32]byte, error) {
	key, ok := k[r.Epoch]
	if !ok {
		return key, fmt.Errorf("history block %d: this device lacks the key of epoch %d", index, r.Epoch)
	}
	return key, nil
}

func (a *Account) syncOwnBlocks() error { return a.blocks.sync(a.db.NoSync) }

// ownBlock returns block index of this device's log from its record v: a
// hash and an epoch pointing into the block file, or the block inline in
// JSON (state from before the block file, and blocks repacked in place).
func (a *Account) ownBlock(index uint64, v []byte) (*blockRecord, error) {
	if len(v) == sha256.Size+8 {
		chunk, err := a.blocks.read(index, v[:sha256.Size])
		if err != nil {
			return nil, err
		}
		return &blockRecord{Chunk: chunk, Epoch: binary.BigEndian.Uint64(v[sha256.Size:])}, nil
	}
	r := new(blockRecord)
	if err := decodeRecord("history block", v, r); err != nil {
		return nil, err
	}
	return r, nil
}
