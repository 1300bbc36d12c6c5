package sync

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/ratchet"
	"github.com/deaddrop/deaddrop/transport"
	bolt "go.etcd.io/bbolt"
)

// A device list or device invite on alice's announcement feed that alice's
// account did not sign (written by whoever learnt the feed's secret) is
// reported and changes nothing: bob keeps alice's list, starts no session.
func TestForgedDeviceList(t *testing.T) {
	ctx := context.Background()
	store := feed.NewMemory()
	tr := nopCloser{transport.NewDirect(store)}
	alice, err := Create(t.TempDir(), "alice", tr, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	bob, err := Create(t.TempDir(), "bob", tr, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	inv, _ := alice.Invite("bob")
	if _, err := bob.Accept(ctx, inv, ""); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		alice.Poll(ctx, nil)
		bob.Poll(ctx, nil)
	}
	var before *contactRecord
	bob.db.View(func(tx *bolt.Tx) (err error) { before, err = loadContact(tx, "alice"); return })
	if len(before.PeerList) == 0 || len(before.PeerAnn) != 32 {
		t.Fatal("bob has not learnt alice's devices")
	}

	// A rogue key signs a list adding its own device, and invites bob's.
	rogue, _ := ratchet.NewIdentity(rand.Reader)
	forged := &DeviceList{Account: alice.accountPub.Bytes(), Name: "alice", Version: 9, Devices: []Device{
		{ID: alice.device, Name: "first", Identity: alice.id.Public().Bytes()},
		{ID: "00000000000000ff", Name: "evil", Identity: rogue.Public().Bytes()}}}
	signed, _ := signList(rogue, forged)
	if _, err := verifyList(signed, alice.accountPub); !errors.Is(err, ErrForgedList) {
		t.Fatalf("forged list: %v", err)
	}
	rogueInv, _, _ := ratchet.NewInvite(rogue, "alice", time.Hour, time.Now(), rand.Reader)
	entry := []byte(`{"list":` + string(jsonBytes(signed)) + `,"from":"00000000000000ff","for":"` + bob.device + `","invite":"` + rogueInv.String() + `"}`)
	var i uint64
	for ; ; i++ {
		if _, err := store.Get(ctx, annSlot(before.PeerAnn, i)); errors.Is(err, feed.ErrNotFound) {
			break
		}
	}
	chunk, _ := sealContent(secretKey("announce", before.PeerAnn), annAD(i), entry, rand.Reader)
	if err := store.Put(ctx, annSlot(before.PeerAnn, i), chunk); err != nil {
		t.Fatal(err)
	}
	res, _ := bob.Poll(ctx, nil)
	found := false
	for _, p := range res.Problems {
		found = found || errors.Is(p, ErrForgedList)
	}
	if !found {
		t.Fatalf("forged announcement not reported: %v", res.Problems)
	}
	var after *contactRecord
	bob.db.View(func(tx *bolt.Tx) (err error) { after, err = loadContact(tx, "alice"); return })
	if !bytes.Equal(after.PeerList, before.PeerList) {
		t.Fatal("bob adopted a forged device list")
	}
	if cs, _ := bob.Contacts(); cs[0].Sessions != 1 {
		t.Fatalf("bob has %d sessions with alice after a forged invite", cs[0].Sessions)
	}
}

// jsonBytes returns b as encoding/json encodes a []byte (a base64 string).
func jsonBytes(b []byte) []byte {
	out, _ := json.Marshal(b)
	return out
}

// After a device is removed, what the account logs is sealed under a new
// epoch key the removed device never gets: it can find the new blocks (it
// knows the history key) but not open them. A restore from the phrase opens
// them with the recovery key.
func TestRemovedDeviceCannotReadNewHistory(t *testing.T) {
	ctx := context.Background()
	store := feed.NewMemory()
	tr := nopCloser{transport.NewDirect(store)}
	a1, err := Create(t.TempDir(), "alice", tr, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a1.Close()
	logOne := func(body string) {
		t.Helper()
		err := a1.db.Update(func(tx *bolt.Tx) error {
			return a1.stage(tx, &logEntry{Type: "contact", Contact: "bob", MyAnn: bytes.Repeat([]byte(body[:1]), 32)})
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := a1.flushLog(ctx); err != nil {
			t.Fatal(err)
		}
	}
	logOne("before")
	a2, _, _, err := linkAndJoin(ctx, a1, "laptop", time.Hour, t.TempDir(), tr, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a2.Close()
	if _, err := a1.RemoveDevice(ctx, "laptop"); err != nil {
		t.Fatal(err)
	}
	logOne("after")
	noop := func(*bolt.Tx, []*logEntry) error { return nil }
	// Since protocol version 4 the new block's slot derives from the new
	// epoch's key: the removed device cannot even find it.
	if n, err := a2.readLog(ctx, a2.fetchAll, a1.device, noop); n != 0 || err != nil {
		t.Fatalf("the removed device read %d blocks of a1's log (%v)", n, err)
	}
	if _, err := a2.Poll(ctx, nil); !errors.Is(err, ErrDeviceRemoved) {
		t.Fatalf("removed device polls: %v", err)
	}
	phrase := a1.RecoveryPhrase()
	r, stats, err := Restore(ctx, t.TempDir(), phrase, "phone", tr, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if stats.Blocks != 2 || len(r.epochKeys()) != 2 {
		t.Fatalf("restore read %d blocks with %d epoch keys, want 2 and 2", stats.Blocks, len(r.epochKeys()))
	}
}
