package keep_test

import (
	"context"
	"encoding/json"
	"flag"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/feed/feedtest"
	"github.com/deaddrop/deaddrop/feed/ipfs"
	"github.com/deaddrop/deaddrop/internal/fuzzseed"
	"github.com/deaddrop/deaddrop/keep"
)

var update = flag.Bool("update", false, "rewrite the fuzz seed corpus in testdata/fuzz")

// verifier checks records as the IPFS store does, with no node: the push
// decoder and the verification are what is fuzzed, not Kubo.
type verifier struct{}

func (verifier) Sign(feed.Slot, []byte) (feed.Signed, error)     { panic("not used") }
func (verifier) VerifySigned(r feed.Signed) error                { return ipfs.VerifyRecord(r, time.Now()) }
func (verifier) PutSigned(context.Context, feed.Signed) error    { panic("not used") }
func (verifier) Lifetime(context.Context) (time.Duration, error) { return ipfs.RecordExpiry, nil }

// FuzzPushRequest: whatever a device (or anyone) sends, the keeper answers
// with a status, never panics, and holds only records that verify.
func FuzzPushRequest(f *testing.F) {
	slot, chunk := feedtest.RandomSlot(f), feedtest.RandomChunk(f)
	rec, err := ipfs.BuildRecord(slot, chunk)
	if err != nil {
		f.Fatal(err)
	}
	good, _ := json.Marshal(map[string]any{"records": []map[string]any{{"name": ipfs.Name(slot).String(), "data": rec}}})
	fuzzseed.Add(f, "FuzzPushRequest", *update, good, []byte(`{"records":[{"name":"x","data":"AAAA"}]}`),
		[]byte(`{"records":null}`), []byte(`[]`), good[:len(good)/2])
	k, err := keep.Open(context.Background(), filepath.Join(f.TempDir(), "keeper.db"), verifier{}, keep.Options{Interval: time.Hour})
	if err != nil {
		f.Fatal(err)
	}
	defer k.Close()
	h := k.Handler("")
	f.Fuzz(func(t *testing.T, body []byte) {
		before := k.Len()
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1/records", strings.NewReader(string(body))))
		if w.Code != http.StatusOK && w.Code/100 != 4 {
			t.Fatalf("status %d", w.Code)
		}
		if w.Code != http.StatusOK && k.Len() != before {
			t.Fatal("a refused request changed what the keeper holds")
		}
	})
}
