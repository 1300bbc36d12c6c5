package sync

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/transport"
)

// Issue 12, item 3: a device of the account (here a linked laptop, which
// holds HK but not the account key) squats the next directory slots with
// junk on a write-once store. Nothing stops: polls report the junk once and
// read the conversation, link and remove write past it, the other devices
// and a restore read past it. Once removed, the laptop cannot derive the
// directory slots of the new epoch: junk in every slot it can derive reaches
// nobody.
func TestDirectorySquatting(t *testing.T) {
	ctx := context.Background()
	store := feed.NewMemory()
	tr := nopCloser{transport.NewDirect(store)}
	newAcct := func(name string) *Account {
		a, err := Create(t.TempDir(), name, tr, Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close() })
		return a
	}
	alice, bob := newAcct("alice"), newAcct("bob")
	phrase := alice.RecoveryPhrase()
	inv, _ := alice.Invite("bob")
	if _, err := bob.Accept(ctx, inv, ""); err != nil {
		t.Fatal(err)
	}
	join := func(name string) *Account {
		t.Helper()
		d, _, _, err := linkAndJoin(ctx, alice, name, time.Hour, t.TempDir(), tr, Options{})
		if err != nil {
			t.Fatalf("join %s: %v", name, err)
		}
		t.Cleanup(func() { d.Close() })
		return d
	}
	poll := func(a *Account) *PollResult {
		t.Helper()
		res, err := a.Poll(ctx, nil)
		if err != nil {
			t.Fatalf("%s poll: %v", a.device, err)
		}
		return res
	}
	junkAt := func(problems []error) int {
		n := 0
		for _, p := range problems {
			if strings.Contains(p.Error(), "directory slot") {
				n++
			}
		}
		return n
	}
	laptop := join("laptop")
	for range 3 {
		poll(alice)
		poll(bob)
		poll(laptop)
	}

	// The laptop squats the next three versions' slots.
	cur, _ := alice.deviceList()
	hk := laptop.epochKeys()[cur.Epoch]
	for v := cur.Version + 1; v <= cur.Version+3; v++ {
		junk := make([]byte, feed.ChunkSize)
		rand.Read(junk)
		if err := store.Put(ctx, directorySlot(hk[:], v), junk); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := bob.Send(ctx, "alice", "through the junk"); err != nil {
		t.Fatal(err)
	}
	res := poll(alice)
	if junkAt(res.Problems) != 3 {
		t.Fatalf("junk not reported: %v", res.Problems)
	}
	if len(res.New) != 1 || res.New[0].Body != "through the junk" {
		t.Fatalf("alice read %v", msgBodies(res.New))
	}
	if res := poll(alice); junkAt(res.Problems) != 0 {
		t.Fatalf("junk reported again: %v", res.Problems)
	}

	// Link and remove write past the junk; the laptop reads past it too.
	phone := join("phone")
	if res := poll(laptop); junkAt(res.Problems) != 3 {
		t.Fatalf("laptop: %v", res.Problems)
	}
	if l, _ := laptop.deviceList(); l.find(phone.device) == nil || l.Version != cur.Version+4 {
		t.Fatalf("laptop's list is version %d without the phone", l.Version)
	}
	if _, err := alice.RemoveDevice(ctx, "laptop"); err != nil {
		t.Fatal(err)
	}
	if _, err := laptop.Poll(ctx, nil); !errors.Is(err, ErrDeviceRemoved) {
		t.Fatalf("removed laptop polls: %v", err)
	}

	// The removed laptop fills every directory slot it can derive.
	cur, _ = alice.deviceList()
	for _, key := range laptop.epochKeys() {
		for v := uint64(1); v <= cur.Version+5; v++ {
			junk := make([]byte, feed.ChunkSize)
			rand.Read(junk)
			store.Put(ctx, directorySlot(key[:], v), junk) // used slots refuse: fine
		}
	}
	if _, err := bob.Send(ctx, "alice", "after the removal"); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		for _, a := range []*Account{alice, phone, bob} {
			if res := poll(a); len(res.Problems) != 0 {
				t.Fatalf("%s: %v", a.device, res.Problems)
			}
		}
	}
	tablet := join("tablet")
	r, stats, err := Restore(ctx, t.TempDir(), phrase, "restored", tr, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if junkAt(stats.Problems) != 3 {
		t.Fatalf("restore: %v", stats.Problems)
	}
	for _, a := range []*Account{alice, phone, tablet, r} {
		for range 3 {
			poll(a)
		}
		h, _ := a.History("bob", Query{})
		if len(h) != 2 || h[1].Body != "after the removal" {
			t.Fatalf("device %s: %v", a.device, msgBodies(h))
		}
		l, _ := a.deviceList()
		if l.find(tablet.device) == nil || l.find(r.device) == nil {
			t.Fatalf("device %s misses a device", a.device)
		}
	}
	if !bytes.Equal(alice.accountPub.Bytes(), r.accountPub.Bytes()) {
		t.Fatal("restored another account")
	}
}

func msgBodies(msgs []Message) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, m.Body)
	}
	return out
}
