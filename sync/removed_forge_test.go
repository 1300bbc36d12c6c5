package sync

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/ratchet"
	"github.com/deaddrop/deaddrop/sync/merkle"
	"github.com/deaddrop/deaddrop/transport"
	bolt "go.etcd.io/bbolt"
)

// Issue 12, item 2: a removed device keeps its whole state (HK, the keys of
// the epochs it was in, its device identity) and, running a modified client,
// logs forged incoming and outgoing messages, a fake contact with keys of its
// choosing and read states: to its own log, past the end its removal
// recorded, and into the logs of the remaining devices under HK₀ (slots it
// can still derive). Every remaining device's Poll and a later restore from
// the phrase report what they skip, fail nothing, apply none of it, and lose
// nothing legitimate (what the laptop logged before its removal included).
func TestRemovedDeviceForgesHistory(t *testing.T) {
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
			t.Fatalf("link and join %s: %v", name, err)
		}
		t.Cleanup(func() { d.Close() })
		return d
	}
	var problems []error
	poll := func(accts ...*Account) {
		t.Helper()
		for range 3 {
			for _, a := range accts {
				res, err := a.Poll(ctx, nil)
				if err != nil {
					t.Fatalf("%s poll: %v", a.device, err)
				}
				problems = append(problems, res.Problems...)
			}
		}
	}
	sendTo := func(a *Account, to, body string) {
		t.Helper()
		if _, err := a.Send(ctx, to, body); err != nil {
			t.Fatalf("%s send: %v", a.device, err)
		}
	}
	poll(alice, bob)
	phone, laptop := join("phone"), join("laptop")
	poll(alice, phone, laptop, bob)
	sendTo(alice, "bob", "a1")
	poll(alice, phone, laptop, bob)
	sendTo(laptop, "bob", "l1") // logged by the laptop before its removal: kept
	poll(alice, phone, laptop, bob)
	sendTo(bob, "alice", "b1") // never marked seen by anyone
	poll(alice, phone, laptop, bob)
	want := "a1,l1,b1"
	for _, d := range []*Account{alice, phone, laptop} {
		if h := bodies(t, d, "bob"); h != want {
			t.Fatalf("before removal: %s has %q, want %q", d.device, h, want)
		}
	}
	var b1 *messageRecord
	laptop.db.View(func(tx *bolt.Tx) error {
		m, err := messagesOf(tx, "bob")
		if err == nil {
			b1 = m[2]
		}
		return err
	})
	if b1 == nil || b1.Body != "b1" || b1.Seen {
		t.Fatalf("the laptop's b1: %+v", b1)
	}

	if _, err := alice.RemoveDevice(ctx, "laptop"); err != nil {
		t.Fatal(err)
	}
	l, _ := alice.deviceList()
	if end, ok := l.Ends[laptop.device]; !ok || end.Size == 0 {
		t.Fatalf("the removing list records no end for the laptop's log: %+v", l.Ends)
	}

	// The attacker's moves, with the laptop's state (it never learns
	// epoch 1).
	evil, _ := ratchet.NewIdentity(rand.Reader)
	forged := []*logEntry{
		{Type: "contact", Contact: "mallory", Created: time.Now().UTC(), MyAnn: bytes.Repeat([]byte{0xee}, 32),
			PeerAnn: bytes.Repeat([]byte{0xef}, 32), PeerAccount: evil.Public().Bytes()},
		{Type: "msg", Contact: "bob", Origin: bytes.Repeat([]byte{0xf1}, originSize), Dir: Incoming, Body: []byte("forged in"),
			Sent: time.Now().UTC(), Received: time.Now().UTC(), State: Received},
		{Type: "msg", Contact: "bob", Origin: bytes.Repeat([]byte{0xf2}, originSize), Dir: Outgoing, Body: []byte("forged out"),
			Sent: time.Now().UTC(), State: Read, Seen: true},
		{Type: "msg", Contact: "mallory", Origin: bytes.Repeat([]byte{0xf3}, originSize), Dir: Incoming, Body: []byte("forged mallory"),
			Sent: time.Now().UTC(), Received: time.Now().UTC(), State: Received},
		{Type: "state", Contact: "bob", Origin: b1.Origin, State: Read, Seen: true},
	}
	// 1. Its own log, past the recorded end, as its client would write it.
	if err := laptop.db.Update(func(tx *bolt.Tx) error {
		for _, e := range forged {
			if err := laptop.stage(tx, e); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := laptop.flushLog(ctx); err != nil {
		t.Fatal(err)
	}
	// 2. The next blocks of the remaining devices' logs, under HK₀ (and
	// the epoch-0 slots it derives from HK), signed with its own key.
	forgeNext := func(victim *Account) {
		t.Helper()
		next := uint64(0)
		for {
			if _, err := store.Get(ctx, logSlot(laptop.history[:], victim.device, next)); errors.Is(err, feed.ErrNotFound) {
				break
			}
			next++
		}
		heads, _ := laptop.LogHeads()
		for index := next; index < next+3; index++ {
			var prev merkle.Hash // the root it extends, if the laptop knows it
			if i := slices.IndexFunc(heads, func(h LogHead) bool { return h.Device == victim.device }); i >= 0 && heads[i].Size == index {
				prev = heads[i].Root
			}
			body, _ := json.Marshal(&block{Device: victim.device, Index: index, Epoch: 0, Prev: prev[:], Entries: forged})
			chunk, err := sealContent(secretKey("history", laptop.history[:]), blockAD(victim.device, index), encodeBlock(laptop.id, body), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			if err := store.Put(ctx, logSlot(laptop.history[:], victim.device, index), chunk); err != nil {
				t.Fatalf("squatting block %d of %s: %v", index, victim.device, err)
			}
		}
	}
	forgeNext(alice)
	forgeNext(phone)

	// The phone has not polled since the removal: it packs its next block
	// under epoch 0, whose slot the laptop took. Once it learns epoch 1 it
	// repacks the block there, and its siblings read it.
	sendTo(phone, "bob", "p0")
	phone.settlePacked() // packed now, under epoch 0, as a send's pause would
	poll(phone, alice, bob)
	// The remaining devices log on (in epoch 1) and read each other.
	sendTo(alice, "bob", "a2")
	poll(alice, phone, bob)
	sendTo(phone, "bob", "p1")
	poll(alice, phone, bob)
	sendTo(bob, "alice", "b2")
	poll(alice, phone, bob)
	want = "a1,l1,b1,p0,a2,p1,b2"
	check := func(d *Account, what string) {
		t.Helper()
		if h := bodies(t, d, "bob"); h != want {
			t.Errorf("%s: history %q, want %q", what, h, want)
		}
		cs, _ := d.Contacts()
		for _, c := range cs {
			if c.Name == "mallory" {
				t.Errorf("%s: a forged contact was applied", what)
			}
		}
	}
	for _, d := range []*Account{alice, phone} {
		check(d, d.device)
		u, _ := d.History("bob", Query{UnseenOnly: true})
		if !slices.ContainsFunc(u, func(m Message) bool { return m.Body == "b1" }) {
			t.Errorf("%s: b1 marked seen by a forged state entry", d.device)
		}
	}
	tampered := 0
	for _, p := range problems {
		if errors.Is(p, ErrTamperedLog) {
			tampered++
		}
	}
	if !slices.ContainsFunc(problems, func(p error) bool { return strings.Contains(p.Error(), "repacked") }) {
		t.Errorf("the phone's block packed under epoch 0 was not repacked: %v", problems)
	}
	if tampered == 0 {
		t.Errorf("the forged blocks were not reported: %v", problems)
	}

	r, stats, err := Restore(ctx, t.TempDir(), phrase, "restored", tr, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	check(r, "restore")
	reported := false
	for _, p := range stats.Problems {
		reported = reported || errors.Is(p, ErrTamperedLog)
	}
	if !reported {
		t.Errorf("the restore did not report the forged blocks: %v", stats.Problems)
	}
	for _, p := range append(problems, stats.Problems...) {
		if strings.Contains(p.Error(), "forged") {
			t.Errorf("problem quotes forged content: %v", p)
		}
	}
}

// bodies lists a conversation's message bodies in order.
func bodies(t *testing.T, a *Account, contact string) string {
	t.Helper()
	h, err := a.History(contact, Query{})
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, m := range h {
		s = append(s, m.Body)
	}
	return strings.Join(s, ",")
}

// messagesOf returns a conversation's message records in order.
func messagesOf(tx *bolt.Tx, contact string) ([]*messageRecord, error) {
	var out []*messageRecord
	p := contactPrefix(contact)
	c := tx.Bucket(bucketMessages).Cursor()
	for k, v := c.Seek(p); k != nil && hasPrefix(k, p); k, v = c.Next() {
		m := new(messageRecord)
		if err := decodeRecord("message", v, m); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// A history block in protocol version 3's format (unsigned JSON, as a device
// still running version 3 writes it) is not read: the Poll reports it as
// such, fails nothing, and applies nothing of it.
func TestOldFormatHistoryBlock(t *testing.T) {
	ctx := context.Background()
	store := feed.NewMemory()
	tr := nopCloser{transport.NewDirect(store)}
	alice, err := Create(t.TempDir(), "alice", tr, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	laptop, _, _, err := linkAndJoin(ctx, alice, "laptop", time.Hour, t.TempDir(), tr, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer laptop.Close()
	root := new(merkle.Tree).Root()
	old, _ := json.Marshal(&block{Device: laptop.device, Index: 0, Prev: root[:], Entries: []*logEntry{
		{Type: "contact", Contact: "carol", MyAnn: bytes.Repeat([]byte{1}, 32)}}})
	chunk, err := sealContent(secretKey("history", laptop.history[:]), blockAD(laptop.device, 0), old, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Put(ctx, logSlot(laptop.history[:], laptop.device, 0), chunk); err != nil {
		t.Fatal(err)
	}
	res, err := alice.Poll(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range res.Problems {
		found = found || errors.Is(p, ErrOldHistoryBlock)
	}
	if !found {
		t.Fatalf("the version 3 block was not reported as such: %v", res.Problems)
	}
	if cs, _ := alice.Contacts(); len(cs) != 0 {
		t.Fatalf("applied a version 3 block: %+v", cs)
	}
}

// overwriteStore lets a slot be written again with other bytes, as a store
// that cannot tell may.
type overwriteStore struct {
	mu     gosync.Mutex
	chunks map[feed.Slot][]byte
}

func (s *overwriteStore) Put(_ context.Context, slot feed.Slot, chunk []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chunks[slot] = bytes.Clone(chunk)
	return nil
}

func (s *overwriteStore) Get(_ context.Context, slot feed.Slot) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.chunks[slot]; ok {
		return bytes.Clone(c), nil
	}
	return nil, feed.ErrNotFound
}

func (s *overwriteStore) Close() error { return nil }

// On a store that lets a slot be overwritten, a removed device rewrites its
// own block below the end its removal recorded, signed with its own key: a
// restore finds that the log's root at the end is not the recorded one,
// reports it and applies nothing of that log.
func TestRemovedDeviceRewritesItsLog(t *testing.T) {
	ctx := context.Background()
	store := &overwriteStore{chunks: map[feed.Slot][]byte{}}
	tr := nopCloser{transport.NewDirect(store)}
	alice, err := Create(t.TempDir(), "alice", tr, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	laptop, _, _, err := linkAndJoin(ctx, alice, "laptop", time.Hour, t.TempDir(), tr, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer laptop.Close()
	if err := laptop.db.Update(func(tx *bolt.Tx) error {
		return laptop.stage(tx, &logEntry{Type: "contact", Contact: "carol", MyAnn: bytes.Repeat([]byte{1}, 32)})
	}); err != nil {
		t.Fatal(err)
	}
	if err := laptop.flushLog(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.RemoveDevice(ctx, "laptop"); err != nil {
		t.Fatal(err)
	}
	if cs, _ := alice.Contacts(); len(cs) != 1 {
		t.Fatalf("alice did not read the laptop's log before removing it: %+v", cs)
	}
	root := new(merkle.Tree).Root()
	body, _ := json.Marshal(&block{Device: laptop.device, Index: 0, Prev: root[:], Entries: []*logEntry{
		{Type: "contact", Contact: "mallory", MyAnn: bytes.Repeat([]byte{2}, 32)}}})
	chunk, err := sealContent(secretKey("history", laptop.history[:]), blockAD(laptop.device, 0), encodeBlock(laptop.id, body), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	store.Put(ctx, logSlot(laptop.history[:], laptop.device, 0), chunk)
	r, stats, err := Restore(ctx, t.TempDir(), alice.RecoveryPhrase(), "restored", tr, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if cs, _ := r.Contacts(); len(cs) != 0 {
		t.Fatalf("the restore applied a rewritten log: %+v", cs)
	}
	if !slices.ContainsFunc(stats.Problems, func(p error) bool {
		return errors.Is(p, ErrTamperedLog) && strings.Contains(p.Error(), "recorded")
	}) {
		t.Fatalf("the rewritten log was not reported: %v", stats.Problems)
	}
}
