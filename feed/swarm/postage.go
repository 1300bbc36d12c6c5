package swarm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/deaddrop/deaddrop/feed"
	"math"
	"math/big"
	"net/http"
	"strings"
	"time"
)

type stamp struct {
	BatchID     string `json:"batchID"`
	Usable      bool   `json:"usable"`
	Exists      bool   `json:"exists"`
	Utilization uint32 `json:"utilization"`
	Depth       uint8  `json:"depth"`
	BucketDepth uint8  `json:"bucketDepth"`
	TTL         int64  `json:"batchTTL"`
}

// full reports whether the batch's fullest bucket is full (immutable batches
// refuse, mutable ones would overwrite old stamps).
func (st stamp) full() bool {
	if st.Depth <= st.BucketDepth {
		return false
	}
	return st.Utilization >= 1<<(st.Depth-st.BucketDepth)
}

// batchWait bounds how long Open waits for a bought batch to become usable.
const batchWait = 2 * time.Minute

// settleBatch picks the postage batch: the configured one if it is usable,
// else a usable one the node already has, else a new one.
func (s *Store) settleBatch(ctx context.Context) error {
	if id := s.opts.BatchID; id != "" {
		var st stamp
		if err := s.getJSON(ctx, "/stamps/"+id, &st); err != nil {
			return fmt.Errorf("%w: batch %s: %v", ErrPostage, id, err)
		}
		if err := st.check(); err != nil {
			return err
		}
		return s.useBatch(id)
	}
	var list struct {
		Stamps []stamp `json:"stamps"`
	}
	if err := s.getJSON(ctx, "/stamps", &list); err != nil {
		return fmt.Errorf("%w: listing batches: %v", ErrPostage, err)
	}
	for _, st := range list.Stamps {
		if st.check() == nil {
			return s.useBatch(st.BatchID)
		}
	}
	return s.buyBatch(ctx)
}

func (st stamp) check() error {
	switch {
	case !st.Exists:
		return fmt.Errorf("%w: batch %s does not exist", ErrPostage, st.BatchID)
	case !st.Usable:
		return fmt.Errorf("%w: batch %s is not usable yet", ErrPostage, st.BatchID)
	case st.full():
		return fmt.Errorf("%w: batch %s is exhausted", ErrPostage, st.BatchID)
	case st.TTL <= 0:
		return fmt.Errorf("%w: batch %s has expired", ErrPostage, st.BatchID)
	}
	return nil
}

func (s *Store) useBatch(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.batch, s.tag = id, ""
	return nil
}

