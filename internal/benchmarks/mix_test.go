package benchmarks

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/sync"
	"github.com/deaddrop/deaddrop/transport"
	"github.com/deaddrop/deaddrop/transport/mix"
)

// BenchmarkMixRoundTrip: the measured round trip of a Get through an
// in-process mixnet (three layers and a gateway, default Loopix parameters)
// against the latency the parameters predict.
func BenchmarkMixRoundTrip(b *testing.B) {
	store := feed.NewMemory()
	p := mix.DefaultParams()
	tn, nodes, err := mix.StartLocal(filepath.Join(b.TempDir(), "net"), 1, store, p)
	if err != nil {
		b.Fatal(err)
	}
	defer closeNodes(nodes)
	c, err := mix.Dial(context.Background(), tn.Topology, p)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	var slot feed.Slot
	const reps = 60
	var total time.Duration
	for i := 0; i < b.N*reps; i++ {
		slot[0] = byte(i)
		start := time.Now()
		if _, err := c.Get(context.Background(), slot); err != feed.ErrNotFound {
			b.Fatalf("get: %v", err)
		}
		total += time.Since(start)
	}
	mean := total / time.Duration(b.N*reps)
	b.ReportMetric(float64(mean.Microseconds())/1000, "ms-rtt")
	b.ReportMetric(float64(p.PredictedRTT().Microseconds())/1000, "ms-predicted")
	b.ReportMetric(float64(mean)/float64(p.PredictedRTT()), "x-predicted")
	b.ReportMetric(mix.PacketSize, "bytes/packet")
}

// BenchmarkMixCatchUp: bob catches up 100 messages through the mix, against
// the same catch-up direct to the same store, in the same run.
func BenchmarkMixCatchUp(b *testing.B) {
	ctx := context.Background()
	store, err := feed.OpenEmbedded(filepath.Join(b.TempDir(), "store"))
	if err != nil {
		b.Fatal(err)
	}
	p := mix.DefaultParams()
	tn, nodes, err := mix.StartLocal(filepath.Join(b.TempDir(), "net"), 1, store, p)
	if err != nil {
		b.Fatal(err)
	}
	defer closeNodes(nodes)
	alice, _, bobDir := pair(b, store, false)
	defer alice.Close()
	for i := 0; i < 100; i++ {
		if _, err := alice.Send(ctx, "bob", fmt.Sprintf("m%d", i)); err != nil {
			b.Fatal(err)
		}
	}
	snapshot := readFile(b, filepath.Join(bobDir, "state.db"))
	measure := func(tr transport.Transport) (time.Duration, int) {
		writeFile(b, filepath.Join(bobDir, "state.db"), snapshot)
		bob, err := sync.Open(bobDir, tr, sync.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer bob.Close()
		start := time.Now()
		res, err := bob.Poll(ctx, nil)
		if err != nil || res.NewCount != 100 {
			b.Fatalf("catch-up: %d, %v", res.NewCount, err)
		}
		return time.Since(start), res.Fetched
	}
	var viaMix, direct time.Duration
	var fetched int
	for i := 0; i < b.N; i++ {
		c, err := mix.Dial(ctx, tn.Topology, p)
		if err != nil {
			b.Fatal(err)
		}
		d, f := measure(c)
		viaMix, fetched = viaMix+d, f
		d, _ = measure(shared{transport.NewDirect(store)})
		direct += d
	}
	b.ReportMetric(float64(viaMix.Milliseconds())/float64(b.N), "ms-mix")
	b.ReportMetric(float64(direct.Microseconds())/1000/float64(b.N), "ms-direct")
	b.ReportMetric(float64(fetched), "gets")
	b.ReportMetric(float64(fetched)*float64(p.SendInterval.Milliseconds())+float64(p.PredictedRTT().Milliseconds()), "ms-model")
}

// BenchmarkX25519 is the machine's scalar multiplication, the bulk of a
// Sphinx hop (two per hop), for reading the unwrap figure.
func BenchmarkX25519(b *testing.B) {
	k, _ := ecdh.X25519().GenerateKey(rand.Reader)
	pub := k.PublicKey()
	for b.Loop() {
		k.ECDH(pub)
	}
}

func closeNodes(nodes []*mix.Node) {
	for _, n := range nodes {
		n.Close()
	}
}

// BenchmarkMixIdlePoll: one Poll of an account with 20 idle contacts (history
// on) through an in-process mixnet with the default Loopix parameters, on
// the embedded store: one wave, so about one mix round trip plus a send
// interval per GET (the client's Poisson rate bounds how fast GETs leave).
func BenchmarkMixIdlePoll(b *testing.B) {
	ctx := context.Background()
	net, tr, meDir, snapshot := pollSetup(b, "embedded", 20, 0, 0)
	p := mix.DefaultParams()
	tn, nodes, err := mix.StartLocal(filepath.Join(b.TempDir(), "net"), 1, net, p)
	if err != nil {
		b.Fatal(err)
	}
	defer closeNodes(nodes)
	var viaMix, direct time.Duration
	var fetched int
	for i := 0; i < b.N; i++ {
		for _, viaTheMix := range []bool{true, false} {
			writeFile(b, filepath.Join(meDir, "state.db"), snapshot)
			t := tr()
			if viaTheMix {
				if t, err = mix.Dial(ctx, tn.Topology, p); err != nil {
					b.Fatal(err)
				}
			}
			me, err := sync.Open(meDir, t, sync.Options{})
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			res, err := me.Poll(ctx, nil)
			d := time.Since(start)
			me.Close()
			if err != nil {
				b.Fatal(err)
			}
			if viaTheMix {
				viaMix, fetched = viaMix+d, res.Fetched
			} else {
				direct += d
			}
		}
	}
	b.ReportMetric(float64(viaMix.Milliseconds())/float64(b.N), "ms-mix")
	b.ReportMetric(float64(direct.Microseconds())/1000/float64(b.N), "ms-direct")
	b.ReportMetric(float64(fetched), "conversation-gets")
	b.ReportMetric(0, "ns/op")
}
