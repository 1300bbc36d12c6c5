package feed

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
)

// PutBulk implements BulkStore for tests: the reference is the SHA-256 of
// the object. Unlike the real stores it holds objects in memory.
func (m *Memory) PutBulk(ctx context.Context, r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ref := sha256.Sum256(data)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	if m.bulk == nil {
		m.bulk = make(map[[32]byte][]byte)
	}
	m.bulk[ref] = data
	return ref[:], nil
}

// GetBulk implements BulkStore and verifies the object's digest as it reads.
func (m *Memory) GetBulk(ctx context.Context, ref []byte) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(ref) != sha256.Size {
		return nil, fmt.Errorf("%w: want %d bytes, got %d", ErrBadRef, sha256.Size, len(ref))
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return nil, ErrClosed
	}
	data, ok := m.bulk[[32]byte(ref)]
	if !ok {
		return nil, fmt.Errorf("memory store: bulk %x: %w", ref[:8], ErrNotFound)
	}
	return newVerifyingReader(io.NopCloser(bytes.NewReader(data)), [32]byte(ref)), nil
}

// SetBulk replaces the bytes stored under ref, simulating a store that
// serves damaged or swapped content. For tests.
func (m *Memory) SetBulk(ref, data []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.bulk == nil {
		m.bulk = make(map[[32]byte][]byte)
	}
	m.bulk[[32]byte(ref)] = data
}

// DeleteBulk removes an object, simulating a store that lost it. For tests.
func (m *Memory) DeleteBulk(ref []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.bulk, [32]byte(ref))
}
