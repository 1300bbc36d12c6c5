package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// These tests run the real deaddrop binary as separate processes, as users do.

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "deaddrop-cli")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "deaddrop")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building deaddrop: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// user is one account: a home directory and a store both users share.
type user struct {
	t       *testing.T
	home    string
	store   string
	initOut string // what init printed (the recovery phrase)
}

func newUsers(t *testing.T, store string, names ...string) []*user {
	t.Helper()
	if store == "" {
		store = "embedded:" + filepath.Join(t.TempDir(), "store")
	}
	var us []*user
	for _, n := range names {
		u := &user{t: t, home: filepath.Join(t.TempDir(), n), store: store}
		u.initOut = u.ok("init", n, "--store", store)
		us = append(us, u)
	}
	return us
}

func (u *user) cmd(args ...string) *exec.Cmd {
	c := exec.Command(binary, append([]string{"--home", u.home}, args...)...)
	c.Env = append(os.Environ(), "DEADDROP_HOME=")
	// Beside the home, not in the package directory: a command that writes
	// into its working directory (save without --out) must not leave files
	// in the source tree.
	c.Dir = filepath.Dir(u.home)
	return c
}

// run runs deaddrop and returns stdout, stderr and the exit code.
func (u *user) run(args ...string) (string, string, int) {
	u.t.Helper()
	return u.runIn("", args...)
}

