package sync

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/transport"
	bolt "go.etcd.io/bbolt"
)

// countingTransport counts GETs and the bytes they return.
type countingTransport struct {
	transport.Transport
	gets, bytes atomic.Int64
}

func (c *countingTransport) Get(ctx context.Context, s feed.Slot) ([]byte, error) {
	b, err := c.Transport.Get(ctx, s)
	c.gets.Add(1)
	c.bytes.Add(int64(len(b)))
	return b, err
}

func (c *countingTransport) Close() error { return nil }

// appendLog adds n message entries to a's log, one block each (as n sends
// one at a time would), and writes them to the store.
func appendLog(b *testing.B, a *Account, n int) {
	for i := 0; i < n; i++ {
		err := a.db.Update(func(tx *bolt.Tx) error {
			return a.stage(tx, &logEntry{Type: "msg", Contact: "bob", Origin: a.newOrigin(), Dir: Outgoing,
				Body: []byte(fmt.Sprintf("message %d", i)), Sent: time.Now(), State: Stored, Seen: true})
		})
		if err != nil {
			b.Fatal(err)
		}
		if err := a.packLog(); err != nil {
			b.Fatal(err)
		}
	}
	if err := a.flushLog(context.Background()); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkLogSync: two devices of one account whose logs are in sync at
// n = 10,000 blocks; one appends d blocks; what the other fetches to catch
// up (syncLogs). Identifying the difference costs the d GETs that also
// transfer it plus one that finds the end: no exchange of hashes at all.
// Reported beside the range-based reconciliation of two unordered sets of
// n entries with d differences (sync/merkle), which a log with one writer
// per device does not need.
func BenchmarkLogSync(b *testing.B) {
	const n = 10000
	ctx := context.Background()
	store := feed.NewMemory()
	opts := Options{NoSync: true}
	a1, err := Create(b.TempDir(), "alice", nopCloser{transport.NewDirect(store)}, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer a1.Close()
	appendLog(b, a1, n)
	ct := &countingTransport{Transport: transport.NewDirect(store)}
	a2, _, _, err := linkAndJoin(ctx, a1, "second", time.Hour, b.TempDir(), ct, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer a2.Close()
	for _, d := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("n=%d/d=%d", n, d), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				appendLog(b, a1, d)
				ct.gets.Store(0)
				ct.bytes.Store(0)
				if err := a2.syncLogs(ctx); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(ct.gets.Load()), "gets")
				b.ReportMetric(float64(ct.gets.Load()*32), "request-bytes")
				b.ReportMetric(float64(ct.bytes.Load()), "fetched-bytes")
				b.ReportMetric(float64(ct.bytes.Load()-int64(d*feed.ChunkSize)), "overhead-bytes")
			}
		})
	}
}

type nopCloser struct{ transport.Transport }

func (nopCloser) Close() error { return nil }
