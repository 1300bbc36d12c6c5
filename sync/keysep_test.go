package sync_test

import (
	"strings"
	"testing"

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
