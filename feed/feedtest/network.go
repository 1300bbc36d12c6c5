package feedtest

import (
	"context"
	"errors"
	gosync "sync"
	"time"

	"github.com/deaddrop/deaddrop/feed"
)

// Network is a network profile in front of any feed.Store: every request
// waits RTT before the inner store answers it, and a Get that finds nothing
// waits Miss more, as a Swarm or IPFS node searching the network before it
// gives up does. It counts requests and waves, so that tests can assert on
// how a client uses the network (counts, never wall time).
//
// A wave starts when a request begins while none is in flight: requests a
// client issues together form one wave, a request that waits for another's
// answer starts a new one. On a real network each wave costs at least one
// round trip, and a wave with a miss costs a miss timeout.
type Network struct {
	Inner feed.Store
	RTT   time.Duration // added to every request
	Miss  time.Duration // added to a Get that answers ErrNotFound

	mu       gosync.Mutex
	inFlight int
	stats    NetworkStats
}

// NetworkStats are the counts of a Network since it was made or Reset.
type NetworkStats struct {
	Gets, Puts, Misses int
	Waves              int
	MaxInFlight        int
}

// NewNetwork wraps inner in a profile with the given delays.
func NewNetwork(inner feed.Store, rtt, miss time.Duration) *Network {
	return &Network{Inner: inner, RTT: rtt, Miss: miss}
}

// Stats returns the counts so far.
func (n *Network) Stats() NetworkStats {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stats
}

// Reset zeroes the counts (requests in flight stay in flight).
func (n *Network) Reset() {
	n.mu.Lock()
	n.stats = NetworkStats{}
	n.mu.Unlock()
}

func (n *Network) begin(get bool) {
	n.mu.Lock()
	if n.inFlight == 0 {
		n.stats.Waves++
	}
	n.inFlight++
	n.stats.MaxInFlight = max(n.stats.MaxInFlight, n.inFlight)
	if get {
		n.stats.Gets++
	} else {
		n.stats.Puts++
	}
	n.mu.Unlock()
}

func (n *Network) end(miss bool) {
	n.mu.Lock()
	n.inFlight--
	if miss {
		n.stats.Misses++
	}
	n.mu.Unlock()
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Get answers after RTT, and after RTT + Miss when nothing is stored.
func (n *Network) Get(ctx context.Context, slot feed.Slot) (chunk []byte, err error) {
	n.begin(true)
	miss := false
	defer func() { n.end(miss) }()
	if err := sleep(ctx, n.RTT); err != nil {
		return nil, err
	}
	chunk, err = n.Inner.Get(ctx, slot)
	if errors.Is(err, feed.ErrNotFound) {
		miss = true
		if err := sleep(ctx, n.Miss); err != nil {
			return nil, err
		}
	}
	return chunk, err
}

// Put stores after RTT.
func (n *Network) Put(ctx context.Context, slot feed.Slot, chunk []byte) error {
	n.begin(false)
	defer n.end(false)
	if err := sleep(ctx, n.RTT); err != nil {
		return err
	}
	return n.Inner.Put(ctx, slot, chunk)
}

// Close closes the inner store.
func (n *Network) Close() error { return n.Inner.Close() }
