package sync_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/sync"
	"github.com/deaddrop/deaddrop/transport"
)

// faulty wraps a transport with injected store faults.
type faulty struct {
	transport.Transport
	mu       gosync.Mutex
	rng      *rand.Rand
	failRate float64                 // share of operations failing as unavailable
	hidden   map[feed.Slot]bool      // slots that read as not found (late arrival)
	swap     map[feed.Slot]feed.Slot // Get(k) answers with the chunk of swap[k]
}

func newFaulty(inner transport.Transport, seed uint64) *faulty {
	return &faulty{Transport: inner, rng: rand.New(rand.NewPCG(seed, 1)),
		hidden: map[feed.Slot]bool{}, swap: map[feed.Slot]feed.Slot{}}
}

func (f *faulty) fail() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rng.Float64() < f.failRate
}

func (f *faulty) Put(ctx context.Context, s feed.Slot, c []byte) error {
	if f.fail() {
		return fmt.Errorf("%w: injected", feed.ErrUnavailable)
	}
	return f.Transport.Put(ctx, s, c)
}

func (f *faulty) Get(ctx context.Context, s feed.Slot) ([]byte, error) {
	if f.fail() {
		return nil, fmt.Errorf("%w: injected", feed.ErrUnavailable)
	}
	f.mu.Lock()
	hidden := f.hidden[s]
	other, swapped := f.swap[s]
	f.mu.Unlock()
	if hidden {
		return nil, feed.ErrNotFound
	}
	if swapped {
		return f.Transport.Get(ctx, other)
	}
	return f.Transport.Get(ctx, s)
}

// recording remembers the slots alice writes, in order.
type recording struct {
	transport.Transport
	mu    gosync.Mutex
	slots []feed.Slot
}

func (r *recording) Put(ctx context.Context, s feed.Slot, c []byte) error {
	r.mu.Lock()
	r.slots = append(r.slots, s)
	r.mu.Unlock()
	return r.Transport.Put(ctx, s, c)
}

type faultPair struct {
	store      *feed.Memory
	alice, bob *sync.Account
	rec        *recording
	bobT       *faulty
	now        time.Time
}

func newFaultPair(t *testing.T, seed uint64) *faultPair {
	p := &faultPair{store: feed.NewMemory(), now: time.Now()}
	clock := func() time.Time { return p.now }
	p.rec = &recording{Transport: direct(p.store)}
	p.bobT = newFaulty(direct(p.store), seed)
	var err error
	if p.alice, err = sync.Create(t.TempDir(), "alice", p.rec, sync.Options{Now: clock}); err != nil {
		t.Fatal(err)
	}
	if p.bob, err = sync.Create(t.TempDir(), "bob", p.bobT, sync.Options{Now: clock}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.alice.Close(); p.bob.Close() })
	inv, _ := p.alice.Invite("bob")
	if _, err := p.bob.Accept(ctx, inv, ""); err != nil {
		t.Fatal(err)
	}
	poll(t, p.alice)
	return p
}

// sendN sends m1..mn and returns their slots (not those of the history
// blocks alice also writes).
func (p *faultPair) sendN(t *testing.T, n int) []feed.Slot {
	var slots []feed.Slot
	for i := 1; i <= n; i++ {
		m := send(t, p.alice, "bob", fmt.Sprintf("m%d", i))
		slots = append(slots, findSlot(t, p.alice, m.Seq))
	}
	return slots
}

func (p *faultPair) bobHistory(t *testing.T) string {
	h, err := p.bob.History("alice", sync.Query{})
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(bodies(h), ",")
}

func want(n int) string {
	var s []string
	for i := 1; i <= n; i++ {
		s = append(s, fmt.Sprintf("m%d", i))
	}
	return strings.Join(s, ",")
}

// Chunks that become visible out of order (a slow store, a lagging replica):
// the reader stops at the first gap and delivers everything in order once
// the gap fills.
func TestReorderedArrival(t *testing.T) {
	p := newFaultPair(t, 1)
	slots := p.sendN(t, 10)
	for _, s := range slots[2:5] {
		p.bobT.hidden[s] = true
	}
	if got := bodies(poll(t, p.bob).New); strings.Join(got, ",") != "m1,m2" {
		t.Fatalf("with m3..m5 missing bob got %v", got)
	}
	clear(p.bobT.hidden)
	if got := bodies(poll(t, p.bob).New); strings.Join(got, ",") != "m3,m4,m5,m6,m7,m8,m9,m10" {
		t.Fatalf("after the gap filled bob got %v", got)
	}
	if h := p.bobHistory(t); h != want(10) {
		t.Fatalf("history %s", h)
	}
}

