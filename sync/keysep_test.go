package sync_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/sync"
)

func contactFingerprint(t *testing.T, a *sync.Account, name string) string {
	t.Helper()
	cs, err := a.Contacts()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.Name == name {
			return c.Fingerprint
		}
	}
	t.Fatalf("%s has no contact %s", a.Name(), name)
	return ""
}

// Issue 12, key separation (docs/protocol.md §10.9): someone holding only
// alice's recovery phrase derives her keys (no restore: nothing on the
// directory changes) and acts as her first device, the move that worked
// when that device's ratchet identity was the account identity. Her
// invite is taken by carol (new) and by bob (who knows alice already): the
// session works as a session, but neither shows alice's fingerprint for it,
// because alice's signed device list names no device with that identity;
// a list forged to name it in format 4 is refused. A legitimate restore
// from the same phrase still restores everything, as a new device.
func TestPhraseIsNoSessionCredential(t *testing.T) {
	p := newPair(t)
	send(t, p.alice, "bob", "before")
	settle(t, p.alice, p.bob)
	if got := contactFingerprint(t, p.bob, "alice"); got != p.alice.Fingerprint() {
		t.Fatalf("bob shows %q for alice, want her account fingerprint %q", got, p.alice.Fingerprint())
	}
	if sync.DeviceIsAccountForTest(p.alice) {
		t.Fatal("alice's first device's ratchet identity is the account identity")
	}
	if f, sealed, err := sync.ListFormatForTest(p.alice); err != nil || f != 4 || !sealed {
		t.Fatalf("alice's list: format %d, every device sealed %v, %v", f, sealed, err)
	}

	// The attacker: phrase only.
	phrase := p.alice.RecoveryPhrase()
	mallory, err := sync.PhraseAttackerForTest(ctx, t.TempDir(), phrase, direct(p.store))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mallory.Close() })
	if mallory.Fingerprint() != p.alice.Fingerprint() || mallory.DeviceID() != p.alice.DeviceID() {
		t.Fatal("the attacker does not hold what the phrase gives")
	}
	carol := newAccount(t, t.TempDir(), "carol", direct(p.store))
	for _, victim := range []*sync.Account{carol, p.bob} {
		inv, err := mallory.Invite(victim.Name())
		if err != nil {
			t.Fatal(err)
		}
		name, err := victim.Accept(ctx, inv, "")
		if err != nil {
			t.Fatalf("%s accepts: %v", victim.Name(), err)
		}
		if _, err := mallory.Poll(ctx, nil); err != nil {
			t.Fatal(err)
		}
		send(t, mallory, victim.Name(), "it is me, alice")
		var problems []error
		for range 3 {
			problems = append(problems, pollProblems(t, victim)...)
			if _, err := mallory.Poll(ctx, nil); err != nil {
				t.Fatal(err)
			}
		}
		if got := contactFingerprint(t, victim, name); got == p.alice.Fingerprint() || got != "" {
			t.Fatalf("%s shows fingerprint %q for the phrase holder's session (%s), want none (alice's is %s)", victim.Name(), got, name, p.alice.Fingerprint())
		}
		vouch := false
		for _, e := range problems {
			vouch = vouch || strings.Contains(e.Error(), "does not vouch")
		}
		if !vouch {
			t.Fatalf("%s did not report the meta that does not vouch for the session: %v", victim.Name(), problems)
		}
	}
	// …nor when it accepts an invite as her.
	dave := newAccount(t, t.TempDir(), "dave", direct(p.store))
	inv, err := dave.Invite("alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mallory.Accept(ctx, inv, ""); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		pollProblems(t, dave)
		if _, err := mallory.Poll(ctx, nil); err != nil {
			t.Fatal(err)
		}
	}
	if got := contactFingerprint(t, dave, "alice"); got != "" {
		t.Fatalf("dave shows %q for the phrase holder who accepted his invite", got)
	}
	// Bob's real conversation with alice is untouched.
	if got := contactFingerprint(t, p.bob, "alice"); got != p.alice.Fingerprint() {
		t.Fatalf("bob's alice now shows %q", got)
	}
	// The phrase signs lists, but a format-4 list cannot name the account
	// identity as a device.
	if err := sync.ForgedSelfListForTest(mallory); err == nil || !strings.Contains(err.Error(), "account identity") {
		t.Fatalf("a format-4 list naming the account identity as a device: %v", err)
	}

	// A legitimate restore from the phrase: everything, as a new device
	// with its own random identity, which bob's devices bind to.
	r, stats := restore(t, phrase, p.store, "restored")
	if stats.Messages == 0 || r.DeviceID() == p.alice.DeviceID() || sync.DeviceIsAccountForTest(r) {
		t.Fatalf("restore: %+v, device %s", stats, r.DeviceID())
	}
	if !strings.Contains(history(t, r, "bob"), "before") {
		t.Fatalf("restored history: %s", history(t, r, "bob"))
	}
	settle(t, r, p.bob, p.alice)
	send(t, p.bob, "alice", "to both")
	settle(t, r, p.bob, p.alice)
	if !strings.Contains(history(t, r, "bob"), "to both") {
		t.Fatalf("the restored device did not get bob's message: %s", history(t, r, "bob"))
	}
	if f, sealed, err := sync.ListFormatForTest(r); err != nil || f != 4 || !sealed {
		t.Fatalf("list after restore: format %d, sealed %v, %v", f, sealed, err)
	}
}

