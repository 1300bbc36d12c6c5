// Package transport carries feed operations from a client to a store. Every store
// access of deaddrop goes through a Transport: Direct talks to the configured
// feed.Store itself (no network privacy); the mix transport routes each operation
// through a Loopix-style mixnet so the store never learns who read or wrote a slot.
package transport

import (
	"context"

	"github.com/deaddrop/deaddrop/feed"
)

// Transport performs feed operations on behalf of a client. Implementations must
// be safe for concurrent use: catch-up issues a window of Gets at once.
type Transport interface {
	Put(ctx context.Context, slot feed.Slot, chunk []byte) error
	Get(ctx context.Context, slot feed.Slot) ([]byte, error)
	Close() error
}

// Direct sends every operation straight to a feed.Store.
type Direct struct {
	Store feed.Store
}

// NewDirect returns a Transport that uses store directly.
func NewDirect(store feed.Store) *Direct { return &Direct{Store: store} }

// Put stores chunk at slot.
func (d *Direct) Put(ctx context.Context, slot feed.Slot, chunk []byte) error {
	return d.Store.Put(ctx, slot, chunk)
}

// Get fetches the chunk at slot.
func (d *Direct) Get(ctx context.Context, slot feed.Slot) ([]byte, error) {
	return d.Store.Get(ctx, slot)
}

// Close closes the underlying store.
func (d *Direct) Close() error { return d.Store.Close() }
