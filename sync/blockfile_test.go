package sync_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/sync"
)

// kept lists the chunks a keeps alive.
func kept(a *sync.Account) (map[feed.Slot][]byte, error) {
	got := map[feed.Slot][]byte{}
	err := a.Kept(func(s feed.Slot, c []byte) error { got[s] = c; return nil })
	return got, err
}

// Own history blocks live in a file beside the state database: they are
// read back whole, state written when blocks were inline is still read, and
// a damaged block file is named as such, never put on the store.
func TestOwnBlocksFile(t *testing.T) {
	p := newPair(t)
	for _, body := range []string{"one", "two", "three"} {
		send(t, p.alice, "bob", body)
	}
	before, err := kept(p.alice)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(p.dirA, "logblocks.dat")
	fi, err := os.Stat(path)
	if err != nil || fi.Size() == 0 || fi.Size()%feed.ChunkSize != 0 {
		t.Fatalf("block file: %v, %v", fi, err)
	}

	// State from before the block file: blocks inline in JSON.
	if err := sync.InlineOwnBlocksForTest(p.alice); err != nil {
		t.Fatal(err)
	}
	p.alice.Close()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if p.alice, err = sync.Open(p.dirA, direct(p.store), sync.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.alice.Close() })
	inline, err := kept(p.alice)
	if err != nil || len(inline) != len(before) {
		t.Fatalf("inline blocks: %d kept of %d, %v", len(inline), len(before), err)
	}
	for s, c := range before {
		if string(inline[s]) != string(c) {
			t.Fatalf("inline block at %x differs", s)
		}
	}
	// New blocks go to the file again, old ones stay readable.
	send(t, p.alice, "bob", "four")
	after, err := kept(p.alice)
	if err != nil || len(after) <= len(before) {
		t.Fatalf("after a send: %d kept, %v", len(after), err)
	}

	// A flipped byte in the file: damaged state, named.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-1] ^= 1
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = kept(p.alice)
	if !errors.Is(err, sync.ErrCorruptState) || !strings.Contains(err.Error(), "logblocks.dat") {
		t.Fatalf("damaged block file: %v", err)
	}
	if _, err := p.alice.RepublishAll(ctx); err == nil {
		t.Fatal("republished from a damaged block file")
	}
}
