package sync

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// compactSuffix names the file a compaction writes beside the state file
// before renaming it into place. One left by an interrupted compaction is
// never read: the account opens state.db only, and the next Compact removes
// it.
const compactSuffix = ".compact"

// compactTxSize is how many bytes of keys and values one transaction of the
// copy writes before it commits: the copy's memory is bounded by this, not
// by the size of the state.
const compactTxSize = 4 << 20

// Compaction reports a Compact: the state file's length before and after.
type Compaction struct {
	Before, After int64
}

// Compact rewrites the state database of the account in dir into a file
// that holds its live pages only: bbolt reuses the pages it frees but never
// gives them back, so a long-lived account's state file only grows. It does
// not need the account's keys or transport, and it refuses (ErrHomeLocked)
// while another process has the home open.
//
// A crash at any point loses nothing: the copy is written to
// state.db.compact and synced, and only then renamed over state.db (the old
// file stays the valid one until that rename, and the rename is atomic);
// the state file stays locked for the whole of it.
func Compact(dir string) (Compaction, error) {
	var res Compaction
	path := filepath.Join(dir, stateFile)
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return res, ErrNoAccount
	}
	if err != nil {
		return res, err
	}
	res.Before = fi.Size()
	src, err := openBolt(path, &bolt.Options{Timeout: 300 * time.Millisecond})
	if errors.Is(err, bolt.ErrTimeout) {
		return res, fmt.Errorf("%w (%s)", ErrHomeLocked, dir)
	}
	if err != nil {
		return res, fmt.Errorf("%w: state file %s cannot be opened: %v", ErrCorruptState, path, err)
	}
	defer src.Close() // after the rename: the lock is held throughout
	if fi, err := os.Stat(path); err == nil {
		res.Before = fi.Size()
	}
	tmp := path + compactSuffix
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return res, err
	}
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{NoSync: true, Timeout: time.Second})
	if err != nil {
		return res, err
	}
	fail := func(err error) (Compaction, error) {
		dst.Close()
		os.Remove(tmp)
		return res, fmt.Errorf("compact %s: %w", path, err)
	}
	if err := bolt.Compact(dst, src, compactTxSize); err != nil {
		return fail(err)
	}
	if err := dst.Sync(); err != nil {
		return fail(err)
	}
	if err := dst.Close(); err != nil {
		os.Remove(tmp)
		return res, err
	}
	// bbolt syncs with fdatasync; sync the file once more in full (its
	// length) before it replaces the old one.
	if err := syncPath(tmp); err != nil {
		os.Remove(tmp)
		return res, err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return res, err
	}
	if err := syncPath(dir); err != nil {
		return res, err
	}
	if fi, err := os.Stat(path); err == nil {
		res.After = fi.Size()
	}
	return res, nil
}

func syncPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	return errors.Join(err, f.Close())
}

// openBolt opens the state file at path and takes its lock, like
// bolt.Open, and makes sure the file it locked is still the one at path: a
// process that opened state.db and waited for its lock while a compaction
// renamed a new file over it would hold the old, unlinked file (and write
// to it), so it opens again.
func openBolt(path string, opts *bolt.Options) (*bolt.DB, error) {
	for try := 0; ; try++ {
		before, err := os.Stat(path)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		db, err := bolt.Open(path, 0o600, opts)
		if err != nil {
			return nil, err
		}
		after, err := os.Stat(path)
		if err == nil && before != nil && os.SameFile(before, after) || before == nil || try == 10 {
			return db, nil
		}
		db.Close()
	}
}
