package deaddrop_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deaddrop/deaddrop"
	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/transport"
)

// filePair is alice and bob on one embedded store, bob having joined.
func filePair(t *testing.T, aliceTr transport.Transport) (alice, bob *deaddrop.Client) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	cfg := deaddrop.Config{Store: "embedded:" + filepath.Join(dir, "store")}
	bob, err := deaddrop.Init(ctx, filepath.Join(dir, "bob"), "bob", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bob.Close() })
	acfg := cfg
	acfg.Transport = aliceTr
	alice, err = deaddrop.Init(ctx, filepath.Join(dir, "alice"), "alice", acfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { alice.Close() })
	invite, _ := alice.Invite("bob")
	if _, err := bob.Accept(ctx, invite, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Receive(ctx, nil); err != nil {
		t.Fatal(err)
	}
	return alice, bob
}

func TestSendFileRoundTrip(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	alice, bob := filePair(t, nil)
	data := make([]byte, 9<<20+12345) // three segments, the last short
	r := rand.NewChaCha8([32]byte{1})
	r.Read(data)
	var sent int64
	m, err := alice.SendFileProgress(ctx, "bob", bytes.NewReader(data), "holiday.jpg", "image/jpeg", "from the beach", func(n int64) { atomic.AddInt64(&sent, n) }) // called from parallel segments
	if err != nil || m.State != deaddrop.Stored {
		t.Fatalf("SendFile: %v, %v", m.State, err)
	}
	if sent != int64(len(data)) {
		t.Fatalf("progress said %d bytes of %d", sent, len(data))
	}
	res, err := bob.Receive(ctx, nil)
	if err != nil || len(res.New) != 1 {
		t.Fatalf("bob received %d messages: %v", len(res.New), err)
	}
	got := res.New[0]
	info, err := deaddrop.AttachmentOf(got)
	if err != nil || info == nil || info.Name != "holiday.jpg" || info.MediaType != "image/jpeg" ||
		info.Size != int64(len(data)) || info.SHA256 != sha256.Sum256(data) || got.Body != "from the beach" {
		t.Fatalf("attachment %+v, %v; body %q", info, err, got.Body)
	}
	id := deaddrop.MessageID(got)

	// Streamed.
	rc, _, err := bob.OpenAttachment(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	streamed, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(streamed, data) {
		t.Fatalf("OpenAttachment: %d bytes, %v", len(streamed), err)
	}
	// Closed half way: the download stops, nothing leaks.
	rc, _, err = bob.OpenAttachment(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(rc, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	rc.Close()

	// Saved, twice: the second is made unique, never overwrites.
	dir := t.TempDir()
	for _, want := range []string{"holiday.jpg", "holiday (1).jpg"} {
		path, err := bob.SaveAttachment(ctx, id, dir, nil)
		if err != nil || filepath.Base(path) != want {
			t.Fatalf("SaveAttachment: %q, %v", path, err)
		}
		if b, _ := os.ReadFile(path); !bytes.Equal(b, data) {
			t.Fatalf("%s differs", path)
		}
	}
	// The sender can save its own attachment too (its history has it).
	hist, _ := alice.History("bob", deaddrop.Query{})
	if _, err := alice.SaveAttachment(ctx, deaddrop.MessageID(hist[len(hist)-1]), t.TempDir(), nil); err != nil {
		t.Fatal(err)
	}

	// Cancelled: a clear error, no file.
	cctx, ccancel := context.WithCancel(ctx)
	ccancel()
	empty := t.TempDir()
	if _, err := bob.SaveAttachment(cctx, id, empty, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled save: %v", err)
	}
	if names, _ := filepath.Glob(filepath.Join(empty, "holiday*")); len(names) != 0 {
		t.Fatalf("cancelled save left %v", names)
	}
	if _, err := alice.SendFile(cctx, "bob", bytes.NewReader(data), "x.bin", "", ""); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled send: %v", err)
	}
}

func TestAttachmentBadInput(t *testing.T) {
	ctx := context.Background()
	alice, bob := filePair(t, nil)
	m, err := alice.Send(ctx, "bob", "just text")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		id   string
		want error
	}{
		{deaddrop.MessageID(m), deaddrop.ErrNotAFile},
		{"bob", deaddrop.ErrBadMessageID},
		{"bob:x", deaddrop.ErrBadMessageID},
		{"../etc:1", deaddrop.ErrBadMessageID},
	}
	for _, c := range cases {
		if _, err := alice.SaveAttachment(ctx, c.id, t.TempDir(), nil); !errors.Is(err, c.want) {
			t.Errorf("%q: %v, want %v", c.id, err, c.want)
		}
	}
	if _, err := alice.SaveAttachment(ctx, "bob:999", t.TempDir(), nil); err == nil {
		t.Error("no such message: no error")
	}
	for _, name := range []string{"../x", "a/b", "x\x1b[2J", ""} {
		if _, err := alice.SendFile(ctx, "bob", bytes.NewReader([]byte("x")), name, "", ""); err == nil {
			t.Errorf("name %q accepted", name)
		}
	}
	if _, err := alice.SendFile(ctx, "nobody", bytes.NewReader([]byte("x")), "x", "", ""); err == nil {
		t.Error("unknown contact accepted")
	}
	_ = bob
}

// opaque hides the Direct transport, as the mix transport is not one: no
// bulk content goes through it.
type opaque struct{ transport.Transport }

// Through a transport without bulk content (the mix), a file is refused
// before a byte is read, with the trade-off named; text still goes.
func TestSendFileRefusedThroughMix(t *testing.T) {
	ctx := context.Background()
	store, err := feed.OpenEmbedded(filepath.Join(t.TempDir(), "s"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	alice, err := deaddrop.Init(ctx, filepath.Join(dir, "alice"), "alice", deaddrop.Config{Store: "embedded:" + filepath.Join(dir, "s"), Transport: opaque{transport.NewDirect(store)}})
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	alice.Invite("bob")
	r := &countingReader{}
	_, err = alice.SendFile(ctx, "bob", r, "x.bin", "", "")
	if !errors.Is(err, deaddrop.ErrNoBulk) || r.n != 0 {
		t.Fatalf("file through the mix: %v (read %d bytes)", err, r.n)
	}
	t.Logf("%v", err)
}

type countingReader struct{ n int }

func (r *countingReader) Read(p []byte) (int, error) { r.n += len(p); return len(p), nil }

// The history log records the manifest, not the file: a device restored
// from the phrase lists the file and fetches it on demand.
func TestAttachmentAfterRestore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	alice, bob := filePair(t, nil)
	data := bytes.Repeat([]byte("restore me "), 100000)
	if _, err := alice.SendFile(ctx, "bob", bytes.NewReader(data), "notes.txt", "text/plain", "keep this"); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Receive(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Receive(ctx, nil); err != nil {
		t.Fatal(err)
	}
	phrase := alice.RecoveryPhrase()
	restored, _, err := deaddrop.Restore(ctx, t.TempDir(), phrase, "phone", deaddrop.Config{Store: alice.Store()})
	if err != nil {
		t.Fatal(err)
	}
	defer restored.Close()
	hist, err := restored.History("bob", deaddrop.Query{})
	if err != nil || len(hist) != 1 || hist[0].Body != "keep this" {
		t.Fatalf("restored history: %d messages, %v", len(hist), err)
	}
	dir := t.TempDir()
	path, err := restored.SaveAttachment(ctx, deaddrop.MessageID(hist[0]), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, data) {
		t.Fatal("file fetched after restore differs")
	}
}
