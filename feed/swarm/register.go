package swarm

import (
	"context"

	"github.com/deaddrop/deaddrop/feed"
)

// Importing this package makes "swarm:<Bee API URL>" stores available.
func init() {
	feed.Register("swarm", func(ctx context.Context, url string) (feed.Store, error) {
		return Open(ctx, url, Options{})
	})
}
