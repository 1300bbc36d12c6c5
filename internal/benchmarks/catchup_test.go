package benchmarks

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	gosync "sync"
	"testing"
	"time"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/sync"
	"github.com/deaddrop/deaddrop/transport"
)

// recorder is a transport that remembers the slots it put, in order, so the
// benchmark can fetch exactly the same chunks raw.
type recorder struct {
	transport.Transport
	mu    gosync.Mutex
	slots []feed.Slot
}

func (r *recorder) Put(ctx context.Context, s feed.Slot, c []byte) error {
	r.mu.Lock()
	r.slots = append(r.slots, s)
	r.mu.Unlock()
	return r.Transport.Put(ctx, s, c)
}

func (r *recorder) Close() error { return nil } // the store outlives accounts

type shared struct{ transport.Transport }

func (shared) Close() error { return nil }

// pair connects alice (inviter) and bob (joiner) on store and returns them
// with alice's recorder and bob's home. With history off, the store holds
// only conversation messages (and repeated catch-ups from one snapshot of
// bob's state do not write the same history blocks again).
func pair(b *testing.B, store feed.Store, history bool) (alice *sync.Account, rec *recorder, bobDir string) {
	ctx := context.Background()
	rec = &recorder{Transport: transport.NewDirect(store)}
	alice, err := sync.Create(b.TempDir(), "alice", rec, sync.Options{NoHistory: !history})
	if err != nil {
		b.Fatal(err)
	}
	bobDir = b.TempDir()
	bob, err := sync.Create(bobDir, "bob", shared{transport.NewDirect(store)}, sync.Options{NoHistory: !history})
	if err != nil {
		b.Fatal(err)
	}
	inv, _ := alice.Invite("bob")
	if _, err := bob.Accept(ctx, inv, ""); err != nil {
		b.Fatal(err)
	}
	if _, err := alice.Poll(ctx, nil); err != nil {
		b.Fatal(err)
	}
	if _, err := bob.Poll(ctx, nil); err != nil { // alice's meta: bob's first-contact work is done
		b.Fatal(err)
	}
	bob.Close()
	return alice, rec, bobDir
}

// BenchmarkCatchUp: bob was offline while alice sent N messages; bob's Poll
// (fetch, decrypt, commit, ack) against N raw fetches of the same objects on
// the same store: sequential (a reader without windows) and in parallel
// windows of 64 (the same concurrency as catch-up). On Swarm also against
// Bee's own /feeds lookup of the latest update of a feed of N updates.
func BenchmarkCatchUp(b *testing.B) {
	for _, be := range backends(b) {
		for _, n := range []int{1, 10, 100, 1000} {
			b.Run(fmt.Sprintf("%s/N=%d", be.name, n), func(b *testing.B) { benchCatchUp(b, be, n) })
		}
	}
}

func benchCatchUp(b *testing.B, be backend, n int) {
	ctx := context.Background()
	alice, rec, bobDir := pair(b, be.store, false)
	defer alice.Close()
	rec.slots = nil
	for i := 0; i < n; i++ {
		if _, err := alice.Send(ctx, "bob", fmt.Sprintf("message %d", i)); err != nil {
			b.Fatal(err)
		}
	}
	slots := rec.slots
	stateFile := filepath.Join(bobDir, "state.db")
	snapshot, err := os.ReadFile(stateFile)
	if err != nil {
		b.Fatal(err)
	}
	reps := max(2, 200/n)
	var catchUp, rawSeq, rawPar time.Duration
	rounds := 0
	for i := 0; i < b.N*reps; i++ {
		if err := os.WriteFile(stateFile, snapshot, 0o600); err != nil {
			b.Fatal(err)
		}
		bob, err := sync.Open(bobDir, shared{transport.NewDirect(be.store)}, sync.Options{})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		res, err := bob.Poll(ctx, nil)
		catchUp += time.Since(start)
		bob.Close()
		if err != nil || len(res.New) != n {
			b.Fatalf("catch-up delivered %d of %d: %v", len(res.New), n, err)
		}
		rounds = res.Rounds
		rawSeq += timeIt(func() { rawGets(b, be, slots, 1) })
		rawPar += timeIt(func() { rawGets(b, be, slots, 64) })
	}
	runs := float64(b.N * reps)
	b.ReportMetric(float64(catchUp.Microseconds())/runs/1000, "ms")
	b.ReportMetric(float64(catchUp)/float64(rawSeq), "x-raw-seq")
	b.ReportMetric(float64(catchUp)/float64(rawPar), "x-raw-par")
	b.ReportMetric(float64(rounds), "rounds")
	b.ReportMetric(float64(n), "raw-seq-roundtrips")
	if be.swarm != nil {
		lookup := beeFeedLookup(b, be, n)
		b.ReportMetric(float64(lookup.Microseconds())/1000, "bee-feeds-ms")
		b.ReportMetric(float64(catchUp)/runs/float64(lookup), "x-bee-feeds")
	}
}

func timeIt(f func()) time.Duration {
	start := time.Now()
	f()
	return time.Since(start)
}

// rawGets fetches every slot raw, width at a time.
func rawGets(b *testing.B, be backend, slots []feed.Slot, width int) {
	ctx := context.Background()
	for i := 0; i < len(slots); i += width {
		var wg gosync.WaitGroup
		for _, s := range slots[i:min(i+width, len(slots))] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := be.rawGet(ctx, s); err != nil {
					b.Error(err)
				}
			}()
		}
		wg.Wait()
	}
}

// beeFeedLookup builds a Bee sequence feed of n updates (4096-byte payloads,
// like deaddrop's chunks) and times one GET /feeds lookup of its latest
// update.
func beeFeedLookup(b *testing.B, be backend, n int) time.Duration {
	ctx := context.Background()
	var seed, topic [32]byte
	copy(seed[:], fmt.Sprintf("bench owner %d %d", n, time.Now().UnixNano()))
	copy(topic[:], "deaddrop benchmark topic")
	var owner [20]byte
	payload := make([]byte, feed.ChunkSize)
	for i := 0; i < n; i++ {
		var soc []byte
		soc, owner = swarmFeedUpdate(seed, topic, uint64(i), payload)
		if err := be.swarm.RawPutChunk(ctx, soc); err != nil {
			b.Fatal(err)
		}
	}
	start := time.Now()
	idx, err := be.swarm.FeedLookup(ctx, owner, topic)
	d := time.Since(start)
	if err != nil {
		b.Fatalf("Bee feed lookup over %d updates: %v", n, err)
	}
	b.Logf("Bee /feeds lookup over %d updates: %v, index %s", n, d, idx)
	return d
}

func readFile(b *testing.B, path string) []byte {
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	return data
}

func writeFile(b *testing.B, path string, data []byte) {
	if err := os.WriteFile(path, data, 0o600); err != nil {
		b.Fatal(err)
	}
}
