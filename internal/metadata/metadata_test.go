package metadata

import (
	"context"
	"encoding/hex"
	"fmt"
	"math"
	gosync "sync"
	"testing"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/feed/ipfs"
	"github.com/deaddrop/deaddrop/feed/swarm"
	"github.com/deaddrop/deaddrop/sync"
	"github.com/deaddrop/deaddrop/transport"
)

// observer records everything a store sees: every write (slot, chunk) and
// every read, in order.
type observer struct {
	transport.Transport
	mu     gosync.Mutex
	writes []write
	reads  int
}

type write struct {
	slot  feed.Slot
	chunk []byte
}

func (o *observer) Put(ctx context.Context, s feed.Slot, c []byte) error {
	o.mu.Lock()
	o.writes = append(o.writes, write{s, append([]byte(nil), c...)})
	o.mu.Unlock()
	return o.Transport.Put(ctx, s, c)
}

func (o *observer) Get(ctx context.Context, s feed.Slot) ([]byte, error) {
	o.mu.Lock()
	o.reads++
	o.mu.Unlock()
	return o.Transport.Get(ctx, s)
}

func (o *observer) Close() error { return nil }

// Five conversations among six accounts, 1,000 messages in all, both
// directions, then everything the store saw is examined as each backend would
// see it.
func TestWhatTheStoreSees(t *testing.T) {
	ctx := context.Background()
	obs := &observer{Transport: transport.NewDirect(feed.NewMemory())}
	open := func(name string) *sync.Account {
		a, err := sync.Create(t.TempDir(), name, obs, sync.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close() })
		return a
	}
	hub := open("hub")
	var peers []*sync.Account
	for i := 0; i < 5; i++ {
		p := open(fmt.Sprintf("p%d", i))
		inv, _ := hub.Invite(p.Name())
		if _, err := p.Accept(ctx, inv, ""); err != nil {
			t.Fatal(err)
		}
		peers = append(peers, p)
	}
	if _, err := hub.Poll(ctx, nil); err != nil {
		t.Fatal(err)
	}
	sent := 0
	for round := 0; sent < 1000; round++ {
		for _, p := range peers {
			if _, err := hub.Send(ctx, p.Name(), fmt.Sprintf("to %s #%d", p.Name(), round)); err != nil {
				t.Fatal(err)
			}
			if _, err := p.Send(ctx, "hub", fmt.Sprintf("from %s #%d, a longer message to vary the length", p.Name(), round)); err != nil {
				t.Fatal(err)
			}
			sent += 2
		}
		if round%7 == 0 {
			for _, p := range peers {
				p.Poll(ctx, nil)
			}
			hub.Poll(ctx, nil)
		}
	}
	t.Logf("store saw %d writes and %d reads for %d messages", len(obs.writes), obs.reads, sent)

	embedded := map[string]bool{}
	swarmAddr, swarmID, swarmOwner := map[string]bool{}, map[string]bool{}, map[string]bool{}
	ipfsName := map[string]bool{}
	unique := func(m map[string]bool, k string, what string) {
		if m[k] {
			t.Fatalf("two slots share a %s", what)
		}
		m[k] = true
	}
	var counts [256]int
	total := 0
	seen := map[feed.Slot]bool{}
	for _, w := range obs.writes {
		if seen[w.slot] {
			continue // a republish: the same bytes at the same address
		}
		seen[w.slot] = true
		if len(w.chunk) != feed.ChunkSize {
			t.Fatalf("a chunk of %d bytes", len(w.chunk))
		}
		addr := feed.DeriveKey(w.slot, "addr")
		unique(embedded, hex.EncodeToString(addr[:]), "file name")
		a, id, owner := swarm.Identity(w.slot)
		unique(swarmAddr, hex.EncodeToString(a[:]), "Swarm address")
		unique(swarmID, hex.EncodeToString(id[:]), "Swarm id")
		unique(swarmOwner, hex.EncodeToString(owner[:]), "Swarm owner")
		unique(ipfsName, ipfs.Name(w.slot).String(), "IPNS name")
		for _, b := range w.chunk {
			counts[b]++
		}
		total += len(w.chunk)
	}
	// Uniformity of all chunk bytes together: chi-square with 255 degrees of
	// freedom; structure (headers, padding, lengths) would show. The 1e-6
	// quantile is about 390.
	exp := float64(total) / 256
	chi := 0.0
	for _, c := range counts {
		chi += (float64(c) - exp) * (float64(c) - exp) / exp
	}
	if chi > 390 {
		t.Fatalf("chunk bytes are not uniform: chi-square %.0f", chi)
	}
	// Position by position too: no offset carries a constant or biased field.
	for off := 0; off < feed.ChunkSize; off += 97 {
		var c [256]int
		for _, w := range obs.writes {
			c[w.chunk[off]]++
		}
		if maxCount(c[:]) > len(obs.writes)/256*4+20 {
			t.Fatalf("byte %d of the chunks is biased", off)
		}
	}
	// Addresses of one conversation are no closer to each other than to
	// others': mean Hamming distance between consecutive writes' Swarm
	// addresses is 128 bits within a few standard deviations.
	var sum float64
	for i := 1; i < len(obs.writes); i++ {
		a1, _, _ := swarm.Identity(obs.writes[i-1].slot)
		a2, _, _ := swarm.Identity(obs.writes[i].slot)
		sum += float64(hamming(a1[:], a2[:]))
	}
	mean := sum / float64(len(obs.writes)-1)
	if math.Abs(mean-128) > 6*8/math.Sqrt(float64(len(obs.writes))) {
		t.Fatalf("consecutive addresses are correlated: mean distance %.2f bits", mean)
	}
	t.Logf("%d distinct slots; chi-square %.0f; mean address distance %.2f bits", len(obs.writes), chi, mean)
}

func maxCount(c []int) int {
	m := 0
	for _, v := range c {
		m = max(m, v)
	}
	return m
}

func hamming(a, b []byte) int {
	n := 0
	for i := range a {
		x := a[i] ^ b[i]
		for ; x != 0; x &= x - 1 {
			n++
		}
	}
	return n
}
