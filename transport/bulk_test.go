package transport_test

import (
	"context"
	"errors"
	"testing"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/transport"
)

// chunksOnly is a store without bulk content.
type chunksOnly struct{ feed.Store }

// wrapped hides a Direct transport, as the mix transport is not one.
type wrapped struct{ transport.Transport }

func TestBulkOf(t *testing.T) {
	mem := feed.NewMemory()
	if b, err := transport.BulkOf(transport.NewDirect(mem)); err != nil || b == nil {
		t.Fatalf("direct to a memory store: %v", err)
	}
	lazy := feed.Lazy(func(context.Context) (feed.Store, error) { return mem, nil })
	if _, err := transport.BulkOf(transport.NewDirect(lazy)); err != nil {
		t.Fatalf("direct to a lazy store: %v", err)
	}
	for name, tr := range map[string]transport.Transport{
		"store without bulk content": transport.NewDirect(chunksOnly{mem}),
		"another transport":          wrapped{transport.NewDirect(mem)},
	} {
		if _, err := transport.BulkOf(tr); !errors.Is(err, transport.ErrNoBulk) {
			t.Errorf("%s: %v, want ErrNoBulk", name, err)
		}
	}
}
