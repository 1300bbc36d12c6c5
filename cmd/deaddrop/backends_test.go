package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/deaddrop/deaddrop/internal/devnode"
)

// End to end over real storage nodes: alice and bob as separate processes,
// bob offline for 50 messages, the node stopped (alice's message queued, a
// clear status, no stack trace) and restarted in the middle; everything is
// delivered once, in order, and acknowledged.

func TestSwarmEndToEnd(t *testing.T) {
	node := devnode.StartBee(t)
	offlineWithNodeRestart(t, "swarm:"+node.URL, node)
}

func TestIPFSEndToEnd(t *testing.T) {
	node := devnode.StartKubo(t)
	offlineWithNodeRestart(t, "ipfs:"+node.URL, node)
}

func offlineWithNodeRestart(t *testing.T, store string, node *devnode.Node) {
	us := newUsers(t, store, "alice", "bob")
	alice, bob := us[0], us[1]
	connect(t, alice, bob, "alice", "bob")
	alice.ok("send", "bob", "before the outage")
	if out := bob.ok("read"); !strings.Contains(out, "alice: before the outage") {
		t.Fatalf("bob read %q", out)
	}

	// Bob goes offline. Alice sends 25, then the node goes down.
	for i := 1; i <= 25; i++ {
		alice.ok("send", "bob", fmt.Sprintf("m%d", i))
	}
	node.Stop()
	out := alice.ok("send", "bob", "m26")
	if !strings.Contains(out, "queued for bob") {
		t.Fatalf("send while the node is down: %q", out)
	}
	status := alice.ok("status")
	if !strings.Contains(status, "not stored yet") || !strings.Contains(status, "unavailable") {
		t.Fatalf("status while the node is down does not say so:\n%s", status)
	}
	_, errs, code := alice.run("read")
	if code == 0 || strings.Contains(errs, "goroutine") || !strings.Contains(errs, "unavailable") {
		t.Fatalf("read while the node is down: exit %d, %q", code, errs)
	}

	// The node comes back (a Bee dev node empty, Kubo with its datastore).
	if err := node.Restart(); err != nil {
		t.Fatal(err)
	}
	for i := 27; i <= 50; i++ {
		alice.ok("send", "bob", fmt.Sprintf("m%d", i))
	}
	if out := alice.ok("republish"); !strings.Contains(out, "republished") {
		t.Fatalf("republish: %q", out)
	}

	// Bob comes back.
	out = bob.ok("read")
	checkInOrder(t, out, 50)
	if again := bob.ok("read"); strings.Contains(again, "alice: m") {
		t.Fatalf("second read delivered again: %q", again)
	}
	checkInOrder(t, bob.ok("history", "alice"), 50)
	// Bob's ack before the outage was the first message of his new chain, and
	// a Bee dev node comes back empty: until bob republishes it (after 30 s on
	// his own) alice cannot enter that chain. Republish now.
	bob.ok("republish")
	alice.ok("read")
	if n := strings.Count(alice.ok("history", "bob"), "(delivered)"); n != 51 {
		t.Fatalf("alice sees %d of 51 messages read", n)
	}
}
