package benchmarks

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/feed/ipfs"
	"github.com/deaddrop/deaddrop/internal/devnode"
	"github.com/deaddrop/deaddrop/sync"
	"github.com/deaddrop/deaddrop/transport"
)

// BenchmarkIPFSNet: a private network of three Kubo nodes on loopback, the
// writer on node 0 and the reader on node 1, so every read is a DHT lookup
// (name/get) of a record put (name/put) through another node. Reported:
// single GETs that hit and miss, catch-up of N messages from one contact,
// and an idle poll of 20 contacts. Figures: docs/benchmarks.md, "Real networks".
func BenchmarkIPFSNet(b *testing.B) {
	dir, err := tempDir()
	if err != nil {
		b.Fatal(err)
	}
	nodes, err := devnode.KuboNetwork(filepath.Join(dir, "ipfsnet"), 3)
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		for _, n := range nodes {
			n.Stop()
		}
	}()
	w, r := openIPFS(b, nodes[0]), openIPFS(b, nodes[1])
	b.Run("get", func(b *testing.B) { benchNetGet(b, nodes[1], w, r) })
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("catchup/N=%d", n), func(b *testing.B) { benchNetCatchUp(b, w, r, n) })
	}
	b.Run("idle-poll/contacts=20", func(b *testing.B) { benchNetIdle(b, w, r, 20) })
}

