package sync_test

import (
	"crypto/rand"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/sync"
)

// highID is randomness whose first 8-byte read (a new device's ID) is all
// ones: the device sorts after every other, so the other side's devices
// write the device invites to it (§10.4), on their feed.
type highID struct{ done bool }

func (h *highID) Read(p []byte) (int, error) {
	if !h.done && len(p) == 8 {
		h.done = true
		for i := range p {
			p[i] = 0xff
		}
		return len(p), nil
	}
	return rand.Read(p)
}

var _ io.Reader = (*highID)(nil)

func restoreHigh(t *testing.T, phrase string, store feed.Store, name string) *sync.Account {
	t.Helper()
	r, _, err := sync.Restore(ctx, t.TempDir(), phrase, name, direct(store), sync.Options{Rand: &highID{}})
	if err != nil {
		t.Fatalf("restore %s: %v", name, err)
	}
	t.Cleanup(func() { r.Close() })
	if r.DeviceID() != "ffffffffffffffff" {
		t.Fatalf("restored as %s", r.DeviceID())
	}
	return r
}

// pollProblems polls and returns the problems it reported.
func pollProblems(t *testing.T, a *sync.Account) []error {
	t.Helper()
	res, err := a.Poll(ctx, nil)
	if err != nil {
		t.Fatalf("%s: Poll: %v", a.Name(), err)
	}
	return res.Problems
}

// bobWithRoguePhone sets up alice and bob chatting, bob with a linked
// phone that turned against him (it holds every announcement secret of his
// account: the attacker), and a new device of bob's, restored from the
// phrase, that alice's device must invite on her announcement feed to bob
// (the new device's ID sorts after hers) and which has not polled since.
func bobWithRoguePhone(t *testing.T) (p *pair, rogue, nb *sync.Account) {
	p = newPair(t)
	send(t, p.alice, "bob", "a1")
	settle(t, p.alice, p.bob)
	send(t, p.bob, "alice", "b1")
	rogue = link(t, p.bob, p.store, "old-phone")
	settle(t, p.alice, p.bob, rogue)
	if n := sessions(t, p.alice, "bob"); n != 2 {
		t.Fatalf("alice has %d sessions with bob's devices, want 2", n)
	}
	nb = restoreHigh(t, p.bob.RecoveryPhrase(), p.store, "new-phone")
	poll(t, nb)    // announces bob's new list
	poll(t, p.bob) // (bob's first device learns it too)
	poll(t, p.alice)
	return p, rogue, nb
}

// stealInviteFor reads, with every secret r holds, the device invites on the
// feeds they open, and returns the one for device, if any.
func stealInviteFor(t *testing.T, r *sync.Account, contact, device string) (sync.StolenInvite, bool) {
	t.Helper()
	secrets, err := sync.FeedSecretsForTest(r, contact)
	if err != nil {
		t.Fatal(err)
	}
	stolen, err := sync.ReadDeviceInvitesForTest(r, secrets)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(stolen, func(s sync.StolenInvite) bool { return s.For == device })
	if i < 0 {
		return sync.StolenInvite{}, false
	}
	return stolen[i], true
}

// Issue 12, item 1 (a): a device of bob's that holds alice's announcement
// secret for bob (any linked device does; a removed one did before feeds
// rotated) reads the device invite alice's device writes for bob's new
// device and takes it first, claiming to be that device and writing a
// message. Alice refuses it (ErrDeviceImpostor): no session is made, nothing
// it wrote shows as bob's, nothing alice sends is encrypted to it. Bob
// removes the rogue device: it cannot read the new invite alice writes, the
// real device takes it, and everything arrives both ways.
func TestDeviceInviteHijack(t *testing.T) {
	p, rogue, nb := bobWithRoguePhone(t)
	inv, ok := stealInviteFor(t, rogue, "alice", nb.DeviceID())
	if !ok {
		t.Fatal("the rogue device found no invite for bob's new device")
	}
	if err := sync.TakeDeviceInviteForTest(rogue, inv, "it's bob, on my new phone: send me your keys"); err != nil {
		t.Fatal(err)
	}
	send(t, p.alice, "bob", "a2 during the attack")

	problems := pollProblems(t, p.alice)
	if !slices.ContainsFunc(problems, func(err error) bool { return errors.Is(err, sync.ErrDeviceImpostor) }) {
		t.Fatalf("alice took the stolen invite without a word: %v", problems)
	}
	session := "bob~" + nb.DeviceID()
	if _, _, _, _, ok := sync.SessionForTest(p.alice, session); ok {
		t.Fatalf("alice made session %s with the impostor", session)
	}
	if n := sessions(t, p.alice, "bob"); n != 2 {
		t.Fatalf("alice has %d sessions with bob, want 2 (bob's first device and the phone, as itself)", n)
	}
	if h := history(t, p.alice, "bob"); strings.Contains(h, "new phone") {
		t.Fatalf("the impostor's message shows as bob's: %q", h)
	}
	outbox, err := p.alice.Outbox()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range outbox {
		if e.Session == session {
			t.Fatalf("alice queued #%d for the session the impostor claimed", e.Seq)
		}
	}

	// Bob removes the rogue phone. Alice writes a new invite, on a feed the
	// removed phone cannot read; the real device takes it.
	if _, err := p.bob.RemoveDevice(ctx, "old-phone"); err != nil {
		t.Fatal(err)
	}
	settle(t, p.alice, nb, p.bob)
	if again, ok := stealInviteFor(t, rogue, "alice", nb.DeviceID()); ok && again.Invite != inv.Invite {
		t.Fatal("the removed phone reads alice's new invite for bob's new device")
	}
	peer, unverified, _, _, ok := sync.SessionForTest(p.alice, session)
	if !ok || unverified || peer != sync.DeviceFingerprintForTest(nb) {
		t.Fatalf("alice's session with bob's new device: ok %v, unverified %v, peer %s, want %s", ok, unverified, peer, sync.DeviceFingerprintForTest(nb))
	}
	send(t, p.alice, "bob", "a3")
	settle(t, p.alice, nb, p.bob)
	send(t, nb, "alice", "b2 from the new phone")
	settle(t, p.alice, nb, p.bob)
	want := "a1,b1,a2 during the attack,a3,b2 from the new phone"
	for _, a := range []*sync.Account{p.bob, nb} {
		if h := history(t, a, "alice"); h != want {
			t.Fatalf("bob's device %s: %q, want %q", a.DeviceID(), h, want)
		}
	}
	if h := history(t, p.alice, "bob"); h != want {
		t.Fatalf("alice: %q, want %q", h, want)
	}
}