// Issue 12, key separation: an account made by protocol version 3 (its
// first device's session identity is the account identity) keeps working
// and says so on every Open; the move that the report suggests (restore
// the phrase as a new device, remove the old one from there) leaves an
// account with format-4 lists and no session identity the phrase yields,
// with its history and its contact intact.
func TestVersion3AccountMoves(t *testing.T) {
	store := feed.NewMemory()
	dirA := t.TempDir()
	phrase, err := sync.CreateV3ForTest(dirA, "alice", direct(store))
	if err != nil {
		t.Fatal(err)
	}
	alice, err := sync.Open(dirA, direct(store), sync.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { alice.Close() })
	if !alice.LegacyFirstDevice() {
		t.Fatal("a version 3 first device is not reported as such")
	}
	if f, _, err := sync.ListFormatForTest(alice); err != nil || f != 0 {
		t.Fatalf("version 3 list: format %d, %v", f, err)
	}
	problems := pollProblems(t, alice)
	if len(problems) != 1 || !errors.Is(problems[0], sync.ErrLegacyFirstDevice) {
		t.Fatalf("first poll of a version 3 first device: %v", problems)
	}
	if p := pollProblems(t, alice); len(p) != 0 {
		t.Fatalf("reported again: %v", p)
	}
	bob := newAccount(t, t.TempDir(), "bob", direct(store))
	inv, err := alice.Invite("bob")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Accept(ctx, inv, ""); err != nil {
		t.Fatal(err)
	}
	poll(t, alice)
	send(t, alice, "bob", "from version 3")
	settle(t, alice, bob)
	if got := contactFingerprint(t, bob, "alice"); got != alice.Fingerprint() {
		t.Fatalf("bob shows %q for a version 3 alice", got)
	}

	// The move: restore, then remove the old first device from there.
	r, stats := restore(t, phrase, store, "laptop")
	if r.LegacyFirstDevice() || stats.Messages == 0 {
		t.Fatalf("restored device: legacy %v, %+v", r.LegacyFirstDevice(), stats)
	}
	if f, _, err := sync.ListFormatForTest(r); err != nil || f != 0 {
		t.Fatalf("list with a version 3 device still in it: format %d, %v", f, err)
	}
	settle(t, r, bob, alice)
	if n := sessions(t, r, "bob"); n != 1 {
		t.Fatalf("the restored device has %d sessions with bob", n)
	}
	if _, err := r.RemoveDevice(ctx, alice.DeviceID()); err != nil {
		t.Fatal(err)
	}
	if f, sealed, err := sync.ListFormatForTest(r); err != nil || f != 4 || !sealed {
		t.Fatalf("list after the move: format %d, sealed %v, %v", f, sealed, err)
	}
	settle(t, r, bob)
	if n := sessions(t, r, "bob"); n != 1 {
		t.Fatalf("after the move the restored device has %d sessions with bob", n)
	}
	send(t, r, "bob", "after the move")
	send(t, bob, "alice", "reply")
	settle(t, r, bob)
	if h := history(t, bob, "alice"); !strings.Contains(h, "from version 3") || !strings.Contains(h, "after the move") {
		t.Fatalf("bob's history: %s", h)
	}
	if h := history(t, r, "bob"); !strings.Contains(h, "reply") || !strings.Contains(h, "from version 3") {
		t.Fatalf("the restored device's history: %s", h)
	}
	if got := contactFingerprint(t, bob, "alice"); got != alice.Fingerprint() {
		t.Fatalf("bob shows %q for alice after the move", got)
	}
	// The phrase is no session credential any more.
	mallory, err := sync.PhraseAttackerForTest(ctx, t.TempDir(), phrase, direct(store))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mallory.Close() })
	carol := newAccount(t, t.TempDir(), "carol", direct(store))
	inv, err = mallory.Invite("carol")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := carol.Accept(ctx, inv, ""); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		mallory.Poll(ctx, nil)
		pollProblems(t, carol)
	}
	if got := contactFingerprint(t, carol, "alice"); got != "" {
		t.Fatalf("carol shows %q for the phrase holder after the move", got)
	}
}

// ParsePhrase and ParseLinkCode check at the edge what Restore and
// JoinDevice take, and give back the canonical form.
func TestParsePhraseAndLinkCode(t *testing.T) {
	a := newAccount(t, t.TempDir(), "alice", direct(feed.NewMemory()))
	phrase := a.RecoveryPhrase()
	p, err := sync.ParsePhrase("  " + strings.ToUpper(strings.ReplaceAll(phrase, "-", " ")) + "\n")
	if err != nil || p.String() != phrase {
		t.Fatalf("ParsePhrase: %q, %v", p.String(), err)
	}
	typo := []byte(phrase)
	typo[3] ^= 1
	if _, err := sync.ParsePhrase(string(typo)); !errors.Is(err, sync.ErrBadPhrase) {
		t.Fatalf("a typo: %v", err)
	}
	if _, err := sync.ParsePhrase(phrase[:20]); !errors.Is(err, sync.ErrBadPhrase) {
		t.Fatalf("a short phrase: %v", err)
	}
	lk, err := a.LinkDevice(ctx, "laptop", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	c, err := sync.ParseLinkCode(" " + strings.ToUpper(lk.Code) + " ")
	if err != nil || c.String() != lk.Code {
		t.Fatalf("ParseLinkCode: %q, %v", c.String(), err)
	}
	for _, bad := range []string{"ddlink1-aaaaaaaaaaaaaaaaaaaaaaaaaa", "ddlink2-abc", lk.Code[8:], ""} {
		if _, err := sync.ParseLinkCode(bad); !errors.Is(err, sync.ErrBadLinkCode) {
			t.Fatalf("%q: %v", bad, err)
		}
	}
}
