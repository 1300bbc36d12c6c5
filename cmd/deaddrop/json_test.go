package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/deaddrop/deaddrop/daemon"
)

// Every listing command prints, with --json, the object the daemon's method
// of that name returns (docs/cli.md).
func TestJSONOutput(t *testing.T) {
	us := newUsers(t, "", "alice", "bob")
	alice, bob := us[0], us[1]
	connect(t, alice, bob, "alice", "bob")
	alice.ok("send", "bob", "hello\njson")

	var read daemon.ReadResult
	decode(t, bob.ok("read", "--json"), &read)
	if len(read.Messages) != 1 || read.Messages[0].Body != "hello\njson" || read.Messages[0].Direction != "incoming" ||
		read.Messages[0].Contact != "alice" || len(read.Messages[0].ID) != 32 || read.Messages[0].Received == nil {
		t.Fatalf("read --json: %+v", read)
	}
	decode(t, bob.ok("read", "--json"), &read)
	if len(read.Messages) != 0 || read.Messages == nil {
		t.Fatalf("second read --json: %+v (want an empty list, not null)", read)
	}

	var hist struct{ Messages []daemon.Message }
	decode(t, alice.ok("history", "bob", "--json", "--since", "1d"), &hist)
	if len(hist.Messages) != 1 || hist.Messages[0].Direction != "outgoing" || hist.Messages[0].State == "" {
		t.Fatalf("history --json: %+v", hist)
	}

	var contacts struct{ Contacts []daemon.Contact }
	decode(t, alice.ok("contacts", "--json"), &contacts)
	if len(contacts.Contacts) != 1 || contacts.Contacts[0].Name != "bob" || contacts.Contacts[0].Fingerprint == "" {
		t.Fatalf("contacts --json: %+v", contacts)
	}

	var devices daemon.Devices
	decode(t, alice.ok("device", "list", "--json"), &devices)
	if devices.Version == 0 || len(devices.Devices) != 1 || !devices.Devices[0].This {
		t.Fatalf("device list --json: %+v", devices)
	}

	alice.ok("invite", "carol", "--ttl", "1d")
	var invites struct{ Invites []daemon.Invite }
	decode(t, alice.ok("invite", "list", "--json"), &invites)
	if len(invites.Invites) != 1 || invites.Invites[0].Name != "carol" {
		t.Fatalf("invite list --json: %+v", invites)
	}
	if d := invites.Invites[0].Expires.Sub(invites.Invites[0].Created); d < 24*time.Hour-2*time.Second || d > 24*time.Hour+2*time.Second {
		t.Fatalf("invite --ttl 1d is valid %v", d)
	}
}

func decode(t *testing.T, out string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
}

func TestVersion(t *testing.T) {
	u := &user{t: t, home: t.TempDir()}
	if out := u.ok("--version"); !strings.HasPrefix(out, "deaddrop version ") {
		t.Fatalf("--version: %q", out)
	}
}

func TestPlural(t *testing.T) {
	for n, want := range map[int]string{0: "0 contacts", 1: "1 contact", 2: "2 contacts"} {
		if got := plural(n, "contact"); got != want {
			t.Errorf("plural(%d) = %q, want %q", n, got, want)
		}
	}
}

// Contact names complete (the shell asks 'deaddrop __complete …').
func TestCompleteContacts(t *testing.T) {
	us := newUsers(t, "", "alice", "bob")
	alice, bob := us[0], us[1]
	connect(t, alice, bob, "alice", "bob")
	for _, args := range [][]string{{"__complete", "send", ""}, {"__complete", "chat", "b"}, {"__complete", "history", ""}} {
		out := alice.ok(args...)
		if !strings.HasPrefix(out, "bob\n") {
			t.Errorf("deaddrop %s: %q", strings.Join(args, " "), out)
		}
	}
	if out := alice.ok("__complete", "send", "x"); strings.Contains(out, "bob") {
		t.Errorf("completion ignores the prefix: %q", out)
	}
	if out := alice.ok("completion", "bash"); !strings.Contains(out, "deaddrop") {
		t.Errorf("no bash completion script")
	}
}

