// Package wave joins the reads of independent readers into waves: one round
// trip for everything a poll wants to know now, however many conversations,
// logs and feeds it reads.
//
// Each reader (a conversation's catch-up, a history log, an announcement
// feed) is written as plain sequential code: compute the slots it wants,
// Get them, act on what came back, repeat. A Gate holds every reader's Get
// until every reader still running is waiting in one, then fetches the union
// of their slots at once with bounded concurrency and hands each reader its
// part. A reader whose chain ended simply returns, so the next wave carries
// only the readers that found something. On a store where a request costs a
// round trip, and a miss a retrieval timeout, a poll then costs one round
// trip (and one timeout) per wave instead of per reader and round.
//
// Rule for readers: never hold a database transaction (or any lock another
// reader may need) while in Get; the Gate waits for every reader to arrive,
// so a reader blocked on another one that is waiting in Get never arrives.
package wave

import (
	"context"
	gosync "sync"
	"time"

	"github.com/deaddrop/deaddrop/feed"
)

// Result is the outcome of one slot's Get.
type Result struct {
	Chunk []byte
	Err   error
}

// Gate batches the Gets of its readers into waves.
type Gate struct {
	get   func(context.Context, feed.Slot) ([]byte, error)
	limit int

	mu      gosync.Mutex
	live    int // readers not finished, plus the owner until Wait
	waiting []*request
	waves   int
	slots   int
	wg      gosync.WaitGroup
}

type request struct {
	ctx      context.Context
	slots    []feed.Slot
	out      []Result
	probe    *feed.Slot // an optional slot: see GetProbe
	probeOut Result
	done     chan struct{}
}

// New returns a Gate that fetches with get, at most limit at a time. The
// caller owns it: no wave leaves before the caller has started every reader
// of the first wave with Go and called Wait.
func New(get func(context.Context, feed.Slot) ([]byte, error), limit int) *Gate {
	return &Gate{get: get, limit: max(limit, 1), live: 1}
}

// Go runs reader in its own goroutine as a reader of the gate.
func (g *Gate) Go(reader func()) {
	g.mu.Lock()
	g.live++
	g.mu.Unlock()
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		defer g.leave()
		reader()
	}()
}

// Wait lets the waves go and returns when every reader has returned.
func (g *Gate) Wait() {
	g.leave()
	g.wg.Wait()
}

// maxSlots bounds the slots of one wave: four times the Gets in flight, 4
// MiB of chunks with the default limit of 256.
func (g *Gate) maxSlots() int { return 4 * g.limit }

// Stats returns how many waves left the gate and how many slots they held.
func (g *Gate) Stats() (waves, slots int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.waves, g.slots
}

// Get fetches slots in the next wave and returns their outcomes in order.
// Only a reader started with Go may call it, and not from several goroutines
// at once.
func (g *Gate) Get(ctx context.Context, slots []feed.Slot) []Result {
	if len(slots) == 0 {
		return nil
	}
	return g.wait(&request{ctx: ctx, slots: slots, done: make(chan struct{})}).out
}

// GetProbe is Get with one more slot, probe, that rides along in the wave
// only for as long as the wave's other Gets take: when they are all back,
// the probe is cancelled if it has not answered (its Result then carries the
// context's error). A probe never makes a wave longer: on a store where a
// miss costs a timeout, a probe that misses in a wave of hits costs nothing,
// and one that finds its chunk answers with the hits.
func (g *Gate) GetProbe(ctx context.Context, slots []feed.Slot, probe feed.Slot) ([]Result, Result) {
	r := g.wait(&request{ctx: ctx, slots: slots, probe: &probe, done: make(chan struct{})})
	return r.out, r.probeOut
}

func (g *Gate) wait(r *request) *request {
	g.mu.Lock()
	g.waiting = append(g.waiting, r)
	g.release()
	g.mu.Unlock()
	<-r.done
	return r
}

// Await runs wait (which blocks until another reader has done something)
// as a reader that is not there meanwhile: waves go without it, so the
// reader it waits for can go on fetching.
func (g *Gate) Await(wait func()) {
	g.leave()
	wait()
	g.mu.Lock()
	g.live++
	g.mu.Unlock()
}

func (g *Gate) leave() {
	g.mu.Lock()
	g.live--
	g.release()
	g.mu.Unlock()
}

// release sends a wave when every live reader waits in Get. g.mu is held.
// A wave holds at most maxSlots slots (the requests that do not fit, in
// order, wait for the next one), so that the chunks a poll holds at once are
// bounded whatever the number of readers; beyond limit in flight it costs no
// time, since those slots would have queued for a free request anyway.
func (g *Gate) release() {
	if len(g.waiting) == 0 || len(g.waiting) < g.live {
		return
	}
	n, slots := 0, 0
	for n < len(g.waiting) && (n == 0 || slots+len(g.waiting[n].slots) <= g.maxSlots()) {
		slots += len(g.waiting[n].slots)
		n++
	}
	batch := g.waiting[:n:n]
	g.waiting = append([]*request(nil), g.waiting[n:]...)
	g.waves++
	for _, r := range batch {
		g.slots += len(r.slots)
	}
	go g.fetch(batch)
}

// fetch gets every distinct slot of a wave once, with at most limit Gets in
// flight, and answers each request.
func (g *Gate) fetch(batch []*request) {
	type job struct {
		ctx  context.Context
		slot feed.Slot
	}
	index := map[feed.Slot]int{}
	var jobs []job
	for _, r := range batch {
		for _, s := range r.slots {
			if _, ok := index[s]; !ok {
				index[s] = len(jobs)
				jobs = append(jobs, job{r.ctx, s})
			}
		}
	}
	results := make([]Result, len(jobs))
	next := make(chan int)
	var wg gosync.WaitGroup
	for range min(g.limit, len(jobs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				c, err := g.get(jobs[i].ctx, jobs[i].slot)
				results[i] = Result{c, err}
			}
		}()
	}
	began := time.Now()
	probes := g.startProbes(batch)
	for i := range jobs {
		next <- i
	}
	close(next)
	wg.Wait()
	probes(probeGrace(time.Since(began)))
	for _, r := range batch {
		r.out = make([]Result, len(r.slots))
		for i, s := range r.slots {
			r.out[i] = results[index[s]]
		}
		close(r.done)
	}
}

// probeGrace is how long a wave that took took waits for its probes once
// its other GETs are answered: a probe that hits answers about when they
// did (a quarter of the wave's time is room for scheduling and a slower
// request), one that misses takes a store's miss timeout, far longer.
func probeGrace(took time.Duration) time.Duration {
	return max(took/4, time.Millisecond)
}

// startProbes starts the probes of a wave's requests; the function it returns
// waits up to grace for them, then cancels those still running and waits
// for them to answer.
func (g *Gate) startProbes(batch []*request) (stop func(grace time.Duration)) {
	var wg gosync.WaitGroup
	var cancels []context.CancelFunc
	for _, r := range batch {
		if r.probe == nil {
			continue
		}
		ctx, cancel := context.WithCancel(r.ctx)
		cancels = append(cancels, cancel)
		wg.Go(func() {
			c, err := g.get(ctx, *r.probe)
			r.probeOut = Result{c, err}
		})
	}
	return func(grace time.Duration) {
		answered := make(chan struct{})
		go func() { wg.Wait(); close(answered) }()
		select {
		case <-answered:
		case <-time.After(grace):
		}
		for _, cancel := range cancels {
			cancel()
		}
		<-answered
	}
}
