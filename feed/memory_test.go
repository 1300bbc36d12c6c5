package feed_test

import (
	"testing"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/feed/feedtest"
)

func TestMemoryConformance(t *testing.T) {
	feedtest.Run(t, func(t *testing.T) feed.Store { return feed.NewMemory() })
}

func TestMemoryBulkConformance(t *testing.T) {
	feedtest.RunBulk(t, func(t *testing.T) feed.BulkStore { return feed.NewMemory() })
}
