package sync_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/ratchet"
	"github.com/deaddrop/deaddrop/sync"
)

// noContacts fails unless a has no contact, no session and nothing queued.
func noContacts(t *testing.T, a *sync.Account) {
	t.Helper()
	cs, err := a.Contacts()
	if err != nil {
		t.Fatal(err)
	}
	out, err := a.Outbox()
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 0 || len(out) != 0 {
		t.Fatalf("%s kept %d contacts and %d queued messages for a used invite", a.Name(), len(cs), len(out))
	}
}

// An invite used once, by bob, and then again by someone who saw it: the
// second joiner is told the invite was used and keeps nothing; bob's
// conversation carries on.
func TestInviteUsedBySomeoneElse(t *testing.T) {
	p := newPair(t)
	inv, err := p.alice.Invite("carol")
	if err != nil {
		t.Fatal(err)
	}
	carol := newAccount(t, t.TempDir(), "carol", direct(p.store))
	if _, err := carol.Accept(ctx, inv, ""); err != nil {
		t.Fatal(err)
	}
	mallory := newAccount(t, t.TempDir(), "mallory", direct(p.store))
	_, err = mallory.Accept(ctx, inv, "")
	if !errors.Is(err, sync.ErrInviteTaken) || !strings.Contains(err.Error(), "ask for a new one") {
		t.Fatalf("second use of an invite: %v, want ErrInviteTaken", err)
	}
	noContacts(t, mallory)
	// The same person again, on a second try: refused before the store.
	if _, err := carol.Accept(ctx, inv, "carol2"); !errors.Is(err, sync.ErrInviteUsed) {
		t.Fatalf("accepting twice: %v, want ErrInviteUsed", err)
	}
	if res := poll(t, p.alice); len(res.Joined) != 1 || res.Joined[0] != "carol" {
		t.Fatalf("alice's joins: %v", res.Joined)
	}
	send(t, carol, "alice", "hi from carol")
	if got := bodies(poll(t, p.alice).New); len(got) != 1 || got[0] != "hi from carol" {
		t.Fatalf("alice got %v", got)
	}
	send(t, p.alice, "carol", "hi carol")
	if got := bodies(poll(t, carol).New); len(got) != 1 || got[0] != "hi carol" {
		t.Fatalf("carol got %v", got)
	}
}

