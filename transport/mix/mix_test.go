package mix

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/feed/feedtest"
	"github.com/deaddrop/deaddrop/transport/mix/sphinx"
)

// testParams are fast: a few milliseconds per hop.
func testParams() Params {
	return Params{MeanHopDelay: 3 * time.Millisecond, SendInterval: 2 * time.Millisecond,
		LoopInterval: 50 * time.Millisecond, MixLoopInterval: 50 * time.Millisecond,
		ReplyTimeout: 2 * time.Second, Retries: 4}
}

// startNet runs an in-process network: perLayer mixes per layer and a gateway
// in front of store.
func startNet(t *testing.T, perLayer int, store feed.Store, p Params) (*Testnet, []*Node) {
	t.Helper()
	tn, nodes, err := StartLocal(filepath.Join(t.TempDir(), "net"), perLayer, store, p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, n := range nodes {
			n.Close()
		}
	})
	return tn, nodes
}

func dial(t *testing.T, tn *Testnet, p Params) *Client {
	c, err := Dial(context.Background(), tn.Topology, p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// The store conformance suite, through the mix.
func TestConformanceThroughMix(t *testing.T) {
	store := feed.NewMemory()
	tn, _ := startNet(t, 1, store, testParams())
	feedtest.Run(t, func(t *testing.T) feed.Store {
		c, err := Dial(context.Background(), tn.Topology, testParams())
		if err != nil {
			t.Fatal(err)
		}
		return c
	})
}

// A mix that dies mid-run costs retries on other routes, not requests.
func TestNodeDiesMidRun(t *testing.T) {
	store := feed.NewMemory()
	tn, nodes := startNet(t, 2, store, testParams())
	c := dial(t, tn, testParams())
	ctx := context.Background()
	var slots []feed.Slot
	for i := 0; i < 20; i++ {
		s, chunk := feedtest.RandomSlot(t), feedtest.RandomChunk(t)
		if i == 5 {
			for _, n := range nodes {
				if n.Layer == 2 {
					n.Close() // one of the two second-layer mixes
					break
				}
			}
		}
		if err := c.Put(ctx, s, chunk); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
		got, err := c.Get(ctx, s)
		if err != nil || !bytes.Equal(got, chunk) {
			t.Fatalf("get %d: %v", i, err)
		}
		slots = append(slots, s)
	}
	t.Logf("retries: %d", c.Retries.Load())
}

// Bad packets are dropped and counted: garbage, replays, tagged payloads.
func TestBadPacketsCounted(t *testing.T) {
	store := feed.NewMemory()
	tn, nodes := startNet(t, 1, store, testParams())
	c := dial(t, tn, testParams())
	var entry *Node
	for _, n := range nodes {
		if n.ID == [32]byte(mustID(c.entry.ID)) {
			entry = n
		}
	}
	entry.process(make([]byte, PacketSize)) // a zero (low-order) group element
	junk := make([]byte, PacketSize)
	rand.Read(junk)
	junk[0], junk[1] = 0, 0
	entry.process(junk) // a MAC that does not verify
	pkt, _, id, _, err := c.build(kindGet, feedtest.RandomSlot(t), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.forget(id)
	entry.process(pkt)
	entry.process(pkt) // replay
	if entry.Stats.BadMAC.Load() != 1 || entry.Stats.Malformed.Load() != 1 || entry.Stats.Replays.Load() != 1 {
		t.Fatalf("stats: %s", &entry.Stats)
	}
}

func mustID(s string) [32]byte {
	id, err := decodeID(s)
	if err != nil {
		panic(err)
	}
	return id
}

func TestTopologySignature(t *testing.T) {
	tn, err := GenerateTestnet(t.TempDir(), 1, time.Hour, time.Minute, 2)
	if err != nil {
		t.Fatal(err)
	}
	key := tn.Topology.DirectoryKey
	if err := tn.Topology.Verify(key); err != nil {
		t.Fatalf("pinned: %v", err)
	}
	if err := tn.Topology.Verify(""); !errors.Is(err, ErrUnpinned) {
		t.Fatalf("unpinned topology accepted: %v", err)
	}
	tn.Topology.Nodes[0].Addr = "127.0.0.1:1"
	if err := tn.Topology.Verify(key); !errors.Is(err, ErrTopology) {
		t.Fatalf("altered topology: %v", err)
	}
	if err := tn.Topology.VerifyUnpinned(); !errors.Is(err, ErrTopology) {
		t.Fatalf("altered topology, unpinned: %v", err)
	}
	// Whoever can write the file can sign it with a key of their own:
	// only the pinned key tells.
	_, other, _ := ed25519.GenerateKey(nil)
	tn.Topology.Sign(other)
	if err := tn.Topology.VerifyUnpinned(); err != nil {
		t.Fatalf("re-signed topology, unpinned: %v", err)
	}
	if err := tn.Topology.Verify(key); !errors.Is(err, ErrTopology) {
		t.Fatalf("topology re-signed by another key passed the pinned key: %v", err)
	}
}

// Keys rotate every epoch: a client keeps working across several epochs,
// and a packet built with the previous epoch's key is still accepted during
// the grace period.
func TestKeyRotation(t *testing.T) {
	store := feed.NewMemory()
	p := testParams()
	tn, err := GenerateTestnet(filepath.Join(t.TempDir(), "net"), 1, time.Second, 500*time.Millisecond, 30)
	if err != nil {
		t.Fatal(err)
	}
	var nodes []*Node
	for _, path := range tn.Nodes {
		cfg, _ := LoadNodeConfig(path)
		id, key, _ := cfg.Keys()
		var s feed.Store
		if cfg.Layer == GatewayLayer {
			s = store
		}
		n, err := NewNode(id, key, tn.Topology, p, s)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Listen(""); err != nil {
			t.Fatal(err)
		}
		defer n.Close()
		nodes = append(nodes, n)
	}
	c := dial(t, tn, p)
	ctx := context.Background()
	start := tn.Topology.Epoch(time.Now())
	for tn.Topology.Epoch(time.Now()) < start+3 {
		s, chunk := feedtest.RandomSlot(t), feedtest.RandomChunk(t)
		if err := c.Put(ctx, s, chunk); err != nil {
			t.Fatalf("put across epochs: %v", err)
		}
	}
	if c.Retries.Load() > 3 {
		t.Errorf("%d retries across 3 epoch changes", c.Retries.Load())
	}
}

func TestGracePeriod(t *testing.T) {
	tn, err := GenerateTestnet(filepath.Join(t.TempDir(), "net"), 1, time.Second, 500*time.Millisecond, 4)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := LoadNodeConfig(tn.Nodes[0])
	id, key, _ := cfg.Keys()
	n, _ := NewNode(id, key, tn.Topology, testParams(), nil)
	info, _ := tn.Topology.node(id)
	build := func(epoch int64) []byte {
		h, err := makeHop(info, epoch, false, 0)
		if err != nil {
			t.Fatal(err)
		}
		h.Commands = []sphinx.Command{sphinx.Recipient{ID: id}}
		pkt, _ := sphinx.NewPacket([]sphinx.Hop{h}, make([]byte, MessageSize), rand.Reader)
		return pkt
	}
	tn.Topology.Epoch0 = time.Now().Add(-1100 * time.Millisecond) // 0.1 s into epoch 1
	if _, _, err := n.unwrap(build(0)); err != nil {
		t.Fatalf("previous epoch's key within the grace period: %v", err)
	}
	tn.Topology.Epoch0 = time.Now().Add(-1800 * time.Millisecond) // 0.8 s into epoch 1
	if _, _, err := n.unwrap(build(0)); !errors.Is(err, sphinx.ErrMAC) {
		t.Fatalf("previous epoch's key after the grace period: %v", err)
	}
	if _, _, err := n.unwrap(build(1)); err != nil {
		t.Fatalf("current epoch's key: %v", err)
	}
}
