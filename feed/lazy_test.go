package feed_test

import (
	"context"
	"errors"
	"testing"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/feed/feedtest"
)

func TestLazyOpensWhenReachable(t *testing.T) {
	up := false
	mem := feed.NewMemory()
	s := feed.Lazy(func(context.Context) (feed.Store, error) {
		if !up {
			return nil, feed.ErrUnavailable
		}
		return mem, nil
	})
	ctx := context.Background()
	slot, chunk := feedtest.RandomSlot(t), feedtest.RandomChunk(t)
	if err := s.Put(ctx, slot, chunk); !errors.Is(err, feed.ErrUnavailable) {
		t.Fatalf("Put while down: %v", err)
	}
	up = true
	if err := s.Put(ctx, slot, chunk); err != nil {
		t.Fatalf("Put once up: %v", err)
	}
	if _, err := s.Get(ctx, slot); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := s.Get(ctx, slot); !errors.Is(err, feed.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}
