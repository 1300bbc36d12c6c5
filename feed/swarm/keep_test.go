package swarm_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/feed/feedtest"
	"github.com/deaddrop/deaddrop/feed/swarm"
	"github.com/deaddrop/deaddrop/internal/devnode"
)

// A networked Bee answers a chunk nobody has with 500 "read chunk failed"
// (bee dev: 404). That exact answer is a miss; any other 500 is an outage.
func TestNetworkedMissAnswer(t *testing.T) {
	node := devnode.StartBee(t)
	proxy := feedtest.NewProxy(t, node.URL)
	var body string
	proxy.Rewrite = func(r *http.Response, b []byte) (int, []byte) {
		if r.Request.Method == http.MethodGet && strings.HasPrefix(r.Request.URL.Path, "/chunks/") {
			return http.StatusInternalServerError, []byte(body)
		}
		return r.StatusCode, b
	}
	s := open(t, proxy.URL)
	for answer, want := range map[string]error{
		`{"code":500,"message":"read chunk failed"}`:         feed.ErrNotFound,
		`{"code":500,"message":"read chunk failed: broken"}`: feed.ErrUnavailable,
		`{"code":500,"message":"Internal Server Error"}`:     feed.ErrUnavailable,
		`read chunk failed`: feed.ErrNotFound,
	} {
		body = answer
		if _, err := s.Get(context.Background(), feedtest.RandomSlot(t)); !errors.Is(err, want) {
			t.Errorf("500 %s: %v, want %v", answer, err, want)
		}
	}
}

// On a dev node: the batch is reported, and a top-up is refused clearly.
func TestBatchStatusDev(t *testing.T) {
	node := devnode.StartBee(t)
	s := open(t, node.URL)
	ctx := context.Background()
	b, err := s.BatchStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if b.ID != s.Batch() || !b.Usable || b.TTL <= 0 || b.BucketCapacity == 0 || b.Full() || b.Depth != 20 {
		t.Fatalf("batch status %+v", b)
	}
	if err := s.Put(ctx, feedtest.RandomSlot(t), feedtest.RandomChunk(t)); err != nil {
		t.Fatal(err)
	}
	if err := s.TopUp(ctx, "1000"); !errors.Is(err, swarm.ErrTopUpUnsupported) {
		t.Fatalf("top-up on a dev node: %v", err)
	}
	if err := s.TopUp(ctx, "1e9"); err == nil {
		t.Fatal("top-up with a non-integer amount accepted")
	}
}

// The signed form is the chunk Put uploads; a keeper verifies it with no key
// and puts it again with its own batch; anything tampered is refused.
func TestKeepableDev(t *testing.T) {
	node := devnode.StartBee(t)
	writer, keeper := open(t, node.URL), open(t, node.URL)
	ctx := context.Background()
	slot, chunk := feedtest.RandomSlot(t), feedtest.RandomChunk(t)
	r, err := writer.Sign(slot, chunk)
	if err != nil {
		t.Fatal(err)
	}
	if soc, addr := swarm.BuildSOC(slot, chunk); !bytes.Equal(soc, r.Data) || len(r.Name) != 64 || r.Name[:8] != hexPrefix(addr[:4]) {
		t.Fatal("Sign differs from the chunk Put uploads")
	}
	if err := keeper.VerifySigned(r); err != nil {
		t.Fatal(err)
	}
	for name, bad := range tampered(t, r) {
		if err := keeper.VerifySigned(bad); err == nil {
			t.Errorf("%s: verified", name)
		}
		if err := keeper.PutSigned(ctx, bad); err == nil {
			t.Errorf("%s: put", name)
		}
	}
	if err := keeper.PutSigned(ctx, r); err != nil {
		t.Fatal(err)
	}
	got, err := writer.Get(ctx, slot)
	if err != nil || !bytes.Equal(got, chunk) {
		t.Fatalf("get after PutSigned: %v", err)
	}
	if life, err := keeper.Lifetime(ctx); err != nil || life != 0 {
		t.Fatalf("lifetime %v, %v: a re-put does not extend a chunk's life on Swarm", life, err)
	}
}

func hexPrefix(b []byte) string {
	const digits = "0123456789abcdef"
	var s []byte
	for _, c := range b {
		s = append(s, digits[c>>4], digits[c&15])
	}
	return string(s)
}

func tampered(t *testing.T, r feed.Signed) map[string]feed.Signed {
	other, err := (&swarm.Store{}).Sign(feedtest.RandomSlot(t), feedtest.RandomChunk(t))
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) feed.Signed {
		d := bytes.Clone(r.Data)
		d[i] ^= 1
		return feed.Signed{Name: r.Name, Data: d}
	}
	return map[string]feed.Signed{
		"payload flipped":   flip(len(r.Data) - 1),
		"id flipped":        flip(0),
		"signature flipped": flip(40),
		"span changed":      flip(32 + 65),
		"truncated":         {Name: r.Name, Data: r.Data[:len(r.Data)-1]},
		"other's name":      {Name: other.Name, Data: r.Data},
		"name not hex":      {Name: "zz" + r.Name[2:], Data: r.Data},
		"empty":             {Name: r.Name},
	}
}
