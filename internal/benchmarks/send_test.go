package benchmarks

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/feed/swarm"
)

var swarmFeedUpdate = swarm.FeedUpdateSOC

// BenchmarkSend: Send (encrypt, commit to the outbox, upload, record the
// outcome) against a raw upload of a prebuilt object of the same size.
func BenchmarkSend(b *testing.B) {
	for _, be := range backends(b) {
		b.Run(be.name, func(b *testing.B) {
			ctx := context.Background()
			alice, _, _ := pair(b, be.store, true)
			defer alice.Close()
			const reps = 200
			var send, raw time.Duration
			for i := 0; i < b.N*reps; i++ {
				send += timeIt(func() {
					if _, err := alice.Send(ctx, "bob", "a message of ordinary length, about sixty bytes long"); err != nil {
						b.Fatal(err)
					}
				})
				var slot feed.Slot
				rand.Read(slot[:])
				chunk := make([]byte, feed.ChunkSize)
				rand.Read(chunk)
				obj := be.prepare(slot, chunk)
				raw += timeIt(func() {
					if err := be.rawPut(ctx, slot, obj); err != nil {
						b.Fatal(err)
					}
				})
			}
			runs := float64(b.N * reps)
			b.ReportMetric(float64(send.Microseconds())/runs, "µs/send")
			b.ReportMetric(float64(raw.Microseconds())/runs, "raw-µs/put")
			b.ReportMetric(float64(send)/float64(raw), "x-raw-put")
		})
	}
}
