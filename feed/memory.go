package feed

import (
	"bytes"
	"context"
	"sync"
)

// Memory is an in-memory Store for unit tests of the layers above feed. It is
// never a stand-in for a backend's own tests.
type Memory struct {
	mu     sync.RWMutex
	chunks map[Slot][]byte
	bulk   map[[32]byte][]byte // see memory_bulk.go
	closed bool
}

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory { return &Memory{chunks: make(map[Slot][]byte)} }

// Put implements Store.
func (m *Memory) Put(ctx context.Context, slot Slot, chunk []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := CheckChunk(chunk); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if old, ok := m.chunks[slot]; ok {
		if !bytes.Equal(old, chunk) {
			return ErrSlotUsed
		}
		return nil
	}
	m.chunks[slot] = bytes.Clone(chunk)
	return nil
}

// Get implements Store.
func (m *Memory) Get(ctx context.Context, slot Slot) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return nil, ErrClosed
	}
	c, ok := m.chunks[slot]
	if !ok {
		return nil, ErrNotFound
	}
	return bytes.Clone(c), nil
}

// Delete removes a slot, simulating a store that lost a chunk (a Bee dev node
// restarted, an IPNS record expired). For tests.
func (m *Memory) Delete(slot Slot) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.chunks, slot)
}

// Reset drops every chunk, like a Bee dev node restarting empty. For tests.
func (m *Memory) Reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.chunks = make(map[Slot][]byte)
}

// Len returns how many chunks the store holds.
func (m *Memory) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.chunks)
}

// Close implements Store.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}
