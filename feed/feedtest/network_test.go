package feedtest_test

import (
	"context"
	"errors"
	gosync "sync"
	"testing"
	"time"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/feed/feedtest"
)

// The wrapper is a Store like any other.
func TestNetworkConformance(t *testing.T) {
	feedtest.Run(t, func(t *testing.T) feed.Store {
		return feedtest.NewNetwork(feed.NewMemory(), 0, 0)
	})
}

func TestNetworkCountsWaves(t *testing.T) {
	ctx := context.Background()
	n := feedtest.NewNetwork(feed.NewMemory(), 20*time.Millisecond, 30*time.Millisecond)
	stored := feedtest.RandomSlot(t)
	if err := n.Put(ctx, stored, feedtest.RandomChunk(t)); err != nil {
		t.Fatal(err)
	}
	// Ten Gets issued together: one wave, ten in flight, nine misses.
	var wg gosync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := feedtest.RandomSlot(t)
			if i == 0 {
				s = stored
			}
			n.Get(ctx, s)
		}()
	}
	wg.Wait()
	// Then three one after another: three more waves.
	for range 3 {
		if _, err := n.Get(ctx, stored); err != nil {
			t.Fatal(err)
		}
	}
	want := feedtest.NetworkStats{Gets: 13, Puts: 1, Misses: 9, Waves: 5, MaxInFlight: 10}
	if got := n.Stats(); got != want {
		t.Fatalf("stats %+v, want %+v", got, want)
	}
	n.Reset()
	if got := n.Stats(); got != (feedtest.NetworkStats{}) {
		t.Fatalf("after Reset: %+v", got)
	}
}

func TestNetworkDelays(t *testing.T) {
	ctx := context.Background()
	n := feedtest.NewNetwork(feed.NewMemory(), 10*time.Millisecond, 200*time.Millisecond)
	start := time.Now()
	if _, err := n.Get(ctx, feedtest.RandomSlot(t)); !errors.Is(err, feed.ErrNotFound) {
		t.Fatalf("Get of an empty slot: %v", err)
	}
	if d := time.Since(start); d < 210*time.Millisecond {
		t.Fatalf("a miss took %v, want at least RTT + Miss", d)
	}
	// A cancelled context ends the wait at once.
	n.Miss = time.Hour
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	start = time.Now()
	if _, err := n.Get(cctx, feedtest.RandomSlot(t)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cancelled Get: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("cancelled Get took %v", d)
	}
}
