package sync

import (
	"context"
	"errors"
	"runtime"
	gosync "sync"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/ratchet"
)

// fetched is the outcome of one Get.
type fetched struct {
	slot  feed.Slot
	chunk []byte
	err   error
}

// fetcher gets a set of slots and returns the outcomes in the order of
// slots. Poll's fetcher joins the sets of all its readers into waves (package
// wave); elsewhere it is fetchAll.
type fetcher func(ctx context.Context, slots []feed.Slot) []fetched

// prober is a fetcher with one more slot, fetched only for as long as the
// others take, that reports whether it held a chunk (wave.Gate.GetProbe).
type prober func(ctx context.Context, slots []feed.Slot, probe feed.Slot) ([]fetched, bool)

// one turns a fetcher into a Get of one slot.
func one(get fetcher) func(context.Context, feed.Slot) ([]byte, error) {
	return func(ctx context.Context, s feed.Slot) ([]byte, error) {
		r := get(ctx, []feed.Slot{s})[0]
		return r.chunk, r.err
	}
}

// fetchAll gets every slot in parallel and returns the outcomes in the order
// of slots.
func (a *Account) fetchAll(ctx context.Context, slots []feed.Slot) []fetched {
	out := make([]fetched, len(slots))
	var wg gosync.WaitGroup
	for i, s := range slots {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := a.tr.Get(ctx, s)
			out[i] = fetched{s, c, err}
		}()
	}
	wg.Wait()
	return out
}

// splitFetched separates found chunks from misses. A store failure (anything
// but not-found) aborts the round: catching up past a slot we could not read
// would not lose it (skipped keys remain), but reporting it is clearer.
func splitFetched(results []fetched) (found []fetched, err error) {
	var errs []error
	for _, r := range results {
		switch {
		case r.err == nil:
			found = append(found, r)
		case errors.Is(r.err, feed.ErrNotFound):
		default:
			errs = append(errs, r.err)
		}
	}
	if len(found) == 0 && len(errs) > 0 {
		return nil, errs[0]
	}
	return found, nil
}

type openResult struct {
	inner ratchet.Opened
	err   error
}

// openAll removes the outer layer of every chunk, using every CPU.
func openAll(found []fetched) []openResult {
	out := make([]openResult, len(found))
	workers := min(runtime.GOMAXPROCS(0), len(found))
	var wg gosync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(found); i += workers {
				inner, err := ratchet.OpenChunk(found[i].slot, found[i].chunk)
				out[i] = openResult{inner, err}
			}
		}()
	}
	wg.Wait()
	return out
}

// fetchPlan decides what a catch-up fetches next: never a slot twice in one
// Poll, and nothing in a chain past a slot found empty. Messages of a chain
// are written in order, so a miss marks its end for now; a message whose put
// failed and left a hole is found on a later Poll, after its republish.
type fetchPlan struct {
	done      map[feed.Slot]bool
	firstMiss map[uint64]uint32 // chain tag → lowest index found empty
}

func newFetchPlan() *fetchPlan {
	return &fetchPlan{done: map[feed.Slot]bool{}, firstMiss: map[uint64]uint32{}}
}

func (p *fetchPlan) next(targets []ratchet.Target) []ratchet.Target {
	var out []ratchet.Target
	for _, t := range targets {
		if p.done[t.Slot] {
			continue
		}
		if miss, ok := p.firstMiss[t.Chain]; ok && t.Kind != ratchet.Skipped && t.Index > miss {
			continue
		}
		p.done[t.Slot] = true
		out = append(out, t)
	}
	return out
}

func (p *fetchPlan) record(targets []ratchet.Target, results []fetched) {
	for i, t := range targets {
		if t.Kind == ratchet.Skipped || !errors.Is(results[i].err, feed.ErrNotFound) {
			continue
		}
		if miss, ok := p.firstMiss[t.Chain]; !ok || t.Index < miss {
			p.firstMiss[t.Chain] = t.Index
		}
	}
}