// runIn is run with stdin as standard input.
func (u *user) runIn(stdin string, args ...string) (string, string, int) {
	u.t.Helper()
	c := u.cmd(args...)
	var out, errb bytes.Buffer
	c.Stdin, c.Stdout, c.Stderr = strings.NewReader(stdin), &out, &errb
	err := c.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		u.t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func (u *user) ok(args ...string) string {
	u.t.Helper()
	return u.okIn("", args...)
}

func (u *user) okIn(stdin string, args ...string) string {
	u.t.Helper()
	out, errs, code := u.runIn(stdin, args...)
	if code != 0 {
		u.t.Fatalf("deaddrop %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// connect makes a invite b and b accept; a picks up b's hello.
func connect(t *testing.T, a, b *user, aName, bName string) {
	t.Helper()
	inv := strings.TrimSpace(a.ok("invite", bName))
	b.ok("accept", inv)
	if out := a.ok("read"); !strings.Contains(out, bName+" accepted your invite") {
		t.Fatalf("%s did not see the join: %q", aName, out)
	}
}

func TestOfflineFiftyMessages(t *testing.T) {
	us := newUsers(t, "", "alice", "bob")
	alice, bob := us[0], us[1]
	connect(t, alice, bob, "alice", "bob")
	alice.ok("send", "bob", "hi", "bob")
	if out := bob.ok("read"); !strings.Contains(out, "alice: hi bob") {
		t.Fatalf("bob read %q", out)
	}
	for i := 1; i <= 50; i++ {
		alice.ok("send", "bob", fmt.Sprintf("m%d", i))
	}
	out, errs, code := bob.run("read")
	if code != 0 {
		t.Fatalf("read: %d %s", code, errs)
	}
	if !strings.Contains(errs, "catching up with alice") {
		t.Errorf("no progress shown for a catch-up of 50: %q", errs)
	}
	checkInOrder(t, out, 50)
	if out := alice.ok("read"); !strings.Contains(out, "delivered to bob: 51 messages") {
		t.Fatalf("alice's receipts: %q", out)
	}
	if n := strings.Count(alice.ok("history", "bob"), "(delivered)"); n != 51 {
		t.Fatalf("alice sees %d messages read, want 51", n)
	}
}

func checkInOrder(t *testing.T, out string, n int) {
	t.Helper()
	var got []string
	for _, line := range strings.Split(out, "\n") {
		if i := strings.Index(line, "alice: m"); i >= 0 {
			got = append(got, line[i+len("alice: "):])
		}
	}
	if len(got) != n {
		t.Fatalf("got %d messages, want %d:\n%s", len(got), n, out)
	}
	for i, g := range got {
		if g != fmt.Sprintf("m%d", i+1) {
			t.Fatalf("message %d is %q", i+1, g)
		}
	}
}

// SIGKILL the reader at random moments of its catch-up; whatever instant it
// dies, the next run carries on: every message ends up in the history exactly
// once, in order, and acknowledged.
func TestKilledReaderLosesNothing(t *testing.T) {
	us := newUsers(t, "", "alice", "bob")
	alice, bob := us[0], us[1]
	connect(t, alice, bob, "alice", "bob")
	const n = 120
	for i := 1; i <= n; i++ {
		alice.ok("send", "bob", fmt.Sprintf("m%d", i))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 8; trial++ {
		c := bob.cmd("read", "--window", "8")
		c.Stdout, c.Stderr = io.Discard, io.Discard
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rng.IntN(40)) * time.Millisecond)
		c.Process.Signal(syscall.SIGKILL)
		c.Wait()
	}
	bob.ok("read")
	checkInOrder(t, bob.ok("history", "alice"), n)
	alice.ok("read")
	if got := strings.Count(alice.ok("history", "bob"), "(delivered)"); got != n {
		t.Fatalf("alice sees %d of %d read", got, n)
	}
}

func TestChatInteractive(t *testing.T) {
	us := newUsers(t, "", "alice", "bob")
	alice, bob := us[0], us[1]
	connect(t, alice, bob, "alice", "bob")

	c := alice.cmd("chat", "bob", "--every", "100ms")
	stdin, _ := c.StdinPipe()
	stdout, _ := c.StdoutPipe()
	c.Stderr = os.Stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Process.Kill()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	waitFor := func(want string) {
		t.Helper()
		deadline := time.After(20 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("chat ended before %q", want)
				}
				if strings.Contains(l, "\x1b") {
					t.Errorf("terminal escape written to a pipe: %q", l)
				}
				if strings.Contains(l, want) {
					return
				}
			case <-deadline:
				t.Fatalf("chat never showed %q", want)
			}
		}
	}
	waitFor("chat with bob")
	// A second process on alice's home goes through the chat (its socket).
	for i := 0; ; i++ {
		if _, err := os.Stat(filepath.Join(alice.home, "rpc.sock")); err == nil {
			break
		} else if i > 200 {
			t.Fatal("chat serves no socket")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if out, errs, code := alice.run("send", "bob", "from another terminal"); code != 0 || !strings.Contains(out, "to bob") {
		t.Errorf("send while chat runs: exit %d, %q %q", code, out, errs)
	}
	bob.ok("send", "alice", "ping from bob")
	waitFor("bob: ping from bob")
	// An unknown /command is not sent; //x sends /x.
	fmt.Fprintln(stdin, "/shrug")
	waitFor(`unknown command "/shrug", not sent`)
	fmt.Fprintln(stdin, "//shrug")
	waitFor("stored: /shrug")
	fmt.Fprintln(stdin, "pong from alice")
	waitFor("stored: pong from alice")
	out := bob.ok("read")
	for _, want := range []string{"alice: from another terminal", "alice: /shrug", "alice: pong from alice"} {
		if !strings.Contains(out, want) {
			t.Fatalf("bob read %q, want %q", out, want)
		}
	}
	if strings.Count(out, "shrug") != 1 {
		t.Fatalf("the unknown command was sent: %q", out)
	}
	waitFor("delivered to bob: pong from alice")
	fmt.Fprintln(stdin, "/quit")
	if err := c.Wait(); err != nil {
		t.Fatalf("chat exit: %v", err)
	}
}

func TestBadInputExitCodes(t *testing.T) {
	us := newUsers(t, "", "alice", "bob")
	alice, bob := us[0], us[1]
	connect(t, alice, bob, "alice", "bob")
	inv := strings.TrimSpace(alice.ok("invite", "carol"))
	cases := []struct {
		u     *user
		args  []string
		code  int
		words string
	}{
		{alice, []string{"send"}, 2, "expected a contact"},
		{alice, []string{"send", "nobody", "hi"}, 1, "unknown contact"},
		{alice, []string{"send", "bob", strings.Repeat("x", 70000)}, 1, "too large"},
		{alice, []string{"init", "Alice!"}, 2, "invalid name"},
		{alice, []string{"init", "alice2"}, 1, "already exists"},
		{bob, []string{"accept", "dd1garbage"}, 1, "invite"},
		{bob, []string{"accept", inv[:len(inv)-10]}, 1, "invite"},
		{bob, []string{"--window", "-3", "read"}, 2, "--window"},
		{bob, []string{"bogus"}, 2, "unknown command"},
		{bob, []string{"device", "lnk"}, 2, `unknown command "lnk" for "deaddrop device"`},
		{bob, []string{"device"}, 2, "needs a subcommand"},
		{bob, []string{"history", "alice", "--since", "-1h"}, 2, "negative"},
		{bob, []string{"history", "alice", "--since", "soon"}, 2, "want e.g. 1d"},
		{bob, []string{"history", "alice", "--limit", "-1"}, 2, "--limit"},
		{alice, []string{"invite", "dave", "--ttl", "-1d"}, 2, "negative"},
		{alice, []string{"invite", "dave", "--ttl", "0"}, 2, "--ttl must be positive"},
		{&user{t: t, home: t.TempDir()}, []string{"read"}, 1, "no account"},
		{alice, []string{"--store", "nosuch:x", "read"}, 1, "unknown store kind"},
	}
	for _, c := range cases {
		_, errs, code := c.u.run(c.args...)
		if code != c.code || !strings.Contains(errs, c.words) {
			t.Errorf("deaddrop %s: exit %d %q; want exit %d mentioning %q",
				strings.Join(c.args, " "), code, errs, c.code, c.words)
		}
		if strings.Contains(errs, "goroutine ") || strings.Contains(errs, "panic") {
			t.Errorf("deaddrop %s: stack trace: %s", strings.Join(c.args, " "), errs)
		}
	}
	// A reused invite.
	bob.ok("accept", inv, "--as", "carol")
	if _, errs, code := bob.run("accept", inv, "--as", "carol2"); code != 1 || !strings.Contains(errs, "already accepted") {
		t.Errorf("reused invite: %d %q", code, errs)
	}
	// Nothing stored was harmed: the conversation still works.
	alice.ok("send", "bob", "still fine")
	if out := bob.ok("read"); !strings.Contains(out, "alice: still fine") {
		t.Fatalf("after bad input: %q", out)
	}
}
