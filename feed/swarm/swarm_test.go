package swarm_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/feed/feedtest"
	"github.com/deaddrop/deaddrop/feed/swarm"
	"github.com/deaddrop/deaddrop/internal/devnode"
)

// Every test here runs against a real `bee dev` node.

func open(t testing.TB, url string) *swarm.Store {
	t.Helper()
	s, err := swarm.Open(context.Background(), url, swarm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	node := devnode.StartBee(t)
	feedtest.Run(t, func(t *testing.T) feed.Store { return open(t, node.URL) })
}

// A restarted dev node is empty, batch and all: Get says not found, and a
// republish (the same bytes) restores the chunk after the store settles a
// new batch by itself.
func TestRestartEmptyThenRepublish(t *testing.T) {
	node := devnode.StartBee(t)
	s := open(t, node.URL)
	ctx := context.Background()
	slot, chunk := feedtest.RandomSlot(t), feedtest.RandomChunk(t)
	if err := s.Put(ctx, slot, chunk); err != nil {
		t.Fatal(err)
	}
	batch := s.Batch()
	if err := node.Restart(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, slot); !errors.Is(err, feed.ErrNotFound) {
		t.Fatalf("after restart: %v, want ErrNotFound", err)
	}
	if err := s.Put(ctx, slot, chunk); err != nil {
		t.Fatalf("republish after restart: %v", err)
	}
	if s.Batch() == batch {
		t.Log("node kept the batch across the restart")
	}
	got, err := s.Get(ctx, slot)
	if err != nil || !bytes.Equal(got, chunk) {
		t.Fatalf("after republish: %v", err)
	}
}

func TestNodeDown(t *testing.T) {
	node := devnode.StartBee(t)
	s := open(t, node.URL)
	node.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Put(ctx, feedtest.RandomSlot(t), feedtest.RandomChunk(t)); !errors.Is(err, feed.ErrUnavailable) {
		t.Fatalf("Put to a dead node: %v, want ErrUnavailable", err)
	}
	if _, err := s.Get(ctx, feedtest.RandomSlot(t)); !errors.Is(err, feed.ErrUnavailable) {
		t.Fatalf("Get from a dead node: %v, want ErrUnavailable", err)
	}
	if _, err := swarm.Open(ctx, node.URL, swarm.Options{}); err == nil || !strings.Contains(err.Error(), "does not answer") {
		t.Fatalf("Open of a dead node: %v", err)
	}
}

func TestBadBatch(t *testing.T) {
	node := devnode.StartBee(t)
	_, err := swarm.Open(context.Background(), node.URL, swarm.Options{BatchID: strings.Repeat("ab", 32)})
	if !errors.Is(err, swarm.ErrPostage) {
		t.Fatalf("unknown batch: %v, want ErrPostage", err)
	}
}

// A node (or anything between us and it) answering with errors, garbage,
// truncated or foreign chunks: a clear error, never data.
func TestHostileAnswers(t *testing.T) {
	node := devnode.StartBee(t)
	ctx := context.Background()
	real := open(t, node.URL)
	slot, chunk := feedtest.RandomSlot(t), feedtest.RandomChunk(t)
	if err := real.Put(ctx, slot, chunk); err != nil {
		t.Fatal(err)
	}
	other := feedtest.RandomSlot(t)
	if err := real.Put(ctx, other, feedtest.RandomChunk(t)); err != nil {
		t.Fatal(err)
	}
	_, otherAddr := swarm.BuildSOC(other, chunk)
	var mode string
	proxy := feedtest.NewProxy(t, node.URL)
	proxy.Rewrite = func(r *http.Response, b []byte) (int, []byte) {
		if r.Request.Method != http.MethodGet || !strings.HasPrefix(r.Request.URL.Path, "/chunks/") {
			return r.StatusCode, b
		}
		switch mode {
		case "truncated":
			return r.StatusCode, b[:len(b)/2]
		case "flipped":
			b[len(b)-1] ^= 1
		case "garbage":
			return r.StatusCode, []byte("<html>not a chunk</html>")
		case "error":
			return http.StatusInternalServerError, []byte(`{"code":500,"message":"failure"}`)
		case "foreign":
			if f, err := real.RawGetChunk(context.Background(), otherAddr); err == nil {
				return r.StatusCode, f
			}
		}
		return r.StatusCode, b
	}
	s := open(t, proxy.URL)
	for _, m := range []string{"truncated", "flipped", "garbage", "foreign"} {
		mode = m
		if got, err := s.Get(ctx, slot); !errors.Is(err, feed.ErrCorrupt) {
			t.Errorf("%s answer: %v (data returned: %v)", m, err, got != nil)
		}
	}
	mode = "error"
	if _, err := s.Get(ctx, slot); !errors.Is(err, feed.ErrUnavailable) {
		t.Errorf("500 answer: %v", err)
	}
	mode = ""
	if got, err := s.Get(ctx, slot); err != nil || !bytes.Equal(got, chunk) {
		t.Fatalf("honest answer through the proxy: %v", err)
	}
}

// A node too slow to answer within the client's timeout: ErrUnavailable,
// promptly, never a hang.
func TestSlowNode(t *testing.T) {
	node := devnode.StartBee(t)
	proxy := feedtest.NewProxy(t, node.URL)
	s, err := swarm.Open(context.Background(), proxy.URL, swarm.Options{Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	proxy.Delay = 2 * time.Second
	if err := s.Put(context.Background(), feedtest.RandomSlot(t), feedtest.RandomChunk(t)); !errors.Is(err, feed.ErrUnavailable) {
		t.Fatalf("Put to a slow node: %v, want ErrUnavailable", err)
	}
	if _, err := s.Get(context.Background(), feedtest.RandomSlot(t)); !errors.Is(err, feed.ErrUnavailable) {
		t.Fatalf("Get from a slow node: %v, want ErrUnavailable", err)
	}
}

func TestBulkConformance(t *testing.T) {
	node := devnode.StartBee(t)
	s := open(t, node.URL)
	t.Cleanup(func() { s.Close() })
	feedtest.RunBulk(t, func(t *testing.T) feed.BulkStore { return s })
}
