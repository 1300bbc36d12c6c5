package wave_test

import (
	"context"
	"errors"
	gosync "sync"
	"sync/atomic"
	"testing"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/sync/wave"
)

// Readers with chains of different lengths: each wave carries every reader
// still going, so the waves are the longest chain's, not the sum.
func TestWavesFollowTheLongestReader(t *testing.T) {
	ctx := context.Background()
	var inFlight, maxInFlight atomic.Int32
	var mu gosync.Mutex
	got := 0
	get := func(_ context.Context, s feed.Slot) ([]byte, error) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			m := maxInFlight.Load()
			if n <= m || maxInFlight.CompareAndSwap(m, n) {
				break
			}
		}
		mu.Lock()
		got++
		mu.Unlock()
		if s[1] < s[0] { // reader s[0] finds rounds 0..s[0]-1
			return []byte{1}, nil
		}
		return nil, feed.ErrNotFound
	}
	g := wave.New(get, 16) // a wave may hold 64 slots: every reader fits
	for reader := range 10 {
		g.Go(func() {
			for round := 0; ; round++ {
				var slots []feed.Slot
				for k := range 3 { // three slots a round, one distinct per reader
					slots = append(slots, feed.Slot{byte(reader), byte(round), byte(k)})
				}
				out := g.Get(ctx, slots)
				if len(out) != 3 {
					t.Errorf("reader %d: %d results", reader, len(out))
					return
				}
				if errors.Is(out[0].Err, feed.ErrNotFound) {
					return
				}
			}
		})
	}
	g.Wait()
	waves, slots := g.Stats()
	if waves != 10 { // reader 9 finds 9 rounds, misses in the 10th
		t.Fatalf("%d waves, want 10", waves)
	}
	if want := 3 * (1 + 2 + 3 + 4 + 5 + 6 + 7 + 8 + 9 + 10); slots != want || got != want {
		t.Fatalf("%d slots asked, %d fetched, want %d", slots, got, want)
	}
	if maxInFlight.Load() > 16 {
		t.Fatalf("%d in flight, limit 16", maxInFlight.Load())
	}
}

// A wave holds at most 4 × limit slots, so what a poll holds in memory at
// once is bounded however many readers it has; the readers that did not fit
// go in the next wave, and every one gets its answers.
func TestWaveSlotsBounded(t *testing.T) {
	g := wave.New(func(context.Context, feed.Slot) ([]byte, error) { return nil, feed.ErrNotFound }, 2)
	for reader := range 10 {
		g.Go(func() {
			var slots []feed.Slot
			for k := range 3 {
				slots = append(slots, feed.Slot{byte(reader), byte(k)})
			}
			if out := g.Get(context.Background(), slots); len(out) != 3 {
				t.Errorf("reader %d: %d results", reader, len(out))
			}
		})
	}
	g.Wait()
	waves, slots := g.Stats()
	if slots != 30 || waves < 4 {
		t.Fatalf("%d waves of %d slots in all, want ≥ 4 waves (8 slots each at most) of 30", waves, slots)
	}
}

// The same slot asked by two readers in one wave is fetched once.
func TestWaveFetchesASlotOnce(t *testing.T) {
	var n atomic.Int32
	g := wave.New(func(context.Context, feed.Slot) ([]byte, error) { n.Add(1); return []byte{7}, nil }, 8)
	for range 5 {
		g.Go(func() {
			out := g.Get(context.Background(), []feed.Slot{{1}, {1}, {2}})
			if len(out) != 3 || out[1].Chunk[0] != 7 {
				t.Errorf("results %v", out)
			}
		})
	}
	g.Wait()
	if n.Load() != 2 {
		t.Fatalf("%d Gets, want 2", n.Load())
	}
}

// A gate with no readers, or readers that never Get, sends nothing.
func TestWaveIdle(t *testing.T) {
	g := wave.New(func(context.Context, feed.Slot) ([]byte, error) { t.Error("Get"); return nil, nil }, 1)
	g.Go(func() {})
	g.Wait()
	if w, _ := g.Stats(); w != 0 {
		t.Fatalf("%d waves", w)
	}
}

// A reader that waits for another one with Await does not hold the waves
// back: the other reader's chain of several waves runs, then it goes on and
// fetches in a wave of its own.
func TestAwaitLetsWavesGo(t *testing.T) {
	ctx := context.Background()
	get := func(_ context.Context, s feed.Slot) ([]byte, error) {
		if s[0] == 1 && s[1] < 5 { // reader 1 finds five rounds
			return []byte{1}, nil
		}
		return nil, feed.ErrNotFound
	}
	g := wave.New(get, 4)
	done := make(chan struct{})
	var after []wave.Result
	g.Go(func() {
		defer close(done)
		for round := 0; ; round++ {
			if out := g.Get(ctx, []feed.Slot{{1, byte(round)}}); out[0].Err != nil {
				return
			}
		}
	})
	g.Go(func() {
		g.Get(ctx, []feed.Slot{{2, 0}})
		g.Await(func() { <-done })
		after = g.Get(ctx, []feed.Slot{{2, 1}})
	})
	g.Wait()
	if waves, _ := g.Stats(); len(after) != 1 || !errors.Is(after[0].Err, feed.ErrNotFound) || waves != 7 {
		t.Fatalf("%d waves, after the wait %v; want 7 and not found", waves, after)
	}
}
