package swarm_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/feed/feedtest"
	"github.com/deaddrop/deaddrop/feed/swarm"
	"github.com/deaddrop/deaddrop/internal/devnode"
)

// Against a private three-node network with a real chain: batches bought at
// the chain's price, chunks written through one node and read through
// another, misses reported as misses, top-ups, and a chunk put again by a
// keeper through another node with its own batch.
func TestNetwork(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain and three Bee nodes")
	}
	net := devnode.StartSwarmNetwork(t, 3)
	ctx := context.Background()
	// The test chain makes a block a second.
	opts := swarm.Options{BlockTime: time.Second}
	stores := make([]*swarm.Store, 2)
	took := make([]time.Duration, 2)
	var wg sync.WaitGroup
	for i := range stores {
		wg.Go(func() {
			start := time.Now()
			s, err := swarm.Open(ctx, net.Nodes[i].URL, opts)
			if err != nil {
				t.Errorf("open on node %d: %v", i, err)
				return
			}
			stores[i], took[i] = s, time.Since(start)
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("batch bought and usable in %v and %v (two nodes at once)", took[0].Round(time.Millisecond), took[1].Round(time.Millisecond))
	writer, reader := stores[0], stores[1]

	t.Run("cross-node", func(t *testing.T) { crossNode(t, writer, reader, net.Nodes[1].URL) })
	t.Run("batch", func(t *testing.T) { batchOnChain(t, writer) })
	t.Run("keeper", func(t *testing.T) { keeperOnNetwork(t, writer, reader) })
}

// crossNode writes through one node and reads through another. Whether the
// reading node already held the chunk (pushed or synced to it) or fetched it
// from a peer is told by HEAD /chunks/{addr}, which looks at the local store
// only; both kinds of GET are timed.
func crossNode(t *testing.T, writer, reader *swarm.Store, readerURL string) {
	ctx := context.Background()
	const n = 60 // about a third of the reads are fetched from a peer
	var local, fetched, misses []time.Duration
	retried := 0
	for range n {
		slot, chunk := feedtest.RandomSlot(t), feedtest.RandomChunk(t)
		if err := writer.Put(ctx, slot, chunk); err != nil {
			t.Fatal(err)
		}
		_, addr := swarm.BuildSOC(slot, chunk)
		held := holds(t, readerURL, addr)
		got, took, tries, err := getEventually(ctx, reader, slot)
		if err != nil || !bytes.Equal(got, chunk) {
			t.Fatalf("get through another node: %v", err)
		}
		if tries > 1 {
			retried++
		}
		if held {
			local = append(local, took)
		} else {
			fetched = append(fetched, took)
		}
		start := time.Now()
		if _, err := reader.Get(ctx, feedtest.RandomSlot(t)); !errors.Is(err, feed.ErrNotFound) {
			t.Fatalf("missing chunk: %v, want ErrNotFound", err)
		}
		misses = append(misses, time.Since(start))
	}
	t.Logf("GET through node 1 of a chunk put through node 0, fetched from a peer: %s; already held by node 1: %s; %d missed at first",
		summary(fetched), summary(local), retried)
	t.Logf("GET of a missing chunk: %s", summary(misses))
}

// getEventually reads a chunk just put through another node: the upload
// answers before the chunk is pushed to its neighbourhood, so the first
// reads may miss. Returns the time of the successful GET and the number of
// GETs.
func getEventually(ctx context.Context, s *swarm.Store, slot feed.Slot) ([]byte, time.Duration, int, error) {
	deadline := time.Now().Add(10 * time.Second)
	for tries := 1; ; tries++ {
		start := time.Now()
		got, err := s.Get(ctx, slot)
		if !errors.Is(err, feed.ErrNotFound) || time.Now().After(deadline) {
			return got, time.Since(start), tries, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func summary(d []time.Duration) string {
	if len(d) == 0 {
		return "none"
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return fmt.Sprintf("median %v (min %v, max %v) of %d", s[len(s)/2], s[0], s[len(s)-1], len(s))
}

// holds reports whether the node has the chunk in its own store.
func holds(t *testing.T, nodeURL string, addr [32]byte) bool {
	resp, err := http.Head(nodeURL + "/chunks/" + hex.EncodeToString(addr[:]))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func batchOnChain(t *testing.T, s *swarm.Store) {
	ctx := context.Background()
	b, err := s.BatchStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// 30 days of blocks at the chain's price; the node counts its TTL down.
	if b.TTL < 29*24*time.Hour || b.TTL > 31*24*time.Hour || !b.Usable || b.Full() {
		t.Fatalf("batch status %+v, want about 30 days", b)
	}
	amount, _ := new(big.Int).SetString(b.Amount, 10)
	if err := s.TopUp(ctx, new(big.Int).Div(amount, big.NewInt(30)).String()); err != nil { // ~ one more day
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		after, err := s.BatchStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if after.TTL > b.TTL+12*time.Hour {
			t.Logf("top-up: TTL %v → %v", b.TTL.Round(time.Hour), after.TTL.Round(time.Hour))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("TTL %v after a top-up, was %v", after.TTL, b.TTL)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if life, err := s.PostageTTL(ctx); err != nil || life < 29*24*time.Hour {
		t.Fatalf("lifetime %v, %v", life, err)
	}
}

// A keeper holding only the signed bytes puts them again through another
// node with its own batch; the chunk reads back through the first.
func keeperOnNetwork(t *testing.T, writer, keeper *swarm.Store) {
	ctx := context.Background()
	slot, chunk := feedtest.RandomSlot(t), feedtest.RandomChunk(t)
	r, err := writer.Sign(slot, chunk)
	if err != nil {
		t.Fatal(err)
	}
	if err := keeper.PutSigned(ctx, r); err != nil {
		t.Fatal(err)
	}
	got, _, _, err := getEventually(ctx, writer, slot)
	if err != nil || !bytes.Equal(got, chunk) {
		t.Fatalf("get of a chunk put again by a keeper: %v", err)
	}
}
