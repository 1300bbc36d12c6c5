package benchmarks

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/feed/ipfs"
	"github.com/deaddrop/deaddrop/feed/swarm"
	"github.com/deaddrop/deaddrop/internal/devnode"
)

// backend is a store under benchmark with its raw operations: what a client
// with no protocol at all would do to move the same bytes.
type backend struct {
	name  string
	store feed.Store
	// rawGet fetches a stored slot's object without verifying it.
	rawGet func(ctx context.Context, slot feed.Slot) error
	// prepare builds the object a raw upload sends (outside the timing);
	// rawPut uploads it.
	prepare func(slot feed.Slot, chunk []byte) any
	rawPut  func(ctx context.Context, slot feed.Slot, obj any) error
	swarm   *swarm.Store
}

var (
	nodesOnce sync.Once
	beeNode   *devnode.Node
	kuboNode  *devnode.Node
	nodesErr  error
)

// backends returns the embedded store and, on real nodes started once per
// run, Swarm and IPFS.
func backends(b *testing.B) []backend {
	nodesOnce.Do(func() {
		dir, err := tempDir()
		if err != nil {
			nodesErr = err
			return
		}
		if beeNode, nodesErr = devnode.Bee(filepath.Join(dir, "bee")); nodesErr != nil {
			return
		}
		kuboNode, nodesErr = devnode.Kubo(filepath.Join(dir, "kubo"))
	})
	if nodesErr != nil {
		b.Fatal(nodesErr)
	}
	ctx := context.Background()
	emb, err := feed.OpenEmbedded(filepath.Join(b.TempDir(), "store"))
	if err != nil {
		b.Fatal(err)
	}
	sw, err := swarm.Open(ctx, beeNode.URL, swarm.Options{})
	if err != nil {
		b.Fatal(err)
	}
	ip, err := ipfs.Open(ctx, kuboNode.URL, ipfs.Options{})
	if err != nil {
		b.Fatal(err)
	}
	return []backend{
		{name: "embedded", store: emb,
			rawGet:  func(ctx context.Context, s feed.Slot) error { _, err := emb.Get(ctx, s); return err },
			prepare: func(s feed.Slot, c []byte) any { return c },
			rawPut:  func(ctx context.Context, s feed.Slot, o any) error { return emb.Put(ctx, s, o.([]byte)) }},
		{name: "swarm", store: sw, swarm: sw,
			rawGet: func(ctx context.Context, s feed.Slot) error {
				_, addr := swarm.BuildSOC(s, make([]byte, feed.ChunkSize))
				_, err := sw.RawGetChunk(ctx, addr)
				return err
			},
			prepare: func(s feed.Slot, c []byte) any { soc, _ := swarm.BuildSOC(s, c); return soc },
			rawPut:  func(ctx context.Context, s feed.Slot, o any) error { return sw.RawPutChunk(ctx, o.([]byte)) }},
		{name: "ipfs", store: ip,
			rawGet:  func(ctx context.Context, s feed.Slot) error { _, err := ip.RawGetRecord(ctx, ipfs.Name(s)); return err },
			prepare: func(s feed.Slot, c []byte) any { r, _ := ipfs.BuildRecord(s, c); return r },
			rawPut: func(ctx context.Context, s feed.Slot, o any) error {
				return ip.RawPutRecord(ctx, ipfs.Name(s), o.([]byte))
			}},
	}
}
