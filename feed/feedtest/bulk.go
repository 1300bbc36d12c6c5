package feedtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/deaddrop/deaddrop/feed"
)

// RunBulk runs the conformance suite of feed.BulkStore. newStore returns a
// store (empty or not); the suite closes none of them, the caller's cleanup
// does.
func RunBulk(t *testing.T, newStore func(t *testing.T) feed.BulkStore) {
	cases := []struct {
		name string
		fn   func(t *testing.T, s feed.BulkStore)
	}{
		{"RoundTrip", testBulkRoundTrip},
		{"SameBytesSameRef", testBulkSameRef},
		{"Missing", testBulkMissing},
		{"BadRef", testBulkBadRef},
		{"Concurrent", testBulkConcurrent},
		{"CancelledContext", testBulkCancelled},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, newStore(t)) })
	}
}

// RandomBytes returns n random bytes.
func RandomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// ReadBulk fetches a whole object.
func ReadBulk(ctx context.Context, s feed.BulkStore, ref []byte) ([]byte, error) {
	rc, err := s.GetBulk(ctx, ref)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// onlyReader hides any WriterTo/Len a bytes.Reader has, so stores are tested
// with a plain stream of unknown length.
type onlyReader struct{ io.Reader }

func testBulkRoundTrip(t *testing.T, s feed.BulkStore) {
	for _, n := range []int{1, 4095, 4096, 4097, 1<<20 + 17} {
		data := RandomBytes(t, n)
		ref, err := s.PutBulk(ctx(t), onlyReader{bytes.NewReader(data)})
		if err != nil {
			t.Fatalf("PutBulk of %d bytes: %v", n, err)
		}
		if err := feed.CheckRef(ref); err != nil {
			t.Fatalf("PutBulk of %d bytes: %v", n, err)
		}
		got, err := ReadBulk(ctx(t), s, ref)
		if err != nil {
			t.Fatalf("GetBulk of %d bytes: %v", n, err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("GetBulk of %d bytes returned %d different bytes", n, len(got))
		}
	}
}

func testBulkSameRef(t *testing.T, s feed.BulkStore) {
	data := RandomBytes(t, 10000)
	a, err := s.PutBulk(ctx(t), bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.PutBulk(ctx(t), bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatalf("same bytes, different references: %x, %x", a, b)
	}
}

// A reference to nothing: a real reference with its last byte changed is
// well formed for every store (the digest is at the end of a Swarm
// reference, a CID and a SHA-256 alike) and points to nothing.
func testBulkMissing(t *testing.T, s feed.BulkStore) {
	ref, err := s.PutBulk(ctx(t), bytes.NewReader(RandomBytes(t, 100)))
	if err != nil {
		t.Fatal(err)
	}
	ref[len(ref)-1] ^= 1
	_, err = ReadBulk(ctx(t), s, ref)
	if !errors.Is(err, feed.ErrNotFound) {
		t.Fatalf("GetBulk of a reference to nothing: got %v, want ErrNotFound", err)
	}
}

func testBulkBadRef(t *testing.T, s feed.BulkStore) {
	for _, ref := range [][]byte{nil, {1, 2, 3}, make([]byte, feed.MaxRefSize+1)} {
		if _, err := ReadBulk(ctx(t), s, ref); err == nil {
			t.Errorf("GetBulk(%x): got %v, want an error", ref, err)
		}
	}
}

func testBulkConcurrent(t *testing.T, s feed.BulkStore) {
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := RandomBytes(t, 200_000+i)
			ref, err := s.PutBulk(ctx(t), bytes.NewReader(data))
			if err != nil {
				errs <- fmt.Errorf("put %d: %w", i, err)
				return
			}
			got, err := ReadBulk(ctx(t), s, ref)
			if err != nil || sha256.Sum256(got) != sha256.Sum256(data) {
				errs <- fmt.Errorf("get %d: %v (%d bytes)", i, err, len(got))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func testBulkCancelled(t *testing.T, s feed.BulkStore) {
	ref, err := s.PutBulk(ctx(t), bytes.NewReader(RandomBytes(t, 100)))
	if err != nil {
		t.Fatal(err)
	}
	c, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.PutBulk(c, bytes.NewReader(RandomBytes(t, 100))); err == nil {
		t.Error("PutBulk with a cancelled context succeeded")
	}
	if _, err := ReadBulk(c, s, ref); err == nil {
		t.Error("GetBulk with a cancelled context succeeded")
	}
}
