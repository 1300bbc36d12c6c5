package attach_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/deaddrop/deaddrop/attach"
	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/feed/ipfs"
	"github.com/deaddrop/deaddrop/feed/swarm"
	"github.com/deaddrop/deaddrop/internal/devnode"
)

// The same round trip and failures against real nodes: a Bee dev node and
// a private Kubo node (binaries from DEADDROP_BEE / DEADDROP_KUBO).

func TestSwarm(t *testing.T) {
	node := devnode.StartBee(t)
	s, err := swarm.Open(context.Background(), node.URL, swarm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	onRealStore(t, s)
}

func TestIPFS(t *testing.T) {
	node := devnode.StartKubo(t)
	s, err := ipfs.Open(context.Background(), node.URL, ipfs.Options{FindTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	onRealStore(t, s)
}

func onRealStore(t *testing.T, s feed.BulkStore) {
	opts := attach.Options{SegmentSize: 1 << 20}
	t.Run("RoundTrip", func(t *testing.T) { roundTrip(t, s, randomBytes(t, 3<<20+12345), opts) })
	t.Run("ReferenceToNothing", func(t *testing.T) {
		m := upload(t, s, randomBytes(t, 100_000), "x.bin", small)
		m.Segments[0][len(m.Segments[0])-1] ^= 1
		expectNoFile(t, s, m, attach.ErrNotFound)
	})
	t.Run("LyingSize", func(t *testing.T) {
		m := upload(t, s, randomBytes(t, 100_000), "x.bin", small)
		m.Size++
		expectNoFile(t, s, m, attach.ErrIntegrity)
	})
	t.Run("ResumeUpload", func(t *testing.T) {
		c := &countingStore{BulkStore: s}
		data := randomBytes(t, 12*attach.MinSegmentSize)
		o := small
		o.Journal = t.TempDir() + "/j"
		if _, err := attach.Upload(c.interruptAt(6), c, bytesReader(data), "x", "", o); !errors.Is(err, context.Canceled) {
			t.Fatalf("interrupted: %v", err)
		}
		c.noInterrupt()
		first := c.puts.Load()
		m, err := attach.Upload(context.Background(), c, bytesReader(data), "x", "", o)
		if err != nil {
			t.Fatal(err)
		}
		if again := c.puts.Load() - first; again >= 12 {
			t.Fatalf("resume put %d of 12 segments", again)
		}
		roundTripManifest(t, s, m, data)
	})
}