// A joiner whose store was down at accept learns that the invite was taken
// when the first message is republished: the error says so once, and the
// dead conversation is gone rather than failing every read forever.
func TestInviteTakenWhileOffline(t *testing.T) {
	p := newPair(t)
	inv, _ := p.alice.Invite("carol")
	tr := &failing{Transport: direct(p.store)}
	now := time.Now()
	mallory, err := sync.Create(t.TempDir(), "mallory", tr, sync.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer mallory.Close()
	if _, err := mallory.Accept(ctx, inv, ""); err != nil {
		t.Fatalf("offline accept: %v", err)
	}
	carol := newAccount(t, t.TempDir(), "carol", direct(p.store))
	if _, err := carol.Accept(ctx, inv, ""); err != nil {
		t.Fatal(err)
	}
	tr.up = true
	now = now.Add(time.Minute)
	if _, err := mallory.Republish(ctx); !errors.Is(err, sync.ErrInviteTaken) {
		t.Fatalf("republishing the first message of a taken invite: %v", err)
	}
	noContacts(t, mallory)
	now = now.Add(time.Hour)
	if _, err := mallory.Republish(ctx); err != nil {
		t.Fatalf("second republish: %v", err)
	}
	if res := poll(t, p.alice); len(res.Joined) != 1 || res.Joined[0] != "carol" {
		t.Fatalf("alice's joins: %v", res.Joined)
	}
}

// One name, one invite: a second invite under a name in use is refused,
// pending invites can be listed and cancelled, and a join or accept whose
// name was taken meanwhile gets a fresh one.
func TestInviteNames(t *testing.T) {
	p := newPair(t)
	if _, err := p.alice.Invite("bob"); !errors.Is(err, sync.ErrNameInUse) {
		t.Fatalf("invite under a contact's name: %v", err)
	}
	inv, err := p.alice.Invite("carol")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.alice.Invite("carol"); !errors.Is(err, sync.ErrNameInUse) || !strings.Contains(err.Error(), "pending") {
		t.Fatalf("second invite under one name: %v", err)
	}
	if l, _ := p.alice.PendingInvites(); len(l) != 1 || l[0].Label != "carol" {
		t.Fatalf("pending invites: %+v", l)
	}
	if err := p.alice.CancelInvite("carol"); err != nil {
		t.Fatal(err)
	}
	if err := p.alice.CancelInvite("carol"); err == nil {
		t.Fatal("cancelled an invite twice")
	}
	if l, _ := p.alice.PendingInvites(); len(l) != 0 {
		t.Fatalf("pending after cancel: %+v", l)
	}
	carol := newAccount(t, t.TempDir(), "carol", direct(p.store))
	carol.Accept(ctx, inv, "")
	if res := poll(t, p.alice); len(res.Joined) != 0 {
		t.Fatalf("a cancelled invite joined: %v", res.Joined)
	}

	// Alice invites "dave", then takes the name herself by accepting
	// another dave's invite: the invited dave becomes dave-2.
	inv, _ = p.alice.Invite("dave")
	dave1 := newAccount(t, t.TempDir(), "dave", direct(p.store))
	inv1, _ := dave1.Invite("alice")
	if _, err := p.alice.Accept(ctx, inv1, "dave"); !errors.Is(err, sync.ErrNameInUse) {
		t.Fatalf("accept --as a pending invite's name: %v", err)
	}
	if name, err := p.alice.Accept(ctx, inv1, ""); err != nil || name != "dave-2" {
		t.Fatalf("accept under a pending invite's name: %q, %v", name, err)
	}
	dave2 := newAccount(t, t.TempDir(), "dave", direct(p.store))
	dave2.Accept(ctx, inv, "")
	res, err := p.alice.Poll(ctx, nil)
	if err != nil || len(res.Joined) != 1 || res.Joined[0] != "dave" {
		t.Fatalf("join: %v, %v", res.Joined, err)
	}
	// Accepting under a contact's name: bob's name is taken.
	other := newAccount(t, t.TempDir(), "bob", direct(p.store))
	inv2, _ := other.Invite("alice")
	if name, err := p.alice.Accept(ctx, inv2, ""); err != nil || name != "bob-2" {
		t.Fatalf("accept of a second bob: %q, %v", name, err)
	}
}

// Two pending invites under one name (an old state, or a contact of that
// name arriving from another device's log): the second joiner gets a fresh
// name and the user is told, instead of a join that fails on every Poll.
func TestJoinUnderTakenName(t *testing.T) {
	p := newPair(t)
	inv1, _ := p.alice.Invite("erin")
	inv2, err := sync.InviteUncheckedForTest(p.alice, "erin")
	if err != nil {
		t.Fatal(err)
	}
	for _, inv := range []string{inv1, inv2} {
		erin := newAccount(t, t.TempDir(), "erin", direct(p.store))
		if _, err := erin.Accept(ctx, inv, ""); err != nil {
			t.Fatal(err)
		}
	}
	res, err := p.alice.Poll(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(res.Joined, ",") != "erin,erin-2" && strings.Join(res.Joined, ",") != "erin-2,erin" {
		t.Fatalf("joins: %v", res.Joined)
	}
	if len(res.Problems) != 1 || !strings.Contains(res.Problems[0].Error(), "is called erin-2") {
		t.Fatalf("the rename was not reported: %v", res.Problems)
	}
	if res := poll(t, p.alice); len(res.Joined) != 0 {
		t.Fatalf("joined again: %v", res.Joined)
	}
}

// A first message written after the invite expired is refused, said once,
// and the invite withdrawn; one written in time is picked up even after the
// expiry (the inviter may have been offline).
func TestExpiredInviteRefused(t *testing.T) {
	store := feed.NewMemory()
	now := time.Now()
	clock := func() time.Time { return now }
	alice, err := sync.Create(t.TempDir(), "alice", direct(store), sync.Options{Now: clock, InviteTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	late, _ := alice.Invite("late")
	inTime, _ := alice.Invite("intime")
	mallory := newAccount(t, t.TempDir(), "mallory", direct(store))
	if err := sync.AcceptLateForTest(mallory, late, now.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	bob := newAccount(t, t.TempDir(), "bob", direct(store))
	if _, err := bob.Accept(ctx, inTime, ""); err != nil {
		t.Fatal(err)
	}
	now = now.Add(3 * time.Hour)
	res, err := alice.Poll(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Joined) != 1 || res.Joined[0] != "intime" {
		t.Fatalf("joins: %v", res.Joined)
	}
	if len(res.Problems) != 1 || !errors.Is(res.Problems[0], ratchet.ErrInviteExpired) || !strings.Contains(res.Problems[0].Error(), "late") {
		t.Fatalf("problems: %v", res.Problems)
	}
	if res := poll(t, alice); len(res.Joined) != 0 {
		t.Fatalf("joined on a second poll: %v", res.Joined)
	}
	if l, _ := alice.PendingInvites(); len(l) != 0 {
		t.Fatalf("pending: %+v", l)
	}
	if cs, _ := alice.Contacts(); len(cs) != 1 {
		t.Fatalf("contacts: %+v", cs)
	}
}
