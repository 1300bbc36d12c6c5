package benchmarks

import (
	"context"
	"fmt"
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
func BenchmarkPoll(b *testing.B) {
	for _, p := range profiles {
		for _, c := range []int{20, 100} {
			b.Run(fmt.Sprintf("%s/idle/C=%d", p.name, c), func(b *testing.B) { benchPoll(b, p, c, 0, 0) })
		}
		b.Run(p.name+"/catchup/N=1000", func(b *testing.B) { benchPoll(b, p, 1, 1, 1000) })
		b.Run(p.name+"/busy/C=1xN=50", func(b *testing.B) { benchPoll(b, p, 20, 1, 50) })
		b.Run(p.name+"/busy/C=20xN=50", func(b *testing.B) { benchPoll(b, p, 20, 20, 50) })
	}
}

// benchPoll sets up me with contacts contacts (senders of them having sent
// n messages each) on a quiet profile, keeps me's state, and times Polls
// from that state with the profile's delays on.
func benchPoll(b *testing.B, p profile, contacts, senders, n int) {
	ctx := context.Background()
	emb, err := feed.OpenEmbedded(filepath.Join(b.TempDir(), "store"))
	if err != nil {
		b.Fatal(err)
	}
	defer emb.Close()
	net := feedtest.NewNetwork(emb, 0, 0)
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
