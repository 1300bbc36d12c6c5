package sync_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/deaddrop/deaddrop/sync"
)

// TestCompact: a state file that grew and freed pages shrinks; the account
// opens and reads every message after it; the home in use is refused; a
// damaged file left by an interrupted compaction is never read and is
// removed by the next one.
func TestCompact(t *testing.T) {
	p := newPair(t)
	const n = 300
	for i := 0; i < n; i++ {
		send(t, p.bob, "alice", fmt.Sprintf("message %d %0400d", i, i))
	}
	poll(t, p.alice)
	if _, err := sync.Compact(p.dirA); !errors.Is(err, sync.ErrHomeLocked) {
		t.Fatalf("Compact of a home in use: %v, want ErrHomeLocked", err)
	}
	before, err := p.alice.History("bob", sync.Query{})
	if err != nil || len(before) != n {
		t.Fatalf("history before: %d messages, %v", len(before), err)
	}
	p.alice.Close()

	// An interrupted compaction: a damaged copy beside the state file.
	tmp := filepath.Join(p.dirA, "state.db.compact")
	if err := os.WriteFile(tmp, []byte("half a database"), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := sync.Open(p.dirA, direct(p.store), sync.Options{})
	if err != nil {
		t.Fatalf("open beside a damaged compaction file: %v", err)
	}
	a.Close()

	res, err := sync.Compact(p.dirA)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("state file %d → %d bytes", res.Before, res.After)
	if res.After <= 0 || res.After >= res.Before {
		t.Errorf("state file %d → %d bytes: not smaller", res.Before, res.After)
	}
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("compaction file left behind: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(p.dirA, "state.db")); err != nil || fi.Size() != res.After {
		t.Errorf("state file after: %v, %v", fi, err)
	}

	a, err = sync.Open(p.dirA, direct(p.store), sync.Options{})
	if err != nil {
		t.Fatalf("open after compaction: %v", err)
	}
	defer a.Close()
	after, err := a.History("bob", sync.Query{})
	if err != nil || len(after) != n {
		t.Fatalf("history after: %d messages, %v", len(after), err)
	}
	for i := range before {
		if before[i].Body != after[i].Body || before[i].ID != after[i].ID || before[i].State != after[i].State {
			t.Fatalf("message %d: %+v before, %+v after", i, before[i], after[i])
		}
	}
	page, err := a.History("bob", sync.Query{Limit: 10})
	if err != nil || len(page) != 10 || page[9].Body != before[n-1].Body || page[0].Body != before[n-10].Body {
		t.Fatalf("last page after: %d messages, %v", len(page), err)
	}
	// It still works: send and receive.
	send(t, a, "bob", "after compaction")
	send(t, p.bob, "alice", "welcome back")
	if res := poll(t, a); res.NewCount != 1 {
		t.Fatalf("after compaction: delivered %d", res.NewCount)
	}
	if got := poll(t, p.bob).NewCount; got != 1 {
		t.Fatalf("bob after alice's compaction: delivered %d", got)
	}
	if _, err := sync.Compact(t.TempDir()); !errors.Is(err, sync.ErrNoAccount) {
		t.Errorf("Compact of an empty home: %v, want ErrNoAccount", err)
	}
}
