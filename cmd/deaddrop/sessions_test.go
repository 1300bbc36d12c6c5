package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// A session with another device of a contact (named contact~device inside)
// is not a contact: no read, status or contacts output names one, whoever
// invited whom.
func TestDeviceSessionsAreNotContacts(t *testing.T) {
	us := newUsers(t, "", "alice", "bob")
	alice1, bob := us[0], us[1]
	connect(t, alice1, bob, "alice", "bob")
	alice2 := &user{t: t, home: filepath.Join(t.TempDir(), "alice2"), store: bob.store}
	linkDevice(t, alice1, alice2, "laptop", "--store", bob.store)

	var outputs []string
	show := func(u *user, args ...string) string {
		out, errs, code := u.run(args...)
		if code != 0 {
			t.Fatalf("deaddrop %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
		}
		outputs = append(outputs, strings.Join(args, " ")+":\n"+out+errs)
		return out
	}
	for round := 0; round < 6 && !strings.Contains(show(bob, "status"), "sessions 2"); round++ {
		for _, u := range []*user{bob, alice1, alice2} {
			show(u, "read")
		}
	}
	expect(t, bob.ok("status"), "contact alice", "sessions 2")
	alice2.ok("send", "bob", "from the laptop")
	bob.ok("send", "alice", "to both")
	for _, u := range []*user{bob, alice1, alice2, bob, alice1, alice2} {
		show(u, "read")
		show(u, "status")
		show(u, "contacts")
		show(u, "invite", "list")
	}
	for _, out := range outputs {
		if strings.Contains(out, "~") {
			t.Fatalf("a device session shown as a contact:\n%s", out)
		}
	}
	// The laptop's message, read by bob, is read on the first device too.
	expect(t, alice1.ok("history", "bob"), "me → bob: from the laptop  (delivered)")
}