func (s *Store) buyBatch(ctx context.Context) error {
	amount, err := s.batchAmount(ctx)
	if err != nil {
		return fmt.Errorf("%w: no usable batch, and its price is unknown: %v", ErrPostage, err)
	}
	var out struct {
		BatchID string `json:"batchID"`
	}
	path := fmt.Sprintf("/stamps/%s/%d", amount, s.opts.Depth)
	if err := s.postJSON(ctx, path, map[string]string{"Immutable": "false"}, &out); err != nil {
		return fmt.Errorf("%w: no usable batch and buying one failed: %v", ErrPostage, err)
	}
	deadline := time.Now().Add(batchWait)
	for {
		var st stamp
		err := s.getJSON(ctx, "/stamps/"+out.BatchID, &st)
		if err == nil && st.check() == nil {
			return s.useBatch(out.BatchID)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: batch %s bought but not usable after %v", ErrPostage, out.BatchID, batchWait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// batchAmount is the amount per chunk to buy: Options.Amount, or the chain's
// current price (PLUR per chunk per block) times the blocks in Options.TTL.
// A fixed amount is refused by a real chain once the price makes it last
// less than 24 hours.
func (s *Store) batchAmount(ctx context.Context) (string, error) {
	if s.opts.Amount != "" {
		return s.opts.Amount, nil
	}
	price, err := s.currentPrice(ctx)
	if err != nil {
		return "", err
	}
	blocks := int64(s.opts.TTL / s.opts.BlockTime)
	if blocks < 1 {
		blocks = 1
	}
	return new(big.Int).Mul(price, big.NewInt(blocks)).String(), nil
}

// priceWait bounds how long Open waits for a node that has not yet read the
// price from the chain (it reports 0 until it has synced the postage events).
const priceWait = 30 * time.Second

// currentPrice reads the price from GET /chainstate, waiting while the node
// reports none yet.
func (s *Store) currentPrice(ctx context.Context) (*big.Int, error) {
	deadline := time.Now().Add(priceWait)
	for {
		p, err := s.chainPrice(ctx)
		if err != nil || p.Sign() > 0 {
			return p, err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the node reports no postage price after %v (not synced with the chain?)", priceWait)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// chainPrice reads GET /chainstate; Bee sends currentPrice as a decimal
// string (a big integer), older versions as a number.
func (s *Store) chainPrice(ctx context.Context) (*big.Int, error) {
	var cs struct {
		CurrentPrice json.RawMessage `json:"currentPrice"`
	}
	if err := s.getJSON(ctx, "/chainstate", &cs); err != nil {
		return nil, err
	}
	raw := strings.Trim(string(cs.CurrentPrice), `"`)
	if raw == "" || raw == "null" {
		return new(big.Int), nil
	}
	p, ok := new(big.Int).SetString(raw, 10)
	if !ok || p.Sign() < 0 {
		return nil, fmt.Errorf("chainstate: current price %q", raw)
	}
	return p, nil
}

// BatchStatus is the state of the postage batch a Store stamps with.
type BatchStatus = feed.BatchStatus

// BatchStatus reports the batch this store stamps with.
func (s *Store) BatchStatus(ctx context.Context) (BatchStatus, error) {
	id := s.Batch()
	var st struct {
		stamp
		Amount string `json:"amount"`
	}
	if err := s.getJSON(ctx, "/stamps/"+id, &st); err != nil {
		return BatchStatus{}, fmt.Errorf("%w: batch %s: %v", ErrPostage, id, err)
	}
	b := BatchStatus{ID: id, TTL: seconds(st.TTL), Utilization: st.Utilization,
		Depth: st.Depth, BucketDepth: st.BucketDepth, Amount: st.Amount, Usable: st.Usable}
	if st.Depth >= st.BucketDepth {
		b.BucketCapacity = 1 << (st.Depth - st.BucketDepth)
	}
	return b, nil
}

// seconds converts Bee's batchTTL; a dev node reports ~2^47 s, more than a
// Duration holds, so it is capped.
func seconds(n int64) time.Duration {
	if n > int64(math.MaxInt64/time.Second) {
		return math.MaxInt64
	}
	return time.Duration(n) * time.Second
}

// TopUp adds amount (PLUR per chunk) to the batch, extending its TTL, with
// PATCH /stamps/topup/{id}/{amount}. The node pays from its wallet; a node
// without a chain (bee dev) refuses.
func (s *Store) TopUp(ctx context.Context, amount string) error {
	if _, ok := new(big.Int).SetString(amount, 10); !ok {
		return fmt.Errorf("swarm: top-up amount %q is not a decimal integer", amount)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPatch, s.endpoint("/stamps/topup/"+s.Batch()+"/"+amount), nil)
	if err != nil {
		return err
	}
	resp, err := s.do(req)
	if err != nil {
		return fmt.Errorf("%w: topping up batch %s: %v", ErrPostage, s.Batch(), err)
	}
	defer drain(resp)
	switch {
	case resp.StatusCode == http.StatusNotImplemented:
		return fmt.Errorf("%w: this node cannot top up batches (a node without a chain, such as bee dev): %s",
			ErrTopUpUnsupported, message(resp))
	case resp.StatusCode/100 != 2:
		return fmt.Errorf("%w: topping up batch %s: Bee answered %d %s", ErrPostage, s.Batch(), resp.StatusCode, message(resp))
	}
	return nil
}

// ErrTopUpUnsupported reports a node that cannot top up a batch.
var ErrTopUpUnsupported = errors.New("swarm: batch top-up not supported by the node")
