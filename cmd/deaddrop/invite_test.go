package main

import (
	"strings"
	"testing"
)

// An invite used by bob and then by mallory, who saw it: mallory is told it
// was used, exits non-zero and keeps nothing; bob's conversation works.
func TestCLIInviteUsedTwice(t *testing.T) {
	us := newUsers(t, "", "alice", "bob", "mallory")
	alice, bob, mallory := us[0], us[1], us[2]
	inv := strings.TrimSpace(alice.ok("invite", "bob"))
	bob.ok("accept", inv)
	out, errs, code := mallory.run("accept", inv)
	if code != 1 || !strings.Contains(errs, "already used") || !strings.Contains(errs, "fingerprints") || strings.Contains(out, "accepted") {
		t.Fatalf("second accept: exit %d, %q %q", code, out, errs)
	}
	if out := mallory.ok("contacts"); !strings.Contains(out, "no contacts yet") {
		t.Fatalf("mallory kept a contact: %q", out)
	}
	if out := mallory.ok("status"); strings.Contains(out, "outbox") || strings.Contains(out, "contact ") {
		t.Fatalf("mallory kept a queue: %q", out)
	}
	mallory.ok("read")
	if out := alice.ok("read"); !strings.Contains(out, "bob accepted your invite") {
		t.Fatalf("alice: %q", out)
	}
	bob.ok("send", "alice", "hello alice")
	if out := alice.ok("read"); !strings.Contains(out, "bob: hello alice") {
		t.Fatalf("alice: %q", out)
	}
}

// Pending invites: one per name, listed, cancelled; a clashing name on
// accept becomes a fresh one and the user is told.
func TestCLIPendingInvites(t *testing.T) {
	us := newUsers(t, "", "alice", "bob", "carol")
	alice, bob, carol := us[0], us[1], us[2]
	alice.ok("invite", "bob")
	if _, errs, code := alice.run("invite", "bob"); code != 1 || !strings.Contains(errs, "pending") {
		t.Fatalf("second invite under one name: exit %d %q", code, errs)
	}
	alice.ok("invite", "new", "list")
	out := alice.ok("invite", "list")
	if !strings.Contains(out, "bob ") || !strings.Contains(out, "list ") {
		t.Fatalf("invite list: %q", out)
	}
	alice.ok("invite", "cancel", "bob")
	alice.ok("invite", "cancel", "list")
	if out := alice.ok("invite", "list"); !strings.Contains(out, "no pending invites") {
		t.Fatalf("after cancel: %q", out)
	}
	if _, errs, code := alice.run("invite", "cancel", "bob"); code != 1 || !strings.Contains(errs, "no pending invite") {
		t.Fatalf("cancel twice: exit %d %q", code, errs)
	}
	connect(t, alice, bob, "alice", "bob")
	// A second "alice" (carol's account is called carol, so name it on
	// the invite side): bob already has an alice.
	inv := strings.TrimSpace(carol.ok("invite", "bob"))
	if _, errs, code := bob.run("accept", inv, "--as", "alice"); code != 1 || !strings.Contains(errs, "already exists") {
		t.Fatalf("accept --as a taken name: exit %d %q", code, errs)
	}
	// Another person called alice: bob gets to write to alice-2.
	other := newUsers(t, alice.store, "alice")[0]
	inv = strings.TrimSpace(other.ok("invite", "bob"))
	out = bob.ok("accept", inv)
	if !strings.Contains(out, "write to alice-2") || !strings.Contains(out, "already have a contact or invite called alice") {
		t.Fatalf("accept under a taken name: %q", out)
	}
	bob.ok("send", "alice-2", "hi other alice")
	if out := other.ok("read"); !strings.Contains(out, "bob: hi other alice") {
		t.Fatalf("other alice: %q", out)
	}
}
