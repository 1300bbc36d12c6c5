package feed

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Bulk objects live beside the chunks, under bulk/, named by the SHA-256 of
// their content. An object is streamed into a temporary file while hashed,
// synced, and linked to its name: a torn write is never found under a name,
// and two writers of the same bytes agree on the one file.

// bulkPath maps a reference (a SHA-256 digest) to its file.
func (e *Embedded) bulkPath(ref [sha256.Size]byte) string {
	name := hex.EncodeToString(ref[:])
	return filepath.Join(e.dir, "bulk", name[:2], name[2:])
}

// PutBulk implements BulkStore.
func (e *Embedded) PutBulk(ctx context.Context, r io.Reader) ([]byte, error) {
	tmp, ref, err := e.writeBulkTemp(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("embedded store: put bulk: %w", err)
	}
	defer os.Remove(tmp)
	final := e.bulkPath(ref)
	if err := os.MkdirAll(filepath.Dir(final), 0o700); err != nil {
		return nil, fmt.Errorf("embedded store: put bulk: %w", err)
	}
	if err := os.Link(tmp, final); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("embedded store: put bulk: %w", err)
	}
	if err := syncDir(filepath.Dir(final)); err != nil {
		return nil, fmt.Errorf("embedded store: put bulk: %w", err)
	}
	return ref[:], nil
}

// writeBulkTemp copies r into a synced temporary file and returns its name
// and the SHA-256 of what was written.
func (e *Embedded) writeBulkTemp(ctx context.Context, r io.Reader) (string, [sha256.Size]byte, error) {
	var ref [sha256.Size]byte
	f, err := os.CreateTemp(filepath.Join(e.dir, "tmp"), "bulk-*")
	if err != nil {
		return "", ref, err
	}
	h := sha256.New()
	_, werr := io.Copy(io.MultiWriter(f, h), ctxReader{ctx, r})
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(f.Name())
		return "", ref, err
	}
	h.Sum(ref[:0])
	return f.Name(), ref, nil
}

// GetBulk implements BulkStore. The content is hashed as it is read, so a
// file damaged on disk ends in ErrCorrupt rather than EOF.
func (e *Embedded) GetBulk(ctx context.Context, ref []byte) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(ref) != sha256.Size {
		return nil, fmt.Errorf("embedded store: %w: want %d bytes, got %d", ErrBadRef, sha256.Size, len(ref))
	}
	f, err := os.Open(e.bulkPath([sha256.Size]byte(ref)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("embedded store: bulk %x: %w", ref[:8], ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("embedded store: bulk %x: %w", ref[:8], err)
	}
	return newVerifyingReader(f, [sha256.Size]byte(ref)), nil
}

// ctxReader stops a copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
