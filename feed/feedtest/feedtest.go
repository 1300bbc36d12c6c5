// Package feedtest is the conformance suite every feed.Store backend runs: the
// same cases against the in-memory store, the embedded store, a real Bee node and
// a real Kubo node.
package feedtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/deaddrop/deaddrop/feed"
)

// Run runs the conformance suite. newStore returns a fresh, empty-or-not store
// (slots are random, so leftovers from other cases do not matter); the suite
// closes every store it opens.
func Run(t *testing.T, newStore func(t *testing.T) feed.Store) {
	cases := []struct {
		name string
		fn   func(t *testing.T, s feed.Store)
	}{
		{"PutGet", testPutGet},
		{"GetMissing", testGetMissing},
		{"RepublishSameBytes", testRepublish},
		{"WrongSize", testWrongSize},
		{"DifferentBytesNeverMix", testDifferentBytes},
		{"Concurrent", testConcurrent},
		{"ReturnedChunkIsACopy", testCopy},
		{"CancelledContext", testCancelled},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newStore(t)
			defer s.Close()
			c.fn(t, s)
		})
	}
}

// RandomSlot returns a fresh random slot.
func RandomSlot(t testing.TB) feed.Slot {
	var s feed.Slot
	if _, err := rand.Read(s[:]); err != nil {
		t.Fatal(err)
	}
	return s
}

// RandomChunk returns a random chunk of feed.ChunkSize bytes.
func RandomChunk(t testing.TB) []byte {
	c := make([]byte, feed.ChunkSize)
	if _, err := rand.Read(c); err != nil {
		t.Fatal(err)
	}
	return c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func testPutGet(t *testing.T, s feed.Store) {
	slot, chunk := RandomSlot(t), RandomChunk(t)
	if err := s.Put(ctx(t), slot, chunk); err != nil {
		t.Fatalf("Put: %v", err)
	}
	got, err := s.Get(ctx(t), slot)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if !bytes.Equal(got, chunk) {
		t.Fatalf("Get returned different bytes")
	}
}

func testGetMissing(t *testing.T, s feed.Store) {
	_, err := s.Get(ctx(t), RandomSlot(t))
	if !errors.Is(err, feed.ErrNotFound) {
		t.Fatalf("Get of an unwritten slot: got %v, want ErrNotFound", err)
	}
}

func testRepublish(t *testing.T, s feed.Store) {
	slot, chunk := RandomSlot(t), RandomChunk(t)
	for i := 0; i < 3; i++ {
		if err := s.Put(ctx(t), slot, chunk); err != nil {
			t.Fatalf("Put #%d of the same bytes: %v", i+1, err)
		}
	}
	got, err := s.Get(ctx(t), slot)
	if err != nil || !bytes.Equal(got, chunk) {
		t.Fatalf("Get after republish: %v", err)
	}
}

func testWrongSize(t *testing.T, s feed.Store) {
	for _, n := range []int{0, 1, feed.ChunkSize - 1, feed.ChunkSize + 1} {
		err := s.Put(ctx(t), RandomSlot(t), make([]byte, n))
		if !errors.Is(err, feed.ErrChunkSize) {
			t.Errorf("Put of %d bytes: got %v, want ErrChunkSize", n, err)
		}
	}
}

// A slot is written once; a backend may refuse different bytes or keep either
// version, but a reader must never see a mixture.
func testDifferentBytes(t *testing.T, s feed.Store) {
	slot, a, b := RandomSlot(t), RandomChunk(t), RandomChunk(t)
	if err := s.Put(ctx(t), slot, a); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx(t), slot, b); err != nil && !errors.Is(err, feed.ErrSlotUsed) {
		t.Fatalf("second Put with different bytes: %v", err)
	}
	got, err := s.Get(ctx(t), slot)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, a) && !bytes.Equal(got, b) {
		t.Fatalf("Get returned neither version")
	}
}

func testConcurrent(t *testing.T, s feed.Store) {
	const n = 32
	slots := make([]feed.Slot, n)
	chunks := make([][]byte, n)
	for i := range slots {
		slots[i], chunks[i] = RandomSlot(t), RandomChunk(t)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range slots {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Put(ctx(t), slots[i], chunks[i]); err != nil {
				errs <- fmt.Errorf("put %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	for i := range slots {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := s.Get(ctx(t), slots[i])
			if err != nil {
				errs <- fmt.Errorf("get %d: %w", i, err)
			} else if !bytes.Equal(got, chunks[i]) {
				errs <- fmt.Errorf("get %d: wrong bytes", i)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func testCopy(t *testing.T, s feed.Store) {
	slot, chunk := RandomSlot(t), RandomChunk(t)
	if err := s.Put(ctx(t), slot, chunk); err != nil {
		t.Fatal(err)
	}
	orig := bytes.Clone(chunk)
	chunk[0] ^= 0xff // the store must not alias the caller's buffer
	got, err := s.Get(ctx(t), slot)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, orig) {
		t.Fatal("store kept a reference to the caller's buffer")
	}
	got[1] ^= 0xff
	again, err := s.Get(ctx(t), slot)
	if err != nil || !bytes.Equal(again, orig) {
		t.Fatal("Get returned a buffer aliased with the store")
	}
}

func testCancelled(t *testing.T, s feed.Store) {
	c, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Put(c, RandomSlot(t), RandomChunk(t)); err == nil {
		t.Error("Put with a cancelled context succeeded")
	}
	if _, err := s.Get(c, RandomSlot(t)); err == nil {
		t.Error("Get with a cancelled context succeeded")
	}
}