// Issue 12, item 1 (b): with the inviter's identity check off (as in a
// client without it), the impostor gets a session, but its meta message does
// not verify: the session carries nothing either way. Its message is
// dropped, alice's sends wait for it (gated) and are never encrypted to it,
// and they still reach bob.
func TestUnverifiedSessionCarriesNothing(t *testing.T) {
	p, rogue, nb := bobWithRoguePhone(t)
	inv, ok := stealInviteFor(t, rogue, "alice", nb.DeviceID())
	if !ok {
		t.Fatal("no invite for bob's new device")
	}
	if err := sync.TakeDeviceInviteForTest(rogue, inv, "forged 1", "forged 2"); err != nil {
		t.Fatal(err)
	}
	restoreBind := sync.SkipDeviceBindingForTest()
	problems := pollProblems(t, p.alice) // joins the impostor's session, reads its meta and messages
	send(t, p.alice, "bob", "a2 not for the impostor")
	problems = append(problems, pollProblems(t, p.alice)...)
	restoreBind()

	session := "bob~" + nb.DeviceID()
	peer, unverified, gated, queued, ok := sync.SessionForTest(p.alice, session)
	if !ok {
		t.Fatal("no session: the test did not get past the identity check")
	}
	if peer != sync.DeviceFingerprintForTest(rogue) || !unverified {
		t.Fatalf("session peer %s unverified %v", peer, unverified)
	}
	if gated != 1 || queued != 0 {
		t.Fatalf("alice's message: %d waiting for the unverified session, %d encrypted to it; want 1, 0", gated, queued)
	}
	if h := history(t, p.alice, "bob"); strings.Contains(h, "forged") {
		t.Fatalf("data from an unverified session delivered: %q", h)
	}
	var metaFailed, dropped bool
	for _, pr := range problems {
		metaFailed = metaFailed || strings.Contains(pr.Error(), "device information")
		dropped = dropped || strings.Contains(pr.Error(), "dropped")
	}
	if !metaFailed || !dropped {
		t.Fatalf("problems do not report the bad meta and the dropped messages: %v", problems)
	}
	settle(t, p.bob)
	if h := history(t, p.bob, "alice"); !strings.HasSuffix(h, "a2 not for the impostor") {
		t.Fatalf("bob's first device: %q", h)
	}

	// The same session as a state from before sessions were gated would
	// hold it (no mark): the next device list alice adopts shows its peer
	// is not the device it claims, and alice drops it.
	if err := sync.MarkVerifiedForTest(p.alice, session); err != nil {
		t.Fatal(err)
	}
	if _, err := p.bob.RemoveDevice(ctx, "old-phone"); err != nil {
		t.Fatal(err)
	}
	settle(t, p.bob)
	pollProblems(t, p.alice)
	if _, _, _, _, ok := sync.SessionForTest(p.alice, session); ok {
		t.Fatal("alice kept a session whose peer is not the device bob's list names")
	}
}

// Issue 12, item 1 (c): alice removes her laptop. Her announcement feeds
// move on to a secret the laptop cannot derive: a device invite alice's
// device then writes for bob's new device is on none of the feeds the laptop
// can read, and bob's devices still find it.
func TestRemovedDeviceCannotReadInvites(t *testing.T) {
	p := newPair(t)
	send(t, p.alice, "bob", "a1")
	settle(t, p.alice, p.bob)
	laptop := link(t, p.alice, p.store, "laptop")
	settle(t, p.alice, laptop, p.bob)
	before, err := sync.FeedSecretsForTest(laptop, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.alice.RemoveDevice(ctx, "laptop"); err != nil {
		t.Fatal(err)
	}
	settle(t, p.alice, p.bob)
	nb := restoreHigh(t, p.bob.RecoveryPhrase(), p.store, "new-phone")
	settle(t, nb, p.bob, p.alice)

	// Everything the laptop holds (it cannot poll any more, but it keeps
	// its state and the store is public).
	after, err := sync.FeedSecretsForTest(laptop, "bob")
	if err != nil {
		t.Fatal(err)
	}
	stolen, err := sync.ReadDeviceInvitesForTest(laptop, append(before, after...))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stolen {
		if s.For == nb.DeviceID() || s.From == nb.DeviceID() {
			t.Fatalf("the removed laptop reads a device invite written after its removal: %+v", s)
		}
	}
	// The invite was written, and taken by the right device.
	peer, unverified, _, _, ok := sync.SessionForTest(p.alice, "bob~"+nb.DeviceID())
	if !ok || unverified || peer != sync.DeviceFingerprintForTest(nb) {
		t.Fatalf("alice's session with bob's new device: ok %v unverified %v", ok, unverified)
	}
	send(t, p.alice, "bob", "a2")
	settle(t, p.alice, nb)
	if h := history(t, nb, "alice"); h != "a1,a2" {
		t.Fatalf("bob's new device: %q", h)
	}
}
