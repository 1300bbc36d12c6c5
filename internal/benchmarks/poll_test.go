package benchmarks

import (
	"context"
	"crypto/rand"
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
	net, tr, meDir, snapshot := pollSetup(b, store, contacts, senders, n)
	stateFile := filepath.Join(meDir, "state.db")
	ctx := context.Background()
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

// pollSetup makes me with contacts contacts on a quiet profile, the first
// senders of them having sent n messages each, and returns the network,
// a transport maker, me's home and a snapshot of me's state file.
func pollSetup(b *testing.B, store string, contacts, senders, n int) (*feedtest.Network, func() transport.Transport, string, []byte) {
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
	return net, tr, meDir, readFile(b, filepath.Join(meDir, "state.db"))
}

// BenchmarkSendDuringPoll: what a chat user waits for between pressing Enter
// and "stored" while a poll of 20 idle contacts is under way (Client.Watch
// runs it in the background), against one raw upload on the same profile.
// Under the network profile the poll takes about a second (one miss); the
// send must not wait for it.
func BenchmarkSendDuringPoll(b *testing.B) {
	for _, p := range profiles {
		b.Run(p.name, func(b *testing.B) { benchSendDuringPoll(b, p) })
	}
}

func benchSendDuringPoll(b *testing.B, p profile) {
	net, tr, meDir, snapshot := pollSetup(b, "embedded", 20, 0, 0)
	ctx := context.Background()
	const sends = 5
	var send, raw time.Duration
	var overlapped int
	for range b.N {
		writeFile(b, filepath.Join(meDir, "state.db"), snapshot)
		me, err := sync.Open(meDir, tr(), sync.Options{})
		if err != nil {
			b.Fatal(err)
		}
		net.RTT, net.Miss = p.rtt, p.miss
		for i := range sends {
			net.Reset()
			polled := make(chan error, 1)
			go func() { _, err := me.Poll(ctx, nil); polled <- err }()
			for net.Stats().Gets == 0 { // the poll's wave is on the wire
				time.Sleep(time.Millisecond)
			}
			send += timeIt(func() {
				if _, err := me.Send(ctx, "peer0", fmt.Sprintf("typed line %d", i)); err != nil {
					b.Fatal(err)
				}
			})
			select {
			case <-polled:
			default:
				overlapped++ // the poll was still running when the send returned
				if err := <-polled; err != nil {
					b.Fatal(err)
				}
			}
			raw += timeIt(func() { rawPut(b, net) })
		}
		net.RTT, net.Miss = 0, 0
		me.Close()
	}
	runs := float64(b.N * sends)
	b.ReportMetric(float64(send.Microseconds())/runs/1000, "send-ms")
	b.ReportMetric(float64(raw.Microseconds())/runs/1000, "raw-put-ms")
	b.ReportMetric(float64(send)/float64(raw), "x-raw-put")
	b.ReportMetric(float64(overlapped)/runs, "sends-inside-poll")
	b.ReportMetric(0, "ns/op")
}

// rawPut uploads one random chunk to a random slot.
func rawPut(b *testing.B, s feed.Store) {
	var slot feed.Slot
	rand.Read(slot[:])
	chunk := make([]byte, feed.ChunkSize)
	rand.Read(chunk)
	if err := s.Put(context.Background(), slot, chunk); err != nil {
		b.Fatal(err)
	}
}