// A store answering a slot with another slot's chunk (replayed or
// duplicated content): it does not open under the slot's key, is reported,
// and is never delivered; the honest answer later is.
func TestReplayedAndDuplicatedChunks(t *testing.T) {
	p := newFaultPair(t, 2)
	slots := p.sendN(t, 3)
	p.bobT.swap[slots[1]] = slots[0] // m2's slot answers with m1's chunk
	res, err := p.bob.Poll(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(bodies(res.New), ","); got != "m1" || len(res.Problems) == 0 {
		t.Fatalf("replayed chunk: got %v, problems %v", got, res.Problems)
	}
	clear(p.bobT.swap)
	poll(t, p.bob)
	if h := p.bobHistory(t); h != want(3) {
		t.Fatalf("history %s", h)
	}
}

// Random store failures on every operation of the reader, many polls: every
// message is delivered exactly once, in order, whatever failed when.
func TestRandomStoreFailures(t *testing.T) {
	for seed := uint64(0); seed < 20; seed++ {
		p := newFaultPair(t, seed)
		p.bobT.failRate = 0.3
		p.sendN(t, 40)
		for i := 0; i < 200 && p.bobHistory(t) != want(40); i++ {
			p.bob.Poll(ctx, nil) // errors are expected; state must stay consistent
		}
		if h := p.bobHistory(t); h != want(40) {
			t.Fatalf("seed %d: history %s", seed, h)
		}
	}
}

// A peer that writes junk into the slots it can derive (only the peer can)
// stalls its own conversation, nothing more: the junk is reported, never
// delivered, the session does not advance, and polling does not spin.
func TestPeerWritesJunk(t *testing.T) {
	p := newFaultPair(t, 3)
	slots := p.sendN(t, 1)
	poll(t, p.bob)
	// Alice's next slot: the slot after slots[0] in her chain. Send one more
	// to learn it, then replace its chunk with junk.
	next := p.sendN(t, 1)[0]
	_ = slots
	p.store.Delete(next)
	junk := make([]byte, feed.ChunkSize)
	for i := range junk {
		junk[i] = byte(i * 7)
	}
	p.store.Put(ctx, next, junk)
	for i := 0; i < 3; i++ {
		res, err := p.bob.Poll(ctx, nil)
		if err != nil || len(res.New) != 0 || len(res.Problems) != 1 {
			t.Fatalf("poll %d over junk: new %v, problems %v, %v", i, bodies(res.New), res.Problems, err)
		}
		if res.Fetched > 64 {
			t.Fatalf("poll %d fetched %d slots over junk", i, res.Fetched)
		}
	}
}

// Republish backs off: a failing store is retried after 1 s, 2 s, 4 s … up to
// 5 min, never in a tight loop; a stored message is re-put after 30 s, then
// 60 s … up to an hour.
func TestRepublishBackoff(t *testing.T) {
	p := newFaultPair(t, 4)
	failing := newFaulty(direct(p.store), 5)
	failing.failRate = 1
	carol, err := sync.Create(t.TempDir(), "carol", failing, sync.Options{Now: func() time.Time { return p.now }})
	if err != nil {
		t.Fatal(err)
	}
	defer carol.Close()
	inv, _ := p.alice.Invite("carol")
	carol.Accept(ctx, inv, "") // the hello is queued: the store is down
	var waits []time.Duration
	last := p.now
	for i := 0; i < 12; i++ {
		// Advance the clock one second at a time until the entry is due.
		for {
			p.now = p.now.Add(time.Second)
			n, _ := carol.Republish(ctx)
			if n > 0 {
				break
			}
		}
		waits = append(waits, p.now.Sub(last))
		last = p.now
	}
	for i := 1; i < len(waits); i++ {
		if waits[i] < waits[i-1] || waits[i] > 5*time.Minute+time.Second {
			t.Fatalf("retry waits %v: not backing off within 5 min", waits)
		}
	}
	if waits[len(waits)-1] < 4*time.Minute {
		t.Fatalf("retry waits %v never reach the cap", waits)
	}
}
