package main

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/deaddrop/deaddrop/internal/devnode"
)

// Alice on two devices chats with bob; her first device is destroyed; a
// third device restored from the recovery phrase alone shows the whole
// history in order and keeps chatting. Every step is a separate process.

func TestDevicesAndRestore(t *testing.T) { devicesAndRestore(t, "") }

func TestSwarmDevicesAndRestore(t *testing.T) {
	devicesAndRestore(t, "swarm:"+devnode.StartBee(t).URL)
}

func TestIPFSDevicesAndRestore(t *testing.T) {
	devicesAndRestore(t, "ipfs:"+devnode.StartKubo(t).URL)
}

var phrasePattern = regexp.MustCompile(`recovery phrase: ([a-z2-7-]+)`)

func devicesAndRestore(t *testing.T, store string) {
	us := newUsers(t, store, "alice", "bob")
	alice1, bob := us[0], us[1]
	m := phrasePattern.FindStringSubmatch(alice1.initOut)
	if m == nil {
		t.Fatalf("init showed no recovery phrase: %q", alice1.initOut)
	}
	phrase := m[1]
	connect(t, alice1, bob, "alice", "bob")
	alice1.ok("send", "bob", "one: hello bob")
	expect(t, bob.ok("read"), "alice: one: hello bob")
	bob.ok("send", "alice", "two: hi alice")
	expect(t, alice1.ok("read"), "bob: two: hi alice")

	// A second device, linked with a one-time code.
	alice2 := &user{t: t, home: filepath.Join(t.TempDir(), "alice2"), store: bob.store}
	code, linked, joined := linkDevice(t, alice1, alice2, "laptop", "--store", bob.store)
	expect(t, joined, "joined account alice", "2 messages", "this device's fingerprint: ")
	// Both sides show the new device's own fingerprint, to compare.
	fp := regexp.MustCompile(`this device's fingerprint: (\S+)`).FindStringSubmatch(joined)[1]
	expect(t, linked, `device "laptop" asks to join with fingerprint `+fp, "linked device")
	expect(t, alice2.ok("history", "bob"), "one: hello bob", "two: hi alice")
	if _, errs, code2 := (&user{t: t, home: filepath.Join(t.TempDir(), "x")}).run("device", "join", code, "--store", bob.store); code2 == 0 || !strings.Contains(errs, "used already") {
		t.Fatalf("a link code used twice: exit %d, %q", code2, errs)
	}
	untilSessions(t, bob, "alice", 2, alice1, alice2)
	expect(t, alice1.ok("device", "list"), "laptop", "(this device)", "version 2", "history log of")

	bob.ok("send", "alice", "three: to both of your devices")
	expect(t, alice1.ok("read"), "bob: three: to both")
	expect(t, alice2.ok("read"), "bob: three: to both")
	alice2.ok("send", "bob", "four: from the laptop")
	expect(t, bob.ok("read"), "alice: four: from the laptop")
	alice1.ok("read")
	expect(t, alice1.ok("history", "bob"), "me → bob: four: from the laptop")

	// The first device is destroyed; a third is restored from the phrase.
	if err := os.RemoveAll(alice1.home); err != nil {
		t.Fatal(err)
	}
	alice3 := &user{t: t, home: filepath.Join(t.TempDir(), "alice3"), store: bob.store}
	if _, errs, c := alice3.runIn("aaaaa-bbbbb", "restore", "--store", bob.store); c == 0 || !strings.Contains(errs, "recovery phrase") {
		t.Fatalf("restore with a wrong phrase: exit %d, %q", c, errs)
	}
	expect(t, alice3.okIn(phrase+"\n", "restore", "--store", bob.store, "--device", "phone"), "restored account alice", "4 messages")
	history := alice3.ok("history", "bob")
	checkOrder(t, history, "one: hello bob", "two: hi alice", "three: to both", "four: from the laptop")
	untilSessions(t, bob, "alice", 3, alice2, alice3)
	bob.ok("send", "alice", "five: welcome back")
	expect(t, alice3.ok("read"), "bob: five: welcome back")
	alice3.ok("send", "bob", "six: from the restored phone")
	expect(t, bob.ok("read"), "alice: six: from the restored phone")
	alice2.ok("read")
	checkOrder(t, alice2.ok("history", "bob"), "one:", "two:", "three:", "four:", "five:", "six:")
	checkOrder(t, alice3.ok("history", "bob"), "one:", "two:", "three:", "four:", "five:", "six:")
	expect(t, alice3.ok("history", "bob", "--verify"), "6 of 6 messages proven")
}

func expect(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Fatalf("want %q in:\n%s", w, out)
		}
	}
}

func checkOrder(t *testing.T, out string, want ...string) {
	t.Helper()
	at := 0
	for _, w := range want {
		i := strings.Index(out[at:], w)
		if i < 0 {
			t.Fatalf("want %q after position %d in:\n%s", w, at, out)
		}
		at += i + len(w)
	}
}

// untilSessions has everyone read until u has n sessions with contact.
func untilSessions(t *testing.T, u *user, contact string, n int, others ...*user) {
	t.Helper()
	want := "sessions " + string(rune('0'+n))
	for round := 0; round < 6; round++ {
		u.ok("read")
		for _, o := range others {
			o.ok("read")
		}
		if strings.Contains(u.ok("status"), want) {
			return
		}
	}
	t.Fatalf("no %s with %s after 6 rounds:\n%s", want, contact, u.ok("status"))
}

// linkDevice runs 'device link name' on from and, once it has printed the
// code, 'device join <code> joinArgs…' on to, while the link waits; it
// returns the code and both commands' standard output.
func linkDevice(t *testing.T, from, to *user, name string, joinArgs ...string) (code, linked, joined string) {
	t.Helper()
	c := from.cmd("device", "link", name)
	out, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errb bytes.Buffer
	c.Stderr = &errb
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(out)
	line, err := r.ReadString('\n')
	if err != nil {
		c.Wait()
		t.Fatalf("device link printed no code: %v\n%s", err, errb.String())
	}
	code = strings.TrimSpace(line)
	joined = to.ok(append([]string{"device", "join", code}, joinArgs...)...)
	rest, _ := io.ReadAll(r)
	if err := c.Wait(); err != nil {
		t.Fatalf("device link: %v\n%s%s", err, rest, errb.String())
	}
	return code, line + string(rest), joined
}

// A link code nobody uses ends 'device link' at its expiry with an error,
// and the device list is unchanged; a version 3 code is refused with a
// message that says so.
func TestDeviceLinkExpires(t *testing.T) {
	alice := newUsers(t, "", "alice")[0]
	if out, errs, code := alice.run("device", "link", "laptop", "--ttl", "1s"); code == 0 || !strings.Contains(errs, "expired") {
		t.Fatalf("an unused code: exit %d, %q %q", code, out, errs)
	}
	expect(t, alice.ok("device", "list"), "version 1")
	x := &user{t: t, home: filepath.Join(t.TempDir(), "x")}
	if _, errs, code := x.run("device", "join", "ddlink1-eirceirceirceirceirceircei", "--store", alice.store); code == 0 || !strings.Contains(errs, "version 3") {
		t.Fatalf("a version 3 code: exit %d, %q", code, errs)
	}
}