// Commands show examples in their help.
func TestHelpExamples(t *testing.T) {
	u := &user{t: t, home: t.TempDir()}
	for _, cmd := range []string{"send", "read", "history", "invite", "chat", "daemon"} {
		if out := u.ok(cmd, "--help"); !strings.Contains(out, "Examples:") {
			t.Errorf("deaddrop %s --help has no examples", cmd)
		}
	}
}

// -q leaves results and errors only.
func TestQuiet(t *testing.T) {
	us := newUsers(t, "", "alice")
	out, errOut, code := us[0].run("-q", "invite", "bob")
	if code != 0 || errOut != "" || !strings.HasPrefix(out, "dd") || strings.Count(out, "\n") != 1 {
		t.Fatalf("invite -q: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if _, errOut, code := us[0].run("-q", "send", "nobody", "x"); code != 1 || !strings.Contains(errOut, "unknown contact") {
		t.Fatalf("errors still show with -q: exit %d %q", code, errOut)
	}
}

// read-receipts on: alice sees "(read)" once bob has read; before, and with
// receipts off, "(delivered)".
func TestReadReceiptsCLI(t *testing.T) {
	us := newUsers(t, "", "alice", "bob")
	alice, bob := us[0], us[1]
	connect(t, alice, bob, "alice", "bob")
	if out := bob.ok("read-receipts"); !strings.Contains(out, "off") {
		t.Fatalf("default: %q", out)
	}
	if _, _, code := bob.run("read-receipts", "maybe"); code != 2 {
		t.Fatalf("read-receipts maybe: exit %d", code)
	}
	bob.ok("read-receipts", "on")
	alice.ok("send", "bob", "did you read this")
	bob.ok("read")      // shows it: a receipt is queued
	bob.ok("republish") // and stored
	alice.ok("read")    // alice picks it up
	if out := alice.ok("history", "bob"); !strings.Contains(out, "did you read this  (read)") {
		t.Fatalf("history after bob read with receipts on: %q", out)
	}
	bob.ok("read-receipts", "off")
	alice.ok("send", "bob", "and this")
	bob.ok("read")
	bob.ok("send", "alice", "an ack carrier")
	alice.ok("read")
	if out := alice.ok("history", "bob"); !strings.Contains(out, "and this  (delivered)") {
		t.Fatalf("history after bob read with receipts off: %q", out)
	}
}

// The counts shown to users (status, contacts, contacts --json) are of the
// messages they wrote, never of the protocol's acks, hellos and meta.
func TestContactsCountUserMessages(t *testing.T) {
	us := newUsers(t, "", "alice", "bob")
	alice, bob := us[0], us[1]
	connect(t, alice, bob, "alice", "bob")
	for _, body := range []string{"one", "two", "three"} {
		alice.ok("send", "bob", body)
	}
	bob.ok("read")
	bob.ok("send", "alice", "back")
	alice.ok("read") // takes bob's acks and his message
	bob.ok("read")   // takes alice's ack

	expect(t, alice.ok("status"), "contact bob", "sent 3 (delivered 3, read 0), received 1\n")
	expect(t, bob.ok("status"), "contact alice", "sent 1 (delivered 1, read 0), received 3\n")
	expect(t, alice.ok("contacts"), "sent 3, received 1\n")
	var contacts struct{ Contacts []daemon.Contact }
	decode(t, alice.ok("contacts", "--json"), &contacts)
	if c := contacts.Contacts[0]; c.Sent != 3 || c.Delivered != 3 || c.Read != 0 || c.Received != 1 || c.Unacknowledged != 0 {
		t.Fatalf("contacts --json counts: %+v", c)
	}
}
