package sync_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/sync"
)

// settle polls every account a few rounds, so that device lists, invites,
// hellos and metas travel both ways.
func settle(t *testing.T, accts ...*sync.Account) {
	t.Helper()
	for range 4 {
		for _, a := range accts {
			poll(t, a)
		}
	}
}

func sessions(t *testing.T, a *sync.Account, contact string) int {
	t.Helper()
	cs, err := a.Contacts()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.Name == contact {
			return c.Sessions
		}
	}
	return 0
}

func history(t *testing.T, a *sync.Account, contact string) string {
	t.Helper()
	h, err := a.History(contact, sync.Query{})
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, m := range h {
		s = append(s, m.Body)
	}
	return strings.Join(s, ",")
}

func unseen(t *testing.T, a *sync.Account, contact string) []sync.Message {
	t.Helper()
	h, err := a.History(contact, sync.Query{UnseenOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// Alice on two devices and bob: bob's messages reach both, what alice sends
// or reads on one shows on the other, a removed device gets nothing new, and
// a device restored from the phrase alone has the whole history and carries
// on.
func TestDevicesAndRestore(t *testing.T) {
	p := newPair(t)
	phrase := p.alice.RecoveryPhrase()
	if phrase == "" {
		t.Fatal("no recovery phrase")
	}
	send(t, p.alice, "bob", "a1")
	settle(t, p.bob)
	send(t, p.bob, "alice", "b1")
	settle(t, p.alice, p.bob)

	lk, err := p.alice.LinkDevice(ctx, "laptop", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	code := lk.Code
	a2, stats, dev, err := sync.JoinLinkForTest(ctx, p.alice, lk, t.TempDir(), direct(p.store), sync.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a2.Close() })
	if a2.DeviceID() != dev.ID || stats.Messages != 2 {
		t.Fatalf("joined as %s with %d messages, want %s with 2", a2.DeviceID(), stats.Messages, dev.ID)
	}
	if h := history(t, a2, "bob"); h != "a1,b1" {
		t.Fatalf("linked device history %q", h)
	}
	if _, _, err := sync.JoinDevice(ctx, t.TempDir(), code, direct(p.store), sync.Options{}); !errors.Is(err, sync.ErrBadLinkCode) {
		t.Fatalf("second use of a link code: %v", err)
	}
	settle(t, p.alice, a2, p.bob)
	if n := sessions(t, p.bob, "alice"); n != 2 {
		t.Fatalf("bob has %d sessions with alice's devices, want 2", n)
	}

	send(t, p.bob, "alice", "b2 to both")
	settle(t, p.alice, a2)
	for _, a := range []*sync.Account{p.alice, a2} {
		if h := history(t, a, "bob"); h != "a1,b1,b2 to both" {
			t.Fatalf("%s history %q", a.DeviceID(), h)
		}
	}
	send(t, a2, "bob", "a2 from laptop")
	settle(t, p.bob, p.alice, a2)
	if h := history(t, p.bob, "alice"); h != "a1,b1,b2 to both,a2 from laptop" {
		t.Fatalf("bob history %q", h)
	}
	if h := history(t, p.alice, "bob"); h != "a1,b1,b2 to both,a2 from laptop" {
		t.Fatalf("first device does not show the laptop's message: %q", h)
	}
	// Read state: the laptop's message is read by bob on both; seen on one
	// device is seen on the other.
	h, _ := p.alice.History("bob", sync.Query{})
	if last := h[len(h)-1]; last.State != sync.Read {
		t.Fatalf("laptop's message on the first device is %v, want read", last.State)
	}
	if err := p.alice.MarkSeen(unseen(t, p.alice, "bob")); err != nil {
		t.Fatal(err)
	}
	settle(t, p.alice, a2)
	if u := unseen(t, a2, "bob"); len(u) != 0 {
		t.Fatalf("seen on the first device, unseen on the laptop: %v", bodies(u))
	}

	// Remove the laptop: bob drops its session, the laptop learns it is out.
	if _, err := p.alice.RemoveDevice(ctx, "laptop"); err != nil {
		t.Fatal(err)
	}
	settle(t, p.bob)
	if n := sessions(t, p.bob, "alice"); n != 1 {
		t.Fatalf("bob still has %d sessions after the laptop was removed", n)
	}
	send(t, p.bob, "alice", "b3 not for the laptop")
	if _, err := a2.Poll(ctx, nil); !errors.Is(err, sync.ErrDeviceRemoved) {
		t.Fatalf("removed device polls: %v", err)
	}
	if h := history(t, a2, "bob"); strings.Contains(h, "b3") {
		t.Fatalf("removed device read a new message: %q", h)
	}
	settle(t, p.alice)
	want := "a1,b1,b2 to both,a2 from laptop,b3 not for the laptop"
	if h := history(t, p.alice, "bob"); h != want {
		t.Fatalf("alice %q", h)
	}

	// The first device is destroyed; restore from the phrase alone.
	p.alice.Close()
	os.RemoveAll(p.dirA)
	a3, rs, err := sync.Restore(ctx, t.TempDir(), phrase, "phone", direct(p.store), sync.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a3.Close() })
	if h := history(t, a3, "bob"); h != want {
		t.Fatalf("restored history %q, want %q", h, want)
	}
	t.Logf("restore: %+v", *rs)
	// Written before any of bob's devices has a session with the new one:
	// it waits, and goes out on the first session.
	if _, err := a3.Send(ctx, "bob", "a3 early"); !errors.Is(err, sync.ErrNotStored) {
		t.Fatalf("send before any session: %v", err)
	}
	settle(t, a3, p.bob)
	if h := history(t, p.bob, "alice"); !strings.HasSuffix(h, "a3 early") {
		t.Fatalf("bob did not get the message written before the session: %q", h)
	}
	send(t, p.bob, "alice", "b4 after restore")
	send(t, a3, "bob", "a3 restored")
	settle(t, a3, p.bob)
	if h := history(t, a3, "bob"); !strings.HasSuffix(h, "b4 after restore,a3 restored") && !strings.HasSuffix(h, "a3 restored,b4 after restore") {
		t.Fatalf("restored device does not chat: %q", h)
	}
	if h := history(t, p.bob, "alice"); !strings.Contains(h, "a3 restored") {
		t.Fatalf("bob did not get the restored device's message: %q", h)
	}
}

func TestRestoreBadInput(t *testing.T) {
	p := newPair(t)
	phrase := p.alice.RecoveryPhrase()
	poll(t, p.alice) // writes the directory and the log
	dir := t.TempDir()
	typo := []byte(phrase)
	// One letter changed (to a different letter whatever the phrase holds).
	if typo[3] == 'c' {
		typo[3] = 'd'
	} else {
		typo[3] = 'c'
	}
	for _, bad := range []string{"", "hello", string(typo), phrase + "a"} {
		if _, _, err := sync.Restore(ctx, dir, bad, "x", direct(p.store), sync.Options{}); !errors.Is(err, sync.ErrBadPhrase) {
			t.Errorf("phrase %q: %v", bad, err)
		}
	}
	other := newAccount(t, t.TempDir(), "carol", direct(feed.NewMemory()))
	if _, _, err := sync.Restore(ctx, dir, other.RecoveryPhrase(), "x", direct(p.store), sync.Options{}); err == nil || !strings.Contains(err.Error(), "no account found") {
		t.Errorf("another account's phrase: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("failed restores left %v", entries)
	}
	for _, code := range []string{"", "ddlink1-", "ddlink1-aaaaaaaaaaaaaaaaaaaaaaaaaa", "xyz"} {
		if _, _, err := sync.JoinDevice(ctx, dir, code, direct(p.store), sync.Options{}); !errors.Is(err, sync.ErrBadLinkCode) {
			t.Errorf("link code %q: %v", code, err)
		}
	}
	lk, err := p.alice.LinkDevice(ctx, "old", time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	if _, _, _, err := sync.JoinLinkForTest(ctx, p.alice, lk, dir, direct(p.store), sync.Options{}); !errors.Is(err, sync.ErrLinkExpired) {
		t.Errorf("expired code: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "state.db")); err == nil {
		t.Error("a failed join left a state file")
	}
}

// A tampered history block is reported by the restore as a problem naming
// it and skipped (protocol version 4: a slot that does not hold a valid block
// of the log, such as one a removed device wrote, must not stop a restore).
func TestRestoreTamperedLog(t *testing.T) {
	st := &slotLog{Memory: feed.NewMemory(), chunks: map[feed.Slot][]byte{}}
	tr := direct(st)
	alice := newAccount(t, t.TempDir(), "alice", tr)
	bob := newAccount(t, t.TempDir(), "bob", tr)
	inv, _ := alice.Invite("bob")
	if _, err := bob.Accept(ctx, inv, ""); err != nil {
		t.Fatal(err)
	}
	poll(t, alice)
	send(t, alice, "bob", "hello")
	// Restore from a copy of the store with one slot's chunk altered, for
	// every slot: whichever is a history block must fail verification.
	failed := 0
	for s := range st.chunks {
		copyStore := feed.NewMemory()
		for s2, c := range st.chunks {
			if s2 == s {
				c = slices.Clone(c)
				c[100] ^= 1
			}
			copyStore.Put(ctx, s2, c)
		}
		dir := t.TempDir()
		r, stats, err := sync.Restore(ctx, dir, alice.RecoveryPhrase(), "x", direct(copyStore), sync.Options{})
		if err != nil {
			if _, serr := os.Stat(filepath.Join(dir, "state.db")); serr == nil {
				t.Error("a failed restore left a state file")
			}
			continue
		}
		for _, p := range stats.Problems {
			if errors.Is(p, sync.ErrTamperedLog) {
				failed++
				if cs, _ := r.Contacts(); len(cs) != 0 {
					t.Errorf("restored %d contacts from a tampered block", len(cs))
				}
				break
			}
		}
		r.Close()
	}
	if failed == 0 {
		t.Fatal("no tampered block was detected")
	}
	if _, _, err := sync.Restore(ctx, t.TempDir(), alice.RecoveryPhrase(), "x", tr, sync.Options{}); err != nil {
		t.Fatalf("restore from the untouched store: %v", err)
	}
}

// slotLog remembers every chunk written.
type slotLog struct {
	*feed.Memory
	mu     gosync.Mutex
	chunks map[feed.Slot][]byte
}

func (s *slotLog) Put(ctx2 context.Context, slot feed.Slot, c []byte) error {
	s.mu.Lock()
	s.chunks[slot] = slices.Clone(c)
	s.mu.Unlock()
	return s.Memory.Put(ctx2, slot, c)
}

// Every message of a conversation is provably in the history log, on the
// device that logged it and on one that only read the log; a proof with a
// tampered block, path or root is refused.
func TestMessageProofs(t *testing.T) {
	p := newPair(t)
	send(t, p.alice, "bob", "one")
	settle(t, p.bob, p.alice)
	send(t, p.bob, "alice", "two")
	settle(t, p.alice)
	restored, _, err := sync.Restore(ctx, t.TempDir(), p.alice.RecoveryPhrase(), "r", direct(p.store), sync.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer restored.Close()
	for _, a := range []*sync.Account{p.alice, restored} {
		msgs, _ := a.History("bob", sync.Query{})
		if len(msgs) != 2 {
			t.Fatalf("%d messages", len(msgs))
		}
		for _, m := range msgs {
			proof, err := a.ProveMessage(ctx, m)
			if err != nil {
				t.Fatalf("prove %q: %v", m.Body, err)
			}
			bad := *proof
			bad.Chunk = slices.Clone(proof.Chunk)
			bad.Chunk[50] ^= 1
			if err := a.VerifyMessageProof(m, &bad); !errors.Is(err, sync.ErrTamperedLog) {
				t.Fatalf("tampered block accepted: %v", err)
			}
			bad = *proof
			bad.Root[0] ^= 1
			if err := a.VerifyMessageProof(m, &bad); !errors.Is(err, sync.ErrTamperedLog) {
				t.Fatalf("tampered root accepted: %v", err)
			}
			if len(proof.Proof) > 0 {
				bad = *proof
				bad.Proof = slices.Clone(proof.Proof)
				bad.Proof[0][0] ^= 1
				if err := a.VerifyMessageProof(m, &bad); !errors.Is(err, sync.ErrTamperedLog) {
					t.Fatalf("tampered path accepted: %v", err)
				}
			}
			other := m
			other.Body = "forged"
			if err := a.VerifyMessageProof(other, proof); !errors.Is(err, sync.ErrTamperedLog) {
				t.Fatalf("proof accepted for another body: %v", err)
			}
		}
	}
}

// A store that lost everything (a Bee dev node restarts empty) gets the
// account's device lists and history log back from 'republish', and a
// restore works again.
func TestRestoreAfterStoreLoss(t *testing.T) {
	p := newPair(t)
	send(t, p.alice, "bob", "before the loss")
	settle(t, p.bob, p.alice)
	p.store.Reset()
	if _, _, err := sync.Restore(ctx, t.TempDir(), p.alice.RecoveryPhrase(), "x", direct(p.store), sync.Options{}); err == nil {
		t.Fatal("restore from an empty store succeeded")
	}
	if _, err := p.alice.RepublishAll(ctx); err != nil {
		t.Fatal(err)
	}
	r, _, err := sync.Restore(ctx, t.TempDir(), p.alice.RecoveryPhrase(), "x", direct(p.store), sync.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if h := history(t, r, "bob"); h != "before the loss" {
		t.Fatalf("restored %q", h)
	}
	// bob put his announcements back too: the restored device and bob's
	// find each other and chat.
	if _, err := p.bob.RepublishAll(ctx); err != nil {
		t.Fatal(err)
	}
	settle(t, r, p.bob)
	send(t, p.bob, "alice", "after the loss")
	settle(t, r)
	if h := history(t, r, "bob"); h != "before the loss,after the loss" {
		t.Fatalf("restored device after the loss: %q", h)
	}
}

// History off: no phrase, no devices, nothing written to the store but the
// conversation (and the announcement feed peers need) — and chat still works
// with a contact whose history is on.
func TestHistoryOff(t *testing.T) {
	store := feed.NewMemory()
	alice, err := sync.Create(t.TempDir(), "alice", direct(store), sync.Options{NoHistory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	bob := newAccount(t, t.TempDir(), "bob", direct(store))
	if alice.RecoveryPhrase() != "" {
		t.Fatal("a recovery phrase without history")
	}
	if _, err := alice.LinkDevice(ctx, "laptop", time.Minute); !errors.Is(err, sync.ErrNoHistory) {
		t.Fatalf("link with history off: %v", err)
	}
	inv, _ := alice.Invite("bob")
	if _, err := bob.Accept(ctx, inv, ""); err != nil {
		t.Fatal(err)
	}
	settle(t, alice, bob)
	send(t, alice, "bob", "no history here")
	settle(t, bob, alice)
	if h := history(t, bob, "alice"); h != "no history here" {
		t.Fatalf("bob %q", h)
	}
	if heads, _ := alice.LogHeads(); len(heads) != 0 {
		t.Fatalf("history off, but a log: %+v", heads)
	}
}

// link adds a device to a's account and joins it.
func link(t *testing.T, a *sync.Account, store feed.Store, name string) *sync.Account {
	t.Helper()
	d, _, _, err := sync.LinkAndJoinForTest(ctx, a, name, time.Minute, t.TempDir(), direct(store), sync.Options{})
	if err != nil {
		t.Fatalf("join %s: %v", name, err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// restore restores a device of the account from its phrase.
func restore(t *testing.T, phrase string, store feed.Store, name string) (*sync.Account, *sync.RestoreStats) {
	t.Helper()
	r, stats, err := sync.Restore(ctx, t.TempDir(), phrase, name, direct(store), sync.Options{})
	if err != nil {
		t.Fatalf("restore %s: %v", name, err)
	}
	t.Cleanup(func() { r.Close() })
	return r, stats
}

// Issue 12, item 8: five devices, two removed, two restored, and again: the
// device lists (with an epoch's keys and the removed devices), the meta
// messages and the device invites that carry them still fit, every device
// reads, and bob's devices start sessions with the new ones.
func TestDeviceChurn(t *testing.T) {
	p := newPair(t)
	phrase := p.alice.RecoveryPhrase()
	send(t, p.alice, "bob", "a0")
	settle(t, p.alice, p.bob)
	devs := []*sync.Account{p.alice}
	for i := range 4 {
		devs = append(devs, link(t, p.alice, p.store, fmt.Sprintf("long-device-name-number-%08d", i)))
	}
	settle(t, append(devs, p.bob)...)
	want := "a0"
	for round := range 3 {
		for _, d := range devs[1:3] {
			if _, err := p.alice.RemoveDevice(ctx, d.DeviceID()); err != nil {
				t.Fatalf("round %d: remove: %v", round, err)
			}
		}
		devs = append(devs[:1], devs[3:]...)
		for i := range 2 {
			r, _ := restore(t, phrase, p.store, fmt.Sprintf("restored-in-round-%d-number-%d", round, i))
			devs = append(devs, r)
		}
		settle(t, append(devs, p.bob)...)
		if n := sessions(t, p.bob, "alice"); n != len(devs) {
			t.Fatalf("round %d: bob has %d sessions with alice's %d devices", round, n, len(devs))
		}
		body := fmt.Sprintf("b%d", round)
		send(t, p.bob, "alice", body)
		settle(t, append(devs, p.bob)...)
		want += "," + body
		for _, d := range devs {
			if h := history(t, d, "bob"); h != want {
				t.Fatalf("round %d: device %s has %q, want %q", round, d.DeviceID(), h, want)
			}
		}
	}
	list, _, err := p.alice.Devices()
	if err != nil || len(list) != sync.MaxDevices {
		t.Fatalf("%d devices, %v", len(list), err)
	}
}

// Issue 12, item 10: a device linked after a removal, and one whose code was
// made before a removal and used after it, learn every epoch key: they read
// the history from before and after the removal and poll without problems.
func TestJoinAfterRemoval(t *testing.T) {
	p := newPair(t)
	send(t, p.alice, "bob", "before")
	settle(t, p.alice, p.bob)
	old := link(t, p.alice, p.store, "old")
	settle(t, p.alice, old, p.bob)
	early, err := p.alice.LinkDevice(ctx, "early", time.Minute) // used after the removal
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.alice.RemoveDevice(ctx, "old"); err != nil {
		t.Fatal(err)
	}
	send(t, p.alice, "bob", "after")
	settle(t, p.alice, p.bob)
	late := link(t, p.alice, p.store, "late")
	e, _, _, err := sync.JoinLinkForTest(ctx, p.alice, early, t.TempDir(), direct(p.store), sync.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	settle(t, p.alice, late, e, p.bob)
	send(t, p.bob, "alice", "to all")
	settle(t, p.alice, late, e, p.bob)
	for _, d := range []*sync.Account{late, e} {
		if h := history(t, d, "bob"); h != "before,after,to all" {
			t.Fatalf("device %s: history %q", d.DeviceID(), h)
		}
	}
}

// Issue 12, item 7: four abandoned restores fill the account; the phrase
// still restores, evicting one of them (not a device that logged history),
// and says so. With every device in use it evicts the oldest. History is
// whole every time.
func TestRestoreEvicts(t *testing.T) {
	p := newPair(t)
	phrase := p.alice.RecoveryPhrase()
	send(t, p.alice, "bob", "hi")
	settle(t, p.alice, p.bob)
	var abandoned []string
	for i := range 4 {
		r, _ := restore(t, phrase, p.store, fmt.Sprintf("abandoned%d", i))
		abandoned = append(abandoned, r.DeviceID())
		r.Close() // and its home is lost
	}
	if _, err := p.alice.LinkDevice(ctx, "sixth", time.Minute); err == nil {
		t.Fatal("linked a sixth device")
	}
	r, stats := restore(t, phrase, p.store, "phone")
	if len(stats.Evicted) != 1 || !slices.Contains(abandoned, stats.Evicted[0].ID) {
		t.Fatalf("evicted %+v, want one abandoned restore of %v", stats.Evicted, abandoned)
	}
	if h := history(t, r, "bob"); h != "hi" {
		t.Fatalf("restored history %q", h)
	}
	settle(t, p.alice, r, p.bob)
	send(t, p.bob, "alice", "still here")
	settle(t, p.alice, r, p.bob)
	for _, d := range []*sync.Account{p.alice, r} {
		if h := history(t, d, "bob"); h != "hi,still here" {
			t.Fatalf("device %s: %q", d.DeviceID(), h)
		}
	}

	// Every device has logged something: the oldest goes (the first one).
	for _, id := range abandoned {
		if id != stats.Evicted[0].ID {
			if _, err := p.alice.RemoveDevice(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
	}
	var used []*sync.Account
	for i := range 3 {
		d := link(t, p.alice, p.store, fmt.Sprintf("used%d", i))
		used = append(used, d)
	}
	list, _, _ := p.alice.Devices()
	if len(list) != sync.MaxDevices {
		t.Fatalf("%d devices", len(list))
	}
	// Twice: a device session carries data only once its peer's meta
	// verified, a round after it starts (issue 12, item 1).
	settle(t, append(used, p.alice, r, p.bob)...)
	settle(t, append(used, p.alice, r, p.bob)...)
	for _, d := range append(used, p.alice, r) {
		send(t, d, "bob", "from "+d.DeviceID())
	}
	settle(t, append(used, p.alice, r, p.bob)...)
	r2, stats := restore(t, phrase, p.store, "tablet")
	if len(stats.Evicted) != 1 || stats.Evicted[0].ID != p.alice.DeviceID() {
		t.Fatalf("evicted %+v, want the oldest device %s", stats.Evicted, p.alice.DeviceID())
	}
	if _, err := p.alice.Poll(ctx, nil); !errors.Is(err, sync.ErrDeviceRemoved) {
		t.Fatalf("evicted device polls: %v", err)
	}
	sorted := func(h string) string { s := strings.Split(h, ","); slices.Sort(s); return strings.Join(s, ",") }
	if got, want := sorted(history(t, r2, "bob")), sorted(history(t, r, "bob")); got != want || strings.Count(got, "from ") != 5 {
		t.Fatalf("restored after eviction: %q, want %q", got, want)
	}
	settle(t, append(used, r, r2, p.bob)...)
}
