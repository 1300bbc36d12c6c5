package feed_test

import (
	"context"
	"slices"
	"testing"

	"github.com/deaddrop/deaddrop/feed"
)

func TestRegister(t *testing.T) {
	if !slices.Contains(feed.Kinds(), "embedded") {
		t.Fatalf("kinds %v lack embedded", feed.Kinds())
	}
	open := func(ctx context.Context, arg string) (feed.Store, error) { return feed.NewMemory(), nil }
	feed.Register("test-kind", open)
	if _, ok := feed.Lookup("test-kind"); !ok {
		t.Fatal("a registered kind is not found")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("a second Register of one kind did not panic")
		}
	}()
	feed.Register("test-kind", open)
}