func openIPFS(b *testing.B, n *devnode.Node) *ipfs.Store {
	s, err := ipfs.Open(context.Background(), n.URL, ipfs.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

const netGets = 20

// benchNetGet times Store.Get through the reader's node: of records put
// through the writer's node (on three nodes the put replicates to the
// reader's node too, so also again after the reader's node was wiped and
// must fetch from the others), of names never put (the first miss, then the
// same miss again).
func benchNetGet(b *testing.B, reader *devnode.Node, w, r *ipfs.Store) {
	ctx := context.Background()
	var hit, remote, miss, again []time.Duration
	for i := 0; i < b.N; i++ {
		slots := randomSlots(netGets)
		for _, s := range slots {
			if err := w.Put(ctx, s, randomChunk()); err != nil {
				b.Fatal(err)
			}
		}
		hit = append(hit, timeGets(b, r, slots, nil)...)
		if err := reader.Wipe(); err != nil {
			b.Fatal(err)
		}
		remote = append(remote, timeGets(b, r, slots, nil)...)
		missing := randomSlots(netGets)
		miss = append(miss, timeGets(b, r, missing, feed.ErrNotFound)...)
		again = append(again, timeGets(b, r, missing, feed.ErrNotFound)...)
	}
	report(b, hit, "hit-ms")
	report(b, remote, "hit-after-wipe-ms")
	report(b, miss, "first-miss-ms")
	report(b, again, "repeated-miss-ms")
}

// timeGets gets each slot once and returns the times; want is the error
// every Get must wrap (nil: must succeed).
func timeGets(b *testing.B, s *ipfs.Store, slots []feed.Slot, want error) []time.Duration {
	ctx := context.Background()
	var ds []time.Duration
	for _, slot := range slots {
		start := time.Now()
		_, err := s.Get(ctx, slot)
		ds = append(ds, time.Since(start))
		if (want == nil && err != nil) || (want != nil && !errors.Is(err, want)) {
			b.Fatalf("get: %v, want %v", err, want)
		}
	}
	return ds
}

func randomSlots(n int) []feed.Slot {
	slots := make([]feed.Slot, n)
	for i := range slots {
		rand.Read(slots[i][:])
	}
	return slots
}

func randomChunk() []byte {
	c := make([]byte, feed.ChunkSize)
	rand.Read(c)
	return c
}

// report reports the median of ds in ms under unit, and logs the range.
func report(b *testing.B, ds []time.Duration, unit string) {
	if len(ds) == 0 {
		return
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	b.ReportMetric(ms(s[len(s)/2]), unit)
	b.Logf("%s: median %.2f, min %.2f, max %.2f over %d", unit, ms(s[len(s)/2]), ms(s[0]), ms(s[len(s)-1]), len(s))
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// pairAcross is pair with alice on store w and bob on store r (history off,
// as in BenchmarkCatchUp, so a catch-up repeated from one snapshot of bob's
// state writes nothing but acks).
func pairAcross(b *testing.B, w, r feed.Store) (alice *sync.Account, bobDir string) {
	ctx := context.Background()
	alice, err := sync.Create(b.TempDir(), "alice", shared{transport.NewDirect(w)}, sync.Options{NoHistory: true})
	if err != nil {
		b.Fatal(err)
	}
	bobDir = b.TempDir()
	bob, err := sync.Create(bobDir, "bob", shared{transport.NewDirect(r)}, sync.Options{NoHistory: true})
	if err != nil {
		b.Fatal(err)
	}
	defer bob.Close()
	inv, _ := alice.Invite("bob")
	if _, err := bob.Accept(ctx, inv, ""); err != nil {
		b.Fatal(err)
	}
	mustPoll(b, alice)
	mustPoll(b, bob) // alice's meta: bob's first-contact work is done
	return alice, bobDir
}

// benchNetCatchUp: bob, on the reader's node, was offline while alice sent n
// messages through the writer's node; the time of bob's Poll, repeated from
// a snapshot of his state (the median of 20 runs for N=1, 5 for N=100, 3
// for N=1000).
func benchNetCatchUp(b *testing.B, w, r feed.Store, n int) {
	ctx := context.Background()
	alice, bobDir := pairAcross(b, w, r)
	defer alice.Close()
	start := time.Now()
	for i := 0; i < n; i++ {
		mustSend(b, alice, "bob", fmt.Sprintf("message %d", i))
	}
	b.Logf("N=%d: sending took %v (%.1f ms a message)", n, time.Since(start), ms(time.Since(start))/float64(n))
	stateFile := filepath.Join(bobDir, "state.db")
	snapshot := readFile(b, stateFile)
	var ds []time.Duration
	rounds := 0
	for i := 0; i < b.N*min(20, max(3, 500/n)); i++ {
		writeFile(b, stateFile, snapshot)
		bob, err := sync.Open(bobDir, shared{transport.NewDirect(r)}, sync.Options{})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		res, err := bob.Poll(ctx, nil)
		ds = append(ds, time.Since(start))
		bob.Close()
		if err != nil || len(res.New) != n {
			b.Fatalf("catch-up delivered %d of %d: %v", len(res.New), n, err)
		}
		rounds = res.Rounds
	}
	report(b, ds, "ms")
	b.ReportMetric(float64(rounds), "rounds")
}

// benchNetIdle: bob, on the reader's node, has `contacts` contacts on the
// writer's node and nothing new; the time of one Poll and the GETs it makes
// (history on, as a real account has it).
func benchNetIdle(b *testing.B, w, r feed.Store, contacts int) {
	ctx := context.Background()
	bobDir := b.TempDir()
	get := &counting{Transport: transport.NewDirect(r)}
	bob, err := sync.Create(bobDir, "bob", get, sync.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer bob.Close()
	for i := 0; i < contacts; i++ {
		c, err := sync.Create(b.TempDir(), fmt.Sprintf("c%d", i), shared{transport.NewDirect(w)}, sync.Options{})
		if err != nil {
			b.Fatal(err)
		}
		inv, _ := c.Invite("bob")
		if _, err := bob.Accept(ctx, inv, ""); err != nil {
			b.Fatal(err)
		}
		mustPoll(b, c)
		c.Close()
	}
	mustPoll(b, bob)
	mustPoll(b, bob) // settled: what follows is idle
	var ds []time.Duration
	get.gets.Store(0)
	polls := b.N * 10
	rounds := 0
	for i := 0; i < polls; i++ {
		start := time.Now()
		res, err := bob.Poll(ctx, nil)
		ds = append(ds, time.Since(start))
		if err != nil || len(res.New) != 0 {
			b.Fatalf("idle poll: %d new, %v", len(res.New), err)
		}
		rounds = res.Rounds
	}
	report(b, ds, "ms")
	b.ReportMetric(float64(get.gets.Load())/float64(polls), "gets")
	b.ReportMetric(float64(rounds), "rounds")
}
