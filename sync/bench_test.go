package sync_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/sync"
	"github.com/deaddrop/deaddrop/transport"
)

// StoreFactory opens the store a benchmark runs on; backends' benchmarks
// reuse RunCatchUpBenchmark with a real node.
type storeFactory func(b *testing.B) feed.Store

func embeddedStore(b *testing.B) feed.Store {
	s, err := feed.OpenEmbedded(filepath.Join(b.TempDir(), "store"))
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkCatchUp measures bob's catch-up of N messages alice sent while he
// was offline, against N raw Store.Get calls of the same chunks in the same
// run. Reported: ratio (catch-up time / raw time), rounds, µs per message.
func BenchmarkCatchUp(b *testing.B) {
	for _, n := range []int{1, 10, 100, 1000} {
		b.Run(fmt.Sprintf("embedded/N=%d", n), func(b *testing.B) { benchCatchUp(b, embeddedStore, n) })
	}
}

func benchCatchUp(b *testing.B, open storeFactory, n int) {
	ctx := context.Background()
	store := open(b)
	defer store.Close()
	dirA, dirB := b.TempDir(), b.TempDir()
	alice, err := sync.Create(dirA, "alice", direct(store), sync.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer alice.Close()
	bob, err := sync.Create(dirB, "bob", direct(store), sync.Options{})
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
	var slots []feed.Slot
	for i := 0; i < n; i++ {
		m, err := alice.Send(ctx, "bob", fmt.Sprintf("message %d", i))
		if err != nil {
			b.Fatal(err)
		}
		s, _ := sync.OutboxSlotForTest(alice, "bob", m.Seq)
		slots = append(slots, s)
	}
	bob.Close()
	snapshot, err := os.ReadFile(filepath.Join(dirB, "state.db"))
	if err != nil {
		b.Fatal(err)
	}
	var catchUp, raw time.Duration
	rounds := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if err := os.WriteFile(filepath.Join(dirB, "state.db"), snapshot, 0o600); err != nil {
			b.Fatal(err)
		}
		bob, err := sync.Open(dirB, direct(store), sync.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		res, err := bob.Poll(ctx, nil)
		catchUp += time.Since(start)
		b.StopTimer()
		if err != nil || len(res.New) != n {
			b.Fatalf("catch-up: %d of %d, %v", len(res.New), n, err)
		}
		rounds = res.Rounds
		bob.Close()
		start = time.Now()
		for _, s := range slots {
			if _, err := store.Get(ctx, s); err != nil {
				b.Fatal(err)
			}
		}
		raw += time.Since(start)
		b.StartTimer()
	}
	b.ReportMetric(float64(catchUp)/float64(raw), "x-raw-gets")
	b.ReportMetric(float64(rounds), "rounds")
	b.ReportMetric(float64(catchUp.Microseconds())/float64(b.N*n), "µs/msg")
	b.ReportMetric(float64(raw.Microseconds())/float64(b.N*n), "raw-µs/get")
}

// BenchmarkSend measures Send (encrypt, commit, store, record) against a raw
// Store.Put of a chunk on the same store.
func BenchmarkSend(b *testing.B) {
	ctx := context.Background()
	store := embeddedStore(b)
	alice, err := sync.Create(b.TempDir(), "alice", direct(store), sync.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer alice.Close()
	bob, _ := sync.Create(b.TempDir(), "bob", direct(store), sync.Options{})
	defer bob.Close()
	inv, _ := alice.Invite("bob")
	bob.Accept(ctx, inv, "")
	alice.Poll(ctx, nil)
	chunk := make([]byte, feed.ChunkSize)
	var send, raw time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if _, err := alice.Send(ctx, "bob", "a message of ordinary length, about sixty bytes"); err != nil {
			b.Fatal(err)
		}
		send += time.Since(start)
		var slot feed.Slot
		slot[0], slot[1], slot[2] = byte(i), byte(i>>8), byte(i>>16)
		start = time.Now()
		if err := store.Put(ctx, slot, chunk); err != nil {
			b.Fatal(err)
		}
		raw += time.Since(start)
	}
	b.ReportMetric(float64(send)/float64(raw), "x-raw-put")
	b.ReportMetric(float64(send.Microseconds())/float64(b.N), "µs/send")
	b.ReportMetric(float64(raw.Microseconds())/float64(b.N), "raw-µs/put")
}

var _ transport.Transport = direct(nil)
