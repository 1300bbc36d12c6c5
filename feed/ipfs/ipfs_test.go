package ipfs_test

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
	"github.com/deaddrop/deaddrop/feed/ipfs"
	"github.com/deaddrop/deaddrop/internal/devnode"
)

// Every test here runs against a real Kubo node.

func open(t testing.TB, url string) *ipfs.Store {
	t.Helper()
	s, err := ipfs.Open(context.Background(), url, ipfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	node := devnode.StartKubo(t)
	feedtest.Run(t, func(t *testing.T) feed.Store { return open(t, node.URL) })
}

func TestRestartKeepsRecordsAndRepublishWorks(t *testing.T) {
	node := devnode.StartKubo(t)
	s := open(t, node.URL)
	ctx := context.Background()
	slot, chunk := feedtest.RandomSlot(t), feedtest.RandomChunk(t)
	if err := s.Put(ctx, slot, chunk); err != nil {
		t.Fatal(err)
	}
	if err := node.Restart(); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, slot)
	switch {
	case errors.Is(err, feed.ErrNotFound):
		t.Log("records did not survive the restart")
	case err != nil:
		t.Fatalf("after restart: %v", err)
	case !bytes.Equal(got, chunk):
		t.Fatal("wrong chunk after restart")
	}
	if err := s.Put(ctx, slot, chunk); err != nil {
		t.Fatalf("republish after restart: %v", err)
	}
	if got, err := s.Get(ctx, slot); err != nil || !bytes.Equal(got, chunk) {
		t.Fatalf("after republish: %v", err)
	}
}

func TestNodeDown(t *testing.T) {
	node := devnode.StartKubo(t)
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
	if _, err := ipfs.Open(ctx, node.URL, ipfs.Options{}); err == nil || !strings.Contains(err.Error(), "does not answer") {
		t.Fatalf("Open of a dead node: %v", err)
	}
}

// A node (or a proxy) answering errors, garbage, truncated records or a valid
// record of another name: a clear error, never data.
func TestHostileAnswers(t *testing.T) {
	node := devnode.StartKubo(t)
	ctx := context.Background()
	real := open(t, node.URL)
	slot, chunk := feedtest.RandomSlot(t), feedtest.RandomChunk(t)
	other := feedtest.RandomSlot(t)
	if err := real.Put(ctx, slot, chunk); err != nil {
		t.Fatal(err)
	}
	foreign, _ := ipfs.BuildRecord(other, chunk)
	var mode string
	proxy := feedtest.NewProxy(t, node.URL)
	proxy.Rewrite = func(r *http.Response, b []byte) (int, []byte) {
		if !strings.HasSuffix(r.Request.URL.Path, "/name/get") {
			return r.StatusCode, b
		}
		switch mode {
		case "truncated":
			return r.StatusCode, b[:len(b)/2]
		case "flipped":
			b[len(b)/2] ^= 1
		case "garbage":
			return r.StatusCode, []byte("<html>not a record</html>")
		case "foreign":
			return r.StatusCode, foreign
		case "oversize":
			return r.StatusCode, bytes.Repeat([]byte{1}, 11<<10)
		case "error":
			return http.StatusInternalServerError, []byte(`{"Message":"internal failure","Code":0,"Type":"error"}`)
		}
		return r.StatusCode, b
	}
	s := open(t, proxy.URL)
	for _, m := range []string{"truncated", "flipped", "garbage", "foreign", "oversize"} {
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

func TestSlowNode(t *testing.T) {
	node := devnode.StartKubo(t)
	proxy := feedtest.NewProxy(t, node.URL)
	s, err := ipfs.Open(context.Background(), proxy.URL, ipfs.Options{Timeout: 300 * time.Millisecond})
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
	node := devnode.StartKubo(t)
	s, err := ipfs.Open(context.Background(), node.URL, ipfs.Options{FindTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	feedtest.RunBulk(t, func(t *testing.T) feed.BulkStore { return s })
}
