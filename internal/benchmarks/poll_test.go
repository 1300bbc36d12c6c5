package benchmarks

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/feed/feedtest"
	"github.com/deaddrop/deaddrop/sync"
	"github.com/deaddrop/deaddrop/transport"
)

// A network profile: what every request and every miss costs.
type profile struct {
	name      string
	rtt, miss time.Duration
}

// "network" is what a Swarm or IPFS network looks like from a client: a
// round trip per request, and a retrieval timeout before a node gives up on
// a chunk that is not there.
var profiles = []profile{
	{"loopback", 0, 0},
	{"network", 50 * time.Millisecond, time.Second},
}

// BenchmarkPoll: one Poll of an account ("me") over the embedded store behind
// a network profile (feedtest.Network), counting the waves and GETs the
// profile saw:
//   - idle/C: C contacts (history on), nothing new;
//   - catchup/N=1000: one contact sent 1,000 messages;
//   - busy/CxN: C contacts sent N messages each.
//
// Run with -benchtime=1x under the network profile: each Poll costs seconds.
// With DEADDROP_POLL_NODES=1 it also runs over Bee and Kubo dev nodes.
func BenchmarkPoll(b *testing.B) {
	stores := []string{"embedded"}
	if os.Getenv("DEADDROP_POLL_NODES") != "" {
		stores = append(stores, "swarm", "ipfs")
	}
	for _, store := range stores {
		name := func(s string) string {
			if store == "embedded" {
				return s // the names of the first measurements
			}
			return store + "/" + s
		}
		for _, p := range profiles {
			for _, c := range []int{20, 100} {
				b.Run(name(fmt.Sprintf("%s/idle/C=%d", p.name, c)), func(b *testing.B) { benchPoll(b, store, p, c, 0, 0) })
			}
			b.Run(name(p.name+"/catchup/N=1000"), func(b *testing.B) { benchPoll(b, store, p, 1, 1, 1000) })
			b.Run(name(p.name+"/busy/C=1xN=50"), func(b *testing.B) { benchPoll(b, store, p, 20, 1, 50) })
			b.Run(name(p.name+"/busy/C=20xN=50"), func(b *testing.B) { benchPoll(b, store, p, 20, 20, 50) })
		}
	}
}

// pollStore returns the named store: a fresh embedded one, or the shared
// Bee or Kubo dev node.
func pollStore(b *testing.B, name string) feed.Store {
	if name == "embedded" {
		emb, err := feed.OpenEmbedded(filepath.Join(b.TempDir(), "store"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { emb.Close() })
		return emb
	}
	for _, be := range backends(b) {
		if be.name == name {
			return be.store
		}
	}
	b.Fatalf("no store %q", name)
	return nil
}

// benchPoll sets up me with contacts contacts (senders of them having sent
// n messages each) on a quiet profile, keeps me's state, and times Polls
// from that state with the profile's delays on.
func benchPoll(b *testing.B, store string, p profile, contacts, senders, n int) {
	ctx := context.Background()
	net := feedtest.NewNetwork(pollStore(b, store), 0, 0)
	tr := func() transport.Transport { return shared{transport.NewDirect(net)} }
	setup := sync.Options{NoSync: true}
	meDir := b.TempDir()
	me, err := sync.Create(meDir, "me", tr(), setup)
	if err != nil {
		b.Fatal(err)
	}
	var peers []*sync.Account
	for i := range contacts {
		name := fmt.Sprintf("peer%d", i)
		peer, err := sync.Create(b.TempDir(), name, tr(), setup)
		if err != nil {
			b.Fatal(err)
		}
		defer peer.Close()
		inv, err := me.Invite(name)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := peer.Accept(ctx, inv, ""); err != nil {
			b.Fatal(err)
		}
		peers = append(peers, peer)
	}
	for range 3 { // first-contact traffic settles
		if _, err := me.Poll(ctx, nil); err != nil {
			b.Fatal(err)
		}
		for _, peer := range peers {
			if _, err := peer.Poll(ctx, nil); err != nil {
				b.Fatal(err)
			}
		}
	}
	if _, err := me.Poll(ctx, nil); err != nil {
		b.Fatal(err)
	}
	me.Close()
	for _, peer := range peers[:senders] {
		for k := range n {
			if _, err := peer.Send(ctx, "me", fmt.Sprintf("message %d", k)); err != nil {
				b.Fatal(err)
			}
		}
	}
	stateFile := filepath.Join(meDir, "state.db")
	snapshot := readFile(b, stateFile)

	var total time.Duration
	var st feedtest.NetworkStats
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		writeFile(b, stateFile, snapshot)
		me, err := sync.Open(meDir, tr(), sync.Options{})
		if err != nil {
			b.Fatal(err)
		}
		net.RTT, net.Miss = p.rtt, p.miss
		net.Reset()
		b.StartTimer()
		start := time.Now()
		res, err := me.Poll(ctx, nil)
		total += time.Since(start)
		b.StopTimer()
		st = net.Stats()
		net.RTT, net.Miss = 0, 0
		me.Close()
		if err != nil || res.NewCount != senders*n {
			b.Fatalf("poll delivered %d of %d: %v", res.NewCount, senders*n, err)
		}
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N)/1000, "ms")
	b.ReportMetric(float64(st.Waves), "waves")
	b.ReportMetric(float64(st.Gets), "GETs")
	b.ReportMetric(float64(st.Misses), "misses")
	b.ReportMetric(float64(st.Puts), "PUTs")
	b.ReportMetric(float64(st.MaxInFlight), "max-in-flight")
	b.ReportMetric(0, "ns/op")
}
