package deaddrop

import (
	"context"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/feed/ipfs"
	"github.com/deaddrop/deaddrop/feed/swarm"
)

func init() {
	storeOpeners["swarm"] = func(ctx context.Context, url string) (feed.Store, error) {
		return swarm.Open(ctx, url, swarm.Options{})
	}
	storeOpeners["ipfs"] = func(ctx context.Context, url string) (feed.Store, error) {
		return ipfs.Open(ctx, url, ipfs.Options{})
	}
}
