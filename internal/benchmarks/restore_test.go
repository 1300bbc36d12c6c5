package benchmarks

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/sync"
	"github.com/deaddrop/deaddrop/transport"
)

// counting is a transport that counts what it fetches.
type counting struct {
	transport.Transport
	gets, hits, bytes atomic.Int64
}

func (c *counting) Get(ctx context.Context, s feed.Slot) ([]byte, error) {
	b, err := c.Transport.Get(ctx, s)
	c.gets.Add(1)
	if err == nil {
		c.hits.Add(1)
		c.bytes.Add(int64(len(b)))
	}
	return b, err
}

func (c *counting) Close() error { return nil }

// BenchmarkRestore: alice and bob exchanged N messages (half each way; alice
// sent hers one at a time, back to back, so the finisher packs them into a
// few blocks once sends pause, and caught up with bob's in batches); then
// every device of alice's is gone and a new one restores from the recovery
// phrase alone. Reported: the restore's wall
// time, against fetching the same number of chunks raw in parallel windows
// of 64 (restore's largest window) on the same store in the same run; bytes
// fetched against the ciphertext of the N messages (N chunks) and against
// the history log's own ciphertext.
func BenchmarkRestore(b *testing.B) {
	n := envInt("DEADDROP_RESTORE_N", 10000)
	for _, be := range backends(b) {
		b.Run(fmt.Sprintf("%s/N=%d", be.name, n), func(b *testing.B) { benchRestore(b, be, n) })
	}
}

func benchRestore(b *testing.B, be backend, n int) {
	ctx := context.Background()
	opts := sync.Options{NoSync: true} // set-up only: the restore below syncs
	rec := &recorder{Transport: transport.NewDirect(be.store)}
	alice, err := sync.Create(b.TempDir(), "alice", rec, opts)
	if err != nil {
		b.Fatal(err)
	}
	bob, err := sync.Create(b.TempDir(), "bob", shared{transport.NewDirect(be.store)}, opts)
	if err != nil {
		b.Fatal(err)
	}
	phrase := alice.RecoveryPhrase()
	inv, _ := alice.Invite("bob")
	if _, err := bob.Accept(ctx, inv, ""); err != nil {
		b.Fatal(err)
	}
	mustPoll(b, alice)
	for i := 0; i < n/2; i++ {
		mustSend(b, alice, "bob", fmt.Sprintf("alice's message %d", i))
		mustSend(b, bob, "alice", fmt.Sprintf("bob's message %d", i))
		if i%500 == 499 {
			mustPoll(b, alice)
			mustPoll(b, bob)
		}
	}
	mustPoll(b, alice)
	blocks := logBlocks(b, alice)
	alice.Close()
	bob.Close()

	for i := 0; i < b.N; i++ {
		c := &counting{Transport: transport.NewDirect(be.store)}
		start := time.Now()
		restored, stats, err := sync.Restore(ctx, b.TempDir(), phrase, "new", c, sync.Options{})
		elapsed := time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		restored.Close()
		if stats.Messages != n {
			b.Fatalf("restored %d of %d messages", stats.Messages, n)
		}
		raw := timeIt(func() { rawGets(b, be, rec.slots[len(rec.slots)-stats.Blocks:], logWindow) })
		b.ReportMetric(float64(elapsed.Milliseconds()), "ms")
		b.ReportMetric(float64(elapsed)/float64(raw), "x-raw-par")
		b.ReportMetric(float64(stats.Blocks), "blocks")
		b.ReportMetric(float64(c.gets.Load()), "gets")
		b.ReportMetric(float64(c.bytes.Load())/float64(n*feed.ChunkSize), "x-msg-ciphertext")
		b.ReportMetric(float64(c.bytes.Load())/float64(blocks*feed.ChunkSize), "x-log-ciphertext")
		b.ReportMetric(float64(c.bytes.Load())/1e6, "MB-fetched")
	}
}

// logWindow is the history log's largest fetch window (sync.maxLogWindow).
const logWindow = 64

func logBlocks(b *testing.B, a *sync.Account) int {
	heads, err := a.LogHeads()
	if err != nil {
		b.Fatal(err)
	}
	total := 0
	for _, h := range heads {
		total += int(h.Size)
	}
	return total
}

func mustPoll(b *testing.B, a *sync.Account) {
	if _, err := a.Poll(context.Background(), nil); err != nil {
		b.Fatal(err)
	}
}

func mustSend(b *testing.B, a *sync.Account, to, body string) {
	if _, err := a.Send(context.Background(), to, body); err != nil {
		b.Fatal(err)
	}
}
