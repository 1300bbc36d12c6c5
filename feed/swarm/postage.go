package swarm

import (
	"context"
	"fmt"
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
	var out struct {
		BatchID string `json:"batchID"`
	}
	path := fmt.Sprintf("/stamps/%s/%d", s.opts.Amount, s.opts.Depth)
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
