package feed

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Embedded is the default Store: a directory of chunk files on local disk.
//
// It needs no lock, so several processes (alice and bob on one machine) can
// use one directory at once. A chunk is written to a temporary file, synced,
// and then hard-linked to its final name: link fails if the name exists, which
// makes "create if absent" atomic across processes, and a torn write can never
// be found under a chunk's name. A file of the wrong size is reported as
// corrupt rather than returned.
type Embedded struct {
	dir string
	// NoSync skips the fsyncs of a put: a crash may then leave a chunk
	// file torn or lose it. For setting up benchmarks only.
	NoSync bool
}

// OpenEmbedded opens (creating if needed) the embedded store in dir.
func OpenEmbedded(dir string) (*Embedded, error) {
	if dir == "" {
		return nil, errors.New("embedded store: no directory given")
	}
	for _, d := range []string{dir, filepath.Join(dir, "tmp")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("embedded store: %w", err)
		}
	}
	return &Embedded{dir: dir}, nil
}

// Dir returns the store's directory.
func (e *Embedded) Dir() string { return e.dir }

// path maps a slot to its file. The name is SHA-256(slot ‖ "addr"), so file
// names reveal nothing about the slot, and the first byte fans files out over
// 256 subdirectories.
func (e *Embedded) path(slot Slot) string {
	addr := DeriveKey(slot, "addr")
	name := hex.EncodeToString(addr[:])
	return filepath.Join(e.dir, name[:2], name[2:])
}

// Put implements Store.
func (e *Embedded) Put(ctx context.Context, slot Slot, chunk []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := CheckChunk(chunk); err != nil {
		return err
	}
	final := e.path(slot)
	if err := e.sameOrAbsent(final, chunk); err != nil {
		return err
	}
	if e.NoSync {
		return e.putUnsynced(final, chunk)
	}
	tmp, err := e.writeTemp(chunk)
	if err != nil {
		return fmt.Errorf("embedded store: put %v: %w", slot, err)
	}
	defer os.Remove(tmp)
	if err := os.MkdirAll(filepath.Dir(final), 0o700); err != nil {
		return fmt.Errorf("embedded store: put %v: %w", slot, err)
	}
	if err := os.Link(tmp, final); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Another writer won the race: fine if it wrote the same bytes.
			return e.sameOrAbsent(final, chunk)
		}
		return fmt.Errorf("embedded store: put %v: %w", slot, err)
	}
	return syncDir(filepath.Dir(final))
}

// putUnsynced writes chunk straight to its name, unsynced (NoSync).
func (e *Embedded) putUnsynced(final string, chunk []byte) error {
	f, err := os.OpenFile(final, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrNotExist) {
		if err = os.MkdirAll(filepath.Dir(final), 0o700); err == nil {
			f, err = os.OpenFile(final, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		}
	}
	if errors.Is(err, fs.ErrExist) {
		return e.sameOrAbsent(final, chunk)
	}
	if err != nil {
		return fmt.Errorf("embedded store: put: %w", err)
	}
	_, werr := f.Write(chunk)
	return errors.Join(werr, f.Close())
}

// sameOrAbsent returns nil if path is absent or already holds chunk.
func (e *Embedded) sameOrAbsent(path string, chunk []byte) error {
	old, err := readChunkFile(path)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil
	case err != nil:
		return err
	case !bytes.Equal(old, chunk):
		return ErrSlotUsed
	}
	return nil
}

func (e *Embedded) writeTemp(chunk []byte) (string, error) {
	f, err := os.CreateTemp(filepath.Join(e.dir, "tmp"), "chunk-*")
	if err != nil {
		return "", err
	}
	name := f.Name()
	_, werr := f.Write(chunk)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(name)
		return "", err
	}
	return name, nil
}

// Get implements Store.
func (e *Embedded) Get(ctx context.Context, slot Slot) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c, err := readChunkFile(e.path(slot))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("embedded store: get %v: %w", slot, err)
	}
	return c, err
}

func readChunkFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, ChunkSize+1)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if n != ChunkSize {
		return nil, fmt.Errorf("%w: chunk file %s has %d bytes, want %d", ErrCorrupt, path, n, ChunkSize)
	}
	return buf[:ChunkSize], nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Close implements Store. The embedded store holds no open files.
func (e *Embedded) Close() error { return nil }
