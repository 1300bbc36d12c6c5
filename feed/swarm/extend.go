package swarm

import (
	"context"
	"fmt"
	"math/big"
	"time"
)

// PostageTTL is how long the batch this store stamps with still lives at the
// current price: every chunk it stamped disappears when it runs out.
func (s *Store) PostageTTL(ctx context.Context) (time.Duration, error) {
	b, err := s.BatchStatus(ctx)
	return b.TTL, err
}

// ExtendPostage tops the batch up by enough to live d longer at the chain's
// current price (PLUR per chunk per block × the blocks in d).
func (s *Store) ExtendPostage(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("swarm: extend the postage batch by %v: want a positive duration", d)
	}
	price, err := s.currentPrice(ctx)
	if err != nil {
		return fmt.Errorf("%w: the chain's price is unknown: %v", ErrPostage, err)
	}
	if price.Sign() == 0 {
		return fmt.Errorf("%w: the node reports no price (a node without a chain cannot top up)", ErrPostage)
	}
	blocks := max(int64(d/s.opts.BlockTime), 1)
	return s.TopUp(ctx, new(big.Int).Mul(price, big.NewInt(blocks)).String())
}
