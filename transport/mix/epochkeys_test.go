package mix

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/deaddrop/deaddrop/transport/mix/sphinx"
)

// After rotation, neither the node's config file nor its memory can give an
// earlier epoch's key: a seized node opens no packet of a past epoch.
func TestEpochKeysForwardSecrecy(t *testing.T) {
	tn, err := GenerateTestnet(filepath.Join(t.TempDir(), "net"), 1, time.Hour, time.Minute, 8)
	if err != nil {
		t.Fatal(err)
	}
	path := tn.Nodes[0]
	cfg, _ := LoadNodeConfig(path)
	id, key, err := cfg.Keys()
	if err != nil || key.Epoch != 0 {
		t.Fatalf("new node's key: epoch %d, %v", key.Epoch, err)
	}
	n, err := NewNode(id, key, tn.Topology, testParams(), nil)
	if err != nil {
		t.Fatal(err)
	}
	n.Persist(func(k EpochKey) error { return cfg.SaveKey(path, k) })
	info, _ := tn.Topology.node(id)
	packet := func(epoch int64) []byte {
		h, err := makeHop(info, epoch, false, 0)
		if err != nil {
			t.Fatal(err)
		}
		h.Commands = []sphinx.Command{sphinx.Recipient{ID: id}}
		pkt, _ := sphinx.NewPacket([]sphinx.Hop{h}, make([]byte, MessageSize), rand.Reader)
		return pkt
	}
	old := packet(2)

	tn.Topology.Epoch0 = time.Now().Add(-3*time.Hour - 30*time.Minute) // mid epoch 3, past the grace
	n.rotate(time.Now())

	saved, err := LoadNodeConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	_, disk, err := saved.Keys()
	if err != nil || disk.Epoch != 3 {
		t.Fatalf("key on disk after rotation: epoch %d, %v; want 3", disk.Epoch, err)
	}
	if _, err := os.Stat(path + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a temporary key file is left: %v", err)
	}
	published := map[string]int64{}
	for e, pub := range info.Keys {
		published[pub] = e
	}
	// Everything the stored key derives, however far along the chain, is
	// of epoch 3 or later.
	for k, i := disk, 0; i < 8; k, i = k.next(), i+1 {
		pub := publicOf(k.private())
		if e, ok := published[hex.EncodeToString(pub[:])]; ok && e < 3 {
			t.Fatalf("the stored key derives epoch %d's key", e)
		}
		if i == 0 && published[hex.EncodeToString(pub[:])] != 3 {
			t.Fatal("the stored key is not epoch 3's")
		}
	}
	for e := int64(0); e < 3; e++ {
		if _, ok := n.keys.private(e); ok {
			t.Fatalf("epoch %d's key is still in memory", e)
		}
	}
	if _, _, err := n.unwrap(old); !errors.Is(err, sphinx.ErrMAC) {
		t.Fatalf("a packet of epoch 2 after rotation: %v", err)
	}
	if _, _, err := n.unwrap(packet(3)); err != nil {
		t.Fatalf("current epoch: %v", err)
	}
	// A node restarted from the saved config serves on.
	if _, err := NewNode(id, disk, tn.Topology, testParams(), nil); err != nil {
		t.Fatal(err)
	}
}

// A config holding an older version's long-term seed is refused by name.
func TestNodeConfigWithSeedRefused(t *testing.T) {
	c := &NodeConfig{ID: hex.EncodeToString(make([]byte, 32)), Seed: hex.EncodeToString(make([]byte, 32))}
	if _, _, err := c.Keys(); err == nil {
		t.Fatal("a seed config was accepted")
	}
}
