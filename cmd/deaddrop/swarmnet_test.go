package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deaddrop/deaddrop/internal/devnode"
)

// End to end over a private three-node Swarm network with a real chain:
// alice writes through node 0, bob reads through node 1. Each `init` buys
// its batch on a fresh network at the chain's price. Bob is offline for 50
// messages; before he reads them, node 0 — the only node alice ever
// uploaded through — is killed, so every chunk he reads comes from another
// node.
func TestSwarmNetworkEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain and three Bee nodes")
	}
	net := devnode.StartSwarmNetwork(t, 3)
	start := time.Now()
	us := usersOn(t, map[string]string{
		"alice": "swarm:" + net.Nodes[0].URL,
		"bob":   "swarm:" + net.Nodes[1].URL,
	})
	alice, bob := us["alice"], us["bob"]
	t.Logf("alice and bob initialised at once, each buying a batch: %v", time.Since(start).Round(time.Millisecond))
	connect(t, alice, bob, "alice", "bob")
	alice.ok("send", "bob", "before going offline")
	if out := bob.ok("read"); !strings.Contains(out, "alice: before going offline") {
		t.Fatalf("bob read %q", out)
	}
	for i := 1; i <= 50; i++ {
		alice.ok("send", "bob", fmt.Sprintf("m%d", i))
	}
	// Uploads return before the chunks are pushed to their neighbourhood;
	// wait until every node holds what node 0 does before killing it.
	start = time.Now()
	if err := net.Settle(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Logf("reserves settled in %v", time.Since(start).Round(time.Millisecond))
	if err := net.Nodes[0].Kill(); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	out := bob.ok("read")
	checkInOrder(t, out, 50)
	t.Logf("bob read 50 messages through node 1, node 0 dead: %v", time.Since(start).Round(time.Millisecond))
	if err := net.Nodes[0].Start(); err != nil {
		t.Fatal(err)
	}
	alice.ok("read")
	if n := strings.Count(alice.ok("history", "bob"), "(delivered)"); n != 51 {
		t.Fatalf("alice sees %d of 51 messages read", n)
	}
	keepOnSwarm(t, alice, "swarm:"+net.Nodes[2].URL)
}

// keepOnSwarm: status shows the postage batch's remaining time; a keeper on
// another node takes alice's records, re-stamps them with its own batch and
// tops that batch up when it has less left than --topup-below.
func keepOnSwarm(t *testing.T, alice *user, keeperStore string) {
	expect(t, alice.ok("status"), "postage batch ", " days left, fullest bucket ")
	url, _, logs := startKeeper(t, keeperStore, "1h", "--topup-below", "100000h", "--topup-by", "24h")
	out := alice.ok("keeper", "add", url)
	if !strings.Contains(out, "records pushed") || strings.Contains(out, " 0 held") {
		t.Fatalf("keeper add: %q", out)
	}
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(logs.String(), "extended by 24h0m0s") {
		if time.Now().After(deadline) {
			t.Fatalf("the keeper did not top its batch up:\n%s", logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// usersOn initialises one user per name on its own store, all at once (each
// init on a fresh network buys a batch, which takes a while).
func usersOn(t *testing.T, stores map[string]string) map[string]*user {
	t.Helper()
	us := map[string]*user{}
	errs := map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, store := range stores {
		u := &user{t: t, home: filepath.Join(t.TempDir(), name), store: store}
		us[name] = u
		wg.Go(func() {
			out, stderr, code := u.run("init", name, "--store", store)
			mu.Lock()
			defer mu.Unlock()
			u.initOut = out
			if code != 0 {
				errs[name] = fmt.Sprintf("exit %d\n%s%s", code, out, stderr)
			}
		})
	}
	wg.Wait()
	for name, e := range errs {
		t.Fatalf("deaddrop init %s: %s", name, e)
	}
	return us
}
