package keep_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/feed/feedtest"
	"github.com/deaddrop/deaddrop/feed/ipfs"
	"github.com/deaddrop/deaddrop/internal/devnode"
	"github.com/deaddrop/deaddrop/keep"
	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/boxo/path"
	"github.com/ipfs/go-cid"
	ic "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multihash"
)

// The keeper's tests run against a real Kubo node: what it stores, refuses
// and puts again is what a node accepts.

func openKubo(t *testing.T) (*devnode.Node, *ipfs.Store) {
	t.Helper()
	node := devnode.StartKubo(t)
	s, err := ipfs.Open(context.Background(), node.URL, ipfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return node, s
}

func openKeeper(t *testing.T, store feed.Keepable, opts keep.Options) *keep.Keeper {
	t.Helper()
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	k, err := keep.Open(context.Background(), filepath.Join(t.TempDir(), "keeper.db"), store, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	return k
}

func signed(t *testing.T, s *ipfs.Store) (feed.Slot, []byte, feed.Signed) {
	t.Helper()
	slot, chunk := feedtest.RandomSlot(t), feedtest.RandomChunk(t)
	r, err := s.Sign(slot, chunk)
	if err != nil {
		t.Fatal(err)
	}
	return slot, chunk, r
}

func TestKeeperPutsRecordsAgainAfterTheNodeForgot(t *testing.T) {
	node, s := openKubo(t)
	ctx := context.Background()
	k := openKeeper(t, s, keep.Options{Interval: time.Hour})
	var slots []feed.Slot
	var chunks [][]byte
	var recs []feed.Signed
	for range 5 {
		slot, chunk, r := signed(t, s)
		slots, chunks, recs = append(slots, slot), append(chunks, chunk), append(recs, r)
	}
	if n, err := k.Add(recs); n != 5 || err != nil {
		t.Fatalf("Add: %d, %v", n, err)
	}
	if n, err := k.Add(recs); n != 0 || err != nil {
		t.Fatalf("Add again: %d added, %v (want 0: already held)", n, err)
	}
	// New records are due at once; then not again before the interval.
	if n, err := k.Refresh(ctx, false); n != 5 || err != nil {
		t.Fatalf("first Refresh: %d, %v", n, err)
	}
	if n, err := k.Refresh(ctx, false); n != 0 || err != nil {
		t.Fatalf("second Refresh: %d, %v (nothing is due)", n, err)
	}
	// The node forgets everything (as the DHT does 48 h after a put).
	if err := wipe(node); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, slots[0]); !errors.Is(err, feed.ErrNotFound) {
		t.Fatalf("after the wipe: %v, want not found", err)
	}
	if n, err := k.Refresh(ctx, true); n != 5 || err != nil {
		t.Fatalf("Refresh after the wipe: %d, %v", n, err)
	}
	for i, slot := range slots {
		got, err := s.Get(ctx, slot)
		if err != nil || !bytes.Equal(got, chunks[i]) {
			t.Fatalf("slot %d after the keeper's put: %v", i, err)
		}
	}
}

// wipe restarts a Kubo node with an empty datastore.
func wipe(node *devnode.Node) error {
	node.Stop()
	for _, d := range []string{"datastore", "blocks"} {
		if err := removeAll(filepath.Join(node.Dir(), "repo", d)); err != nil {
			return err
		}
	}
	return node.Restart()
}

func TestKeeperRefusesWhatDoesNotVerify(t *testing.T) {
	_, s := openKubo(t)
	k := openKeeper(t, s, keep.Options{Interval: time.Hour})
	_, _, good := signed(t, s)
	_, _, other := signed(t, s)

	tampered := good
	tampered.Data = bytes.Clone(good.Data)
	tampered.Data[len(tampered.Data)/2] ^= 1
	cases := map[string]feed.Signed{
		"another name's record":   {Name: other.Name, Data: good.Data},
		"a tampered record":       tampered,
		"garbage":                 {Name: good.Name, Data: []byte("not a record")},
		"not an IPNS name":        {Name: "bafy-not-a-name", Data: good.Data},
		"an expired record":       expiredRecord(t),
		"a record of a non-chunk": recordOf(t, []byte("short"), time.Now().Add(time.Hour)),
	}
	for what, r := range cases {
		n, err := k.Add([]feed.Signed{r})
		if n != 0 || !errors.Is(err, keep.ErrInvalidRecord) {
			t.Errorf("%s: added %d, %v; want refused with ErrInvalidRecord", what, n, err)
		}
	}
	if k.Len() != 0 {
		t.Fatalf("keeper holds %d records after refusing all", k.Len())
	}
	// A mix: the valid one is kept, the others named.
	n, err := k.Add([]feed.Signed{tampered, good})
	if n != 1 || err == nil || !strings.Contains(err.Error(), good.Name) {
		t.Fatalf("mixed Add: %d, %v", n, err)
	}
}

// expiredRecord is a validly signed record whose validity has ended.
func expiredRecord(t *testing.T) feed.Signed {
	chunk := feedtest.RandomChunk(t)
	return recordOf(t, chunk, time.Now().Add(-time.Minute))
}

// recordOf builds a record with a fresh key for value bytes inlined in an
// identity CID.
func recordOf(t *testing.T, value []byte, eol time.Time) feed.Signed {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	sk, err := ic.UnmarshalEd25519PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := peer.IDFromPrivateKey(sk)
	name := ipns.NameFromPeer(pid)
	p, err := path.NewPath("/ipfs/" + identityCID(t, value))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := ipns.NewRecord(sk, p, 0, eol, time.Hour, ipns.WithV1Compatibility(false))
	if err != nil {
		t.Fatal(err)
	}
	data, err := ipns.MarshalRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	return feed.Signed{Name: name.String(), Data: data}
}

func TestKeeperHTTP(t *testing.T) {
	_, s := openKubo(t)
	k := openKeeper(t, s, keep.Options{Interval: time.Hour})
	srv := httptest.NewServer(k.Handler("sesame"))
	defer srv.Close()
	ctx := context.Background()
	_, _, a := signed(t, s)
	_, _, b := signed(t, s)

	if _, err := keep.Push(ctx, nil, keep.Target{URL: srv.URL, Token: "wrong"}, []feed.Signed{a}); !errors.Is(err, keep.ErrKeeper) || !strings.Contains(err.Error(), "401") {
		t.Fatalf("wrong token: %v", err)
	}
	bad := feed.Signed{Name: a.Name, Data: b.Data}
	res, err := keep.Push(ctx, nil, keep.Target{URL: srv.URL, Token: "sesame"}, []feed.Signed{a, bad, b})
	if res.Added != 2 || res.Held != 2 || len(res.Refused) != 1 || res.Refused[0].Name != a.Name || err == nil {
		t.Fatalf("push: %+v, %v", res, err)
	}
	if _, err := keep.Push(ctx, nil, keep.Target{URL: srv.URL + "/nothing-here", Token: "sesame"}, []feed.Signed{a}); !errors.Is(err, keep.ErrKeeper) {
		t.Fatalf("wrong URL: %v", err)
	}
}

// TestKeeperNeverPutsAnInvalidRecord: a record that stops verifying while
// held (its validity ended) is dropped at the next refresh, never put.
func TestKeeperDropsRecordsThatStopVerifying(t *testing.T) {
	_, s := openKubo(t)
	clock := time.Now()
	k := openKeeper(t, expiring{s, &clock}, keep.Options{Interval: time.Hour, Now: func() time.Time { return clock }})
	_, _, r := signed(t, s)
	if n, err := k.Add([]feed.Signed{r}); n != 1 || err != nil {
		t.Fatal(n, err)
	}
	clock = ipfs.RecordEOL.Add(time.Hour)
	if n, err := k.Refresh(context.Background(), true); n != 0 || err != nil {
		t.Fatalf("refresh after the record's end of validity: put %d, %v", n, err)
	}
	if k.Len() != 0 {
		t.Fatal("expired record still held")
	}
}

// expiring verifies records at a chosen time, to reach their end of validity.
type expiring struct {
	*ipfs.Store
	now *time.Time
}

func (e expiring) VerifySigned(r feed.Signed) error { return ipfs.VerifyRecord(r, *e.now) }

func identityCID(t *testing.T, value []byte) string {
	t.Helper()
	mh, err := multihash.Sum(value, multihash.IDENTITY, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(cid.Raw, mh).String()
}

func removeAll(dir string) error { return os.RemoveAll(dir) }
