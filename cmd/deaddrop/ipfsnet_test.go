package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deaddrop/deaddrop/internal/devnode"
)

// End to end over a private network of three Kubo nodes: each user talks to
// a different node, so every message crosses the DHT (name/put on the
// writer's node, name/get on the reader's).

// userOn makes one account on its own store (newUsers puts everyone on one).
func userOn(t *testing.T, name string, node *devnode.Node) *user {
	t.Helper()
	store := "ipfs:" + node.URL
	u := &user{t: t, home: filepath.Join(t.TempDir(), name), store: store}
	u.initOut = u.ok("init", name, "--store", store)
	return u
}

// storeOf is the --store flag for a user who talks to node this time.
func storeOf(node *devnode.Node) string { return "ipfs:" + node.URL }

// Alice on node 0, bob on node 1. Bob is offline for 50 messages and alice's
// node dies before he reads: bob reads all 50 through his own node. Then
// bob's node loses everything and the conversation goes on; finally alice's
// whole history is restored from her recovery phrase through node 2, which
// she never used.
func TestIPFSNetworkAcrossNodes(t *testing.T) {
	nodes := devnode.StartKuboNetwork(t, 3)
	alice, bob := userOn(t, "alice", nodes[0]), userOn(t, "bob", nodes[1])
	phrase := recoveryPhrase(t, alice)
	connect(t, alice, bob, "alice", "bob")

	for i := 1; i <= 50; i++ {
		alice.ok("send", "bob", fmt.Sprintf("m%d", i))
	}
	nodes[0].Kill()
	checkInOrder(t, bob.ok("read"), 50)

	// Alice's node comes back at the same address and rejoins; bob's
	// receipts reach her.
	if err := nodes[0].Restart(); err != nil {
		t.Fatal(err)
	}
	if out := alice.ok("read"); !strings.Contains(out, "delivered to bob: 50 messages") {
		t.Fatalf("alice's receipts after her node came back: %q", out)
	}

	// Bob's node restarts empty: the other nodes still hold the records.
	if err := nodes[1].Wipe(); err != nil {
		t.Fatal(err)
	}
	alice.ok("send", "bob", "after the wipe")
	expect(t, bob.ok("read"), "alice: after the wipe")
	bob.ok("send", "alice", "still here")
	expect(t, alice.ok("read"), "bob: still here")

	restored := &user{t: t, home: filepath.Join(t.TempDir(), "alice-restored"), store: storeOf(nodes[2])}
	expect(t, restored.okIn(phrase, "restore", "--store", storeOf(nodes[2]), "--device", "phone"),
		"restored account alice", "52 messages")
	history := restored.ok("history", "bob")
	want := make([]string, 0, 52)
	for i := 1; i <= 50; i++ {
		want = append(want, fmt.Sprintf("me → bob: m%d ", i)) // the space: m1 is not m10
	}
	checkOrder(t, history, append(want, "me → bob: after the wipe", "bob: still here")...)
	untilSessions(t, bob, "alice", 2, alice, restored)
	bob.ok("send", "alice", "to the phone")
	expect(t, restored.ok("read"), "bob: to the phone")
}

func recoveryPhrase(t *testing.T, u *user) string {
	t.Helper()
	m := phrasePattern.FindStringSubmatch(u.initOut)
	if m == nil {
		t.Fatalf("init showed no recovery phrase: %q", u.initOut)
	}
	return m[1]
}

// Faults: a node that is down for the whole test gives a clear error and
// loses nothing once the user retries through another; records that every
// node forgot (all wiped, as a DHT forgets after 48 h) come back when the
// writer republishes.
func TestIPFSNetworkFaults(t *testing.T) {
	nodes := devnode.StartKuboNetwork(t, 3)
	down := nodes[2]
	down.Kill()
	alice, bob := userOn(t, "alice", nodes[0]), userOn(t, "bob", nodes[1])
	connect(t, alice, bob, "alice", "bob")

	// Through the dead node: queued, a clear error, no stack trace.
	out := alice.ok("send", "bob", "m1", "--store", storeOf(down))
	if !strings.Contains(out, "queued for bob") {
		t.Fatalf("send through a dead node: %q", out)
	}
	_, errs, code := bob.run("read", "--store", storeOf(down))
	if code == 0 || strings.Contains(errs, "goroutine") || !strings.Contains(errs, "unavailable") {
		t.Fatalf("read through a dead node: exit %d, %q", code, errs)
	}
	// Retried through the live nodes: nothing lost.
	alice.ok("send", "bob", "m2")
	if out := alice.ok("republish"); !strings.Contains(out, "republished") {
		t.Fatalf("republish: %q", out)
	}
	checkInOrder(t, bob.ok("read"), 2)

	// Every live node forgets everything; alice's unread messages come back
	// with her republish.
	for i := 3; i <= 5; i++ {
		alice.ok("send", "bob", fmt.Sprintf("m%d", i))
	}
	for _, n := range nodes[:2] {
		if err := n.Wipe(); err != nil {
			t.Fatal(err)
		}
	}
	// Proof that they are gone: bob finds nothing (a miss is not an error).
	if out := bob.ok("read"); strings.Contains(out, "alice: m") {
		t.Fatalf("bob read messages every node had forgotten:\n%s", out)
	}
	alice.ok("republish")
	bob.ok("republish")
	out = bob.ok("read")
	if got := strings.Count(out, "alice: m"); got != 3 || !strings.Contains(out, "alice: m3") || !strings.Contains(out, "alice: m5") {
		t.Fatalf("bob after the republish read %d messages:\n%s", got, out)
	}
	alice.ok("read")
	if n := strings.Count(alice.ok("history", "bob"), "(delivered)"); n != 5 {
		t.Fatalf("alice sees %d of 5 messages read:\n%s", n, alice.ok("history", "bob"))
	}
}
