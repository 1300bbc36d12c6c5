package devnode_test

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/feed/ipfs"
	"github.com/deaddrop/deaddrop/internal/devnode"
)

// A record put through one node of the network is read through another,
// after the writer's node is killed, after a restart and after a wipe of the
// reader's node (the others still hold it, and the wiped node rejoined);
// gone once every node is wiped.
func TestKuboNetwork(t *testing.T) {
	nodes := devnode.StartKuboNetwork(t, 3)
	ctx := context.Background()
	var slot feed.Slot
	rand.Read(slot[:])
	chunk := make([]byte, feed.ChunkSize)
	rand.Read(chunk)
	if err := open(t, nodes[0].URL).Put(ctx, slot, chunk); err != nil {
		t.Fatal(err)
	}
	get := func(step string, n *devnode.Node) {
		t.Helper()
		got, err := open(t, n.URL).Get(ctx, slot)
		if err != nil || string(got) != string(chunk) {
			t.Fatalf("%s: get through another node: %v", step, err)
		}
	}
	get("put through node 0", nodes[1])
	nodes[0].Kill()
	get("node 0 killed", nodes[2])
	if err := nodes[0].Restart(); err != nil {
		t.Fatal(err)
	}
	if err := nodes[1].Wipe(); err != nil {
		t.Fatal(err)
	}
	get("node 1 wiped", nodes[1])
	get("node 0 restarted", nodes[0])

	// Wiped everywhere, the record is gone: a miss, not an error.
	for _, n := range nodes {
		if err := n.Wipe(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := open(t, nodes[2].URL).Get(ctx, slot); !errors.Is(err, feed.ErrNotFound) {
		t.Fatalf("get after every node was wiped: %v, want not found", err)
	}
}

func open(t *testing.T, url string) *ipfs.Store {
	t.Helper()
	s, err := ipfs.Open(context.Background(), url, ipfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
