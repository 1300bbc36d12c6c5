package feed_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/feed/feedtest"
)

func TestEmbeddedConformance(t *testing.T) {
	feedtest.Run(t, func(t *testing.T) feed.Store {
		s, err := feed.OpenEmbedded(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// Two handles on one directory behave as one store: the demo's alice and bob
// processes share a directory this way.
func TestEmbeddedSharedDirectory(t *testing.T) {
	dir := t.TempDir()
	a, _ := feed.OpenEmbedded(dir)
	b, _ := feed.OpenEmbedded(dir)
	slot, chunk := feedtest.RandomSlot(t), feedtest.RandomChunk(t)
	if err := a.Put(context.Background(), slot, chunk); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(context.Background(), slot); err != nil {
		t.Fatalf("second handle cannot read: %v", err)
	}
	if err := b.Put(context.Background(), slot, feedtest.RandomChunk(t)); !errors.Is(err, feed.ErrSlotUsed) {
		t.Fatalf("different bytes into a used slot: got %v, want ErrSlotUsed", err)
	}
}

// A truncated chunk file (a disk that lost data) is reported as corrupt, never
// returned, and a torn temporary file is never visible as a chunk.
func TestEmbeddedCorruptFile(t *testing.T) {
	dir := t.TempDir()
	s, _ := feed.OpenEmbedded(dir)
	slot, chunk := feedtest.RandomSlot(t), feedtest.RandomChunk(t)
	if err := s.Put(context.Background(), slot, chunk); err != nil {
		t.Fatal(err)
	}
	// Leave a torn temp file behind, as a crash mid-write would.
	if err := os.WriteFile(filepath.Join(dir, "tmp", "chunk-torn"), chunk[:100], 0o600); err != nil {
		t.Fatal(err)
	}
	var path string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if !d.IsDir() && filepath.Base(filepath.Dir(p)) != "tmp" {
			path = p
		}
		return nil
	})
	if err := os.Truncate(path, 100); err != nil {
		t.Fatal(err)
	}
	_, err := s.Get(context.Background(), slot)
	if !errors.Is(err, feed.ErrCorrupt) {
		t.Fatalf("truncated chunk: got %v, want ErrCorrupt", err)
	}
	if _, err := s.Get(context.Background(), feedtest.RandomSlot(t)); !errors.Is(err, feed.ErrNotFound) {
		t.Fatalf("torn temp file visible: %v", err)
	}
}

func TestEmbeddedBulkConformance(t *testing.T) {
	feedtest.RunBulk(t, func(t *testing.T) feed.BulkStore {
		s, err := feed.OpenEmbedded(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// A bulk file damaged on disk reads as ErrCorrupt, never as a clean EOF.
func TestEmbeddedBulkDamaged(t *testing.T) {
	dir := t.TempDir()
	s, _ := feed.OpenEmbedded(dir)
	ref, err := s.PutBulk(context.Background(), bytes.NewReader(feedtest.RandomBytes(t, 5000)))
	if err != nil {
		t.Fatal(err)
	}
	name := hex.EncodeToString(ref)
	path := filepath.Join(dir, "bulk", name[:2], name[2:])
	if err := os.WriteFile(path, feedtest.RandomBytes(t, 5000), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := feedtest.ReadBulk(context.Background(), s, ref); !errors.Is(err, feed.ErrCorrupt) {
		t.Fatalf("damaged bulk file: got %v, want ErrCorrupt", err)
	}
}
