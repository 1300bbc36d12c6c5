package ipfs

import (
	"context"

	"github.com/deaddrop/deaddrop/feed"
)

// Importing this package makes "ipfs:<Kubo RPC URL>" stores available.
func init() {
	feed.Register("ipfs", func(ctx context.Context, url string) (feed.Store, error) {
		return Open(ctx, url, Options{})
	})
}
