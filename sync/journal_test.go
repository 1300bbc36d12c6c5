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

// copyHome copies the files of an account's home as they are on disk now.
func copyHome(t *testing.T, from, to string) {
	t.Helper()
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCrashAfterPutBeforeCommit: alice's process dies after a send's copy
// was put but before its commit landed (her home is what the disk held at
// that instant). Opened again, the account does the send again from the
// journal: the message is in her history and outbox under the slot the
// store already holds, and the next send uses fresh keys and slots (no
// "slot used"), so bob reads both, in order.
func TestCrashAfterPutBeforeCommit(t *testing.T) {
	p := newPair(t)
	send(t, p.alice, "bob", "before")
	crashed := t.TempDir()
	sync.SetAfterJournalForTest(func() error { copyHome(t, p.dirA, crashed); return nil })
	m := send(t, p.alice, "bob", "lost commit")
	sync.SetAfterJournalForTest(nil)
	if m.State != sync.Stored {
		t.Fatalf("state %v", m.State)
	}
	slot, _ := sync.OutboxSlotForTest(p.alice, "bob", m.Seq)
	p.alice.Close()

	alice, err := sync.Open(crashed, direct(p.store), sync.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	h, err := alice.History("bob", sync.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(bodies(h), ","); got != "before,lost commit" {
		t.Fatalf("history after the crash: %s", got)
	}
	if again, ok := sync.OutboxSlotForTest(alice, "bob", m.Seq); !ok || again != slot {
		t.Fatalf("outbox entry %d after the redo: %v (slot %x, was %x)", m.Seq, ok, again, slot)
	}
	if _, err := alice.Send(ctx, "bob", "after"); err != nil {
		t.Fatalf("the send after the redo: %v", err)
	}
	res := poll(t, p.bob)
	if got := strings.Join(bodies(res.New), ","); got != "before,lost commit,after" {
		t.Fatalf("bob read %s", got)
	}
	// The redo is done once: opening again changes nothing.
	alice.Close()
	alice, err = sync.Open(crashed, direct(p.store), sync.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	h, _ = alice.History("bob", sync.Query{})
	if got := strings.Join(bodies(h), ","); got != "before,lost commit,after" {
		t.Fatalf("history after a second open: %s", got)
	}
}

// TestFailedCommitAfterPut: the commit of a send fails after its copy was
// put. The send itself does it again from the journal, so what Send
// returned holds, and the conversation goes on.
func TestFailedCommitAfterPut(t *testing.T) {
	p := newPair(t)
	failed := false
	sync.SetAfterJournalForTest(func() error {
		if failed {
			return nil
		}
		failed = true
		return errors.New("disk full")
	})
	defer sync.SetAfterJournalForTest(nil)
	m := send(t, p.alice, "bob", "one")
	if m.State != sync.Stored {
		t.Fatalf("state %v", m.State)
	}
	send(t, p.alice, "bob", "two")
	h, err := p.alice.History("bob", sync.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(bodies(h), ","); got != "one,two" {
		t.Fatalf("alice's history: %s", got)
	}
	res := poll(t, p.bob)
	if got := strings.Join(bodies(res.New), ","); got != "one,two" {
		t.Fatalf("bob read %s", got)
	}
	if res := poll(t, p.alice); len(res.Read) != 2 {
		t.Fatalf("alice's receipts: %+v", res.Read)
	}
}

// TestJournalTornOrJunk: a journal whose last write never finished, or
// that holds junk, is no send (its flush never happened, so neither did
// any put it would have allowed): the account opens and works.
func TestJournalTornOrJunk(t *testing.T) {
	for name, junk := range map[string][]byte{
		"torn":  append([]byte("ddj1\x00\x00\x10\x00\x00\x00\x00\x00"), `{"Contact":"bob"`...),
		"junk":  []byte("this is not a journal"),
		"empty": nil,
	} {
		t.Run(name, func(t *testing.T) {
			p := newPair(t)
			send(t, p.alice, "bob", "one")
			p.alice.Close()
			if err := os.WriteFile(filepath.Join(p.dirA, sync.JournalFile), junk, 0o600); err != nil {
				t.Fatal(err)
			}
			alice, err := sync.Open(p.dirA, direct(p.store), sync.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer alice.Close()
			send(t, alice, "bob", "two")
			if got := strings.Join(bodies(poll(t, p.bob).New), ","); got != "one,two" {
				t.Fatalf("bob read %s", got)
			}
		})
	}
}

// TestJournalAheadOfState: the state file was replaced by an older copy
// (a backup) while the journal records a later send. Opening refuses with
// an error naming both, rather than encrypting again under keys the store
// has seen.
func TestJournalAheadOfState(t *testing.T) {
	p := newPair(t)
	old := t.TempDir()
	copyHome(t, p.dirA, old)
	send(t, p.alice, "bob", "one")
	send(t, p.alice, "bob", "two")
	p.alice.Close()
	journal, err := os.ReadFile(filepath.Join(p.dirA, sync.JournalFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(old, sync.JournalFile), journal, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = sync.Open(old, direct(feed.NewMemory()), sync.Options{})
	if !errors.Is(err, sync.ErrCorruptState) || !strings.Contains(err.Error(), "send journal") {
		t.Fatalf("open with a journal ahead of the state: %v", err)
	}
}
