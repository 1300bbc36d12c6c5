package feed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Lazy returns a Store that opens the real one on first use and again after
// a failed attempt. A client can thus start, and queue messages, while its
// store is unreachable: operations fail with ErrUnavailable until it answers.
func Lazy(open func(ctx context.Context) (Store, error)) Store {
	return &lazy{open: open}
}

type lazy struct {
	open func(ctx context.Context) (Store, error)

	mu     sync.Mutex
	store  Store
	closed bool
}

func (l *lazy) get(ctx context.Context) (Store, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, ErrClosed
	}
	if l.store != nil {
		return l.store, nil
	}
	s, err := l.open(ctx)
	if err != nil {
		if !errors.Is(err, ErrUnavailable) {
			return nil, errors.Join(ErrUnavailable, err)
		}
		return nil, err
	}
	l.store = s
	return s, nil
}

func (l *lazy) Put(ctx context.Context, slot Slot, chunk []byte) error {
	if err := CheckChunk(chunk); err != nil {
		return err
	}
	s, err := l.get(ctx)
	if err != nil {
		return err
	}
	return s.Put(ctx, slot, chunk)
}

func (l *lazy) Get(ctx context.Context, slot Slot) ([]byte, error) {
	s, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	return s.Get(ctx, slot)
}

func (l *lazy) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.store != nil {
		return l.store.Close()
	}
	return nil
}

// PutBulk implements BulkStore once the real store, opened, does.
func (l *lazy) PutBulk(ctx context.Context, r io.Reader) ([]byte, error) {
	b, err := l.bulk(ctx)
	if err != nil {
		return nil, err
	}
	return b.PutBulk(ctx, r)
}

// GetBulk implements BulkStore once the real store, opened, does.
func (l *lazy) GetBulk(ctx context.Context, ref []byte) (io.ReadCloser, error) {
	b, err := l.bulk(ctx)
	if err != nil {
		return nil, err
	}
	return b.GetBulk(ctx, ref)
}

func (l *lazy) bulk(ctx context.Context) (BulkStore, error) {
	s, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	b, ok := s.(BulkStore)
	if !ok {
		return nil, fmt.Errorf("feed: store %T holds no bulk content", s)
	}
	return b, nil
}
