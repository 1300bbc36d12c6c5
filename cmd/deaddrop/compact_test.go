package main

import (
	"strings"
	"testing"
	"time"
)

// TestCompactCommand: 'deaddrop compact' prints the sizes, the history reads
// the same after it, and a home held by chat is refused.
func TestCompactCommand(t *testing.T) {
	us := newUsers(t, "", "alice", "bob")
	alice, bob := us[0], us[1]
	connect(t, alice, bob, "alice", "bob")
	bob.ok("send", "alice", "one")
	bob.ok("send", "alice", "two")
	alice.ok("read")
	before := alice.ok("history", "bob")
	out := alice.ok("compact")
	if !strings.Contains(out, "state file compacted:") || !strings.Contains(out, "MiB before") || !strings.Contains(out, "MiB after") {
		t.Fatalf("compact printed %q", out)
	}
	if after := alice.ok("history", "bob"); after != before {
		t.Fatalf("history before compaction:\n%s\nafter:\n%s", before, after)
	}

	chat := alice.cmd("chat", "bob")
	stdin, err := chat.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := chat.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); chat.Wait() }()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		_, errs, code := alice.run("compact")
		if code != 0 {
			if !strings.Contains(errs, "in use") {
				t.Fatalf("compact beside chat: exit %d, %q", code, errs)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("compact never refused while chat held the home")
		}
	}
}
