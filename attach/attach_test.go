package attach_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/deaddrop/deaddrop/attach"
	"github.com/deaddrop/deaddrop/feed"
)

// small segments make many segments out of little data.
var small = attach.Options{SegmentSize: attach.MinSegmentSize}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func upload(t *testing.T, s feed.BulkStore, data []byte, name string, opts attach.Options) *attach.Manifest {
	t.Helper()
	m, err := attach.Upload(context.Background(), s, bytes.NewReader(data), name, "application/octet-stream", opts)
	if err != nil {
		t.Fatalf("Upload: %v", err)
	}
	return m
}

// listDir returns the names in dir.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

// roundTrip uploads data, then fetches it with Download and with Save.
func roundTrip(t *testing.T, s feed.BulkStore, data []byte, opts attach.Options) {
	t.Helper()
	m := upload(t, s, data, "report.pdf", opts)
	enc, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	m, err = attach.Parse(enc)
	if err != nil {
		t.Fatalf("Parse(Marshal): %v", err)
	}
	var buf bytes.Buffer
	if err := attach.Download(context.Background(), s, m, &buf, opts); err != nil {
		t.Fatalf("Download: %v", err)
	}
	if !bytes.Equal(buf.Bytes(), data) {
		t.Fatalf("Download: %d different bytes", buf.Len())
	}
	dir := t.TempDir()
	path, err := attach.Save(context.Background(), s, m, dir, opts)
	if err != nil {
		t.Fatalf("Save: %v", err)
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Save: %v, %d different bytes", err, len(got))
	}
	if names := listDir(t, dir); len(names) != 1 || names[0] != "report.pdf" {
		t.Fatalf("Save left %q, want only report.pdf", names)
	}
}

func TestRoundTripSizes(t *testing.T) {
	s := feed.NewMemory()
	seg := int(attach.MinSegmentSize)
	for _, n := range []int{0, 1, seg - 1, seg, seg + 1, 3*seg + 12345} {
		roundTrip(t, s, randomBytes(t, n), small)
	}
}

func TestRoundTripEmbedded(t *testing.T) {
	s, err := feed.OpenEmbedded(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, s, randomBytes(t, 3<<20+7), attach.Options{SegmentSize: 1 << 20})
}

func TestManifestFieldsAndMarshal(t *testing.T) {
	s := feed.NewMemory()
	data := randomBytes(t, 200_000)
	m, err := attach.Upload(context.Background(), s, bytes.NewReader(data), "cat.png", "image/png", small)
	if err != nil {
		t.Fatal(err)
	}
	if m.Size != int64(len(data)) || m.Name != "cat.png" || m.MediaType != "image/png" || len(m.Segments) != 4 {
		t.Fatalf("manifest %+v", m)
	}
	enc, _ := m.Marshal()
	if len(enc) > 4096-256 {
		t.Errorf("a 4-segment manifest takes %d bytes", len(enc))
	}
}

// tamper runs Save on a manifest whose store was damaged by spoil and
// expects err and an untouched directory.
func expectNoFile(t *testing.T, s feed.BulkStore, m *attach.Manifest, want error) {
	t.Helper()
	dir := t.TempDir()
	_, err := attach.Save(context.Background(), s, m, dir, small)
	if !errors.Is(err, want) {
		t.Fatalf("Save: got %v, want %v", err, want)
	}
	for _, name := range listDir(t, dir) {
		if name == m.Name {
			t.Fatalf("Save failed (%v) but left %s", err, name)
		}
		if errors.Is(want, attach.ErrIntegrity) {
			t.Errorf("Save failed on integrity but left %s", name)
		}
	}
	if err := attach.Download(context.Background(), s, m, io.Discard, small); !errors.Is(err, want) {
		t.Fatalf("Download: got %v, want %v", err, want)
	}
}

func TestTamperedSegment(t *testing.T) {
	s := feed.NewMemory()
	data := randomBytes(t, 300_000)
	for _, spoil := range []struct {
		name string
		fn   func(ct []byte) []byte
	}{
		{"FlipPayload", func(ct []byte) []byte { ct[len(ct)/2] ^= 1; return ct }},
		{"FlipHeader", func(ct []byte) []byte { ct[40] ^= 1; return ct }},
		{"Truncated", func(ct []byte) []byte { return ct[:len(ct)-100] }},
		{"CutAtChunk", func(ct []byte) []byte { return ct[:len(ct)-17] }},
		{"Extended", func(ct []byte) []byte { return append(ct, randomBytes(t, 64)...) }},
		{"Empty", func(ct []byte) []byte { return nil }},
	} {
		t.Run(spoil.name, func(t *testing.T) {
			m := upload(t, s, data, "x.bin", small)
			ref := m.Segments[2]
			ct, err := io.ReadAll(mustGet(t, s, ref))
			if err != nil {
				t.Fatal(err)
			}
			s.SetBulk(ref, spoil.fn(bytes.Clone(ct)))
			expectNoFile(t, s, m, attach.ErrIntegrity)
		})
	}
}

func mustGet(t *testing.T, s feed.BulkStore, ref []byte) io.Reader {
	rc, err := s.GetBulk(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Close() })
	return rc
}

// A store that serves bytes other than the ones under the reference, but
// without any store-side check (as a hostile node could): age alone must
// catch it.
type lyingStore struct {
	feed.BulkStore
	serve func(ref []byte) []byte
}

func (l lyingStore) GetBulk(ctx context.Context, ref []byte) (io.ReadCloser, error) {
	if b := l.serve(ref); b != nil {
		return io.NopCloser(bytes.NewReader(b)), nil
	}
	return l.BulkStore.GetBulk(ctx, ref)
}

func TestHostileStore(t *testing.T) {
	mem := feed.NewMemory()
	m := upload(t, mem, randomBytes(t, 300_000), "x.bin", small)
	other := upload(t, mem, randomBytes(t, 300_000), "y.bin", small)
	otherSeg, _ := io.ReadAll(mustGet(t, mem, other.Segments[1]))
	ownSeg, _ := io.ReadAll(mustGet(t, mem, m.Segments[1]))
	for name, serve := range map[string][]byte{
		"AnotherFilesSegment": otherSeg,
		"OwnOtherSegment":     ownSeg, // right key, wrong place
		"Garbage":             randomBytes(t, 70_000),
	} {
		t.Run(name, func(t *testing.T) {
			s := lyingStore{mem, func(ref []byte) []byte {
				if bytes.Equal(ref, m.Segments[3]) {
					return serve
				}
				return nil
			}}
			expectNoFile(t, s, m, attach.ErrIntegrity)
		})
	}
}

func TestLyingManifest(t *testing.T) {
	s := feed.NewMemory()
	data := randomBytes(t, 3*attach.MinSegmentSize+500)
	cases := map[string]func(m *attach.Manifest){
		"SizeShorter": func(m *attach.Manifest) { m.Size -= 100 },
		"SizeLonger":  func(m *attach.Manifest) { m.Size += 100 },
		"Hash":        func(m *attach.Manifest) { m.SHA256[0] ^= 1 },
		"Swapped":     func(m *attach.Manifest) { m.Segments[0], m.Segments[1] = m.Segments[1], m.Segments[0] },
		"OtherKey": func(m *attach.Manifest) {
			other := upload(t, s, []byte("x"), "o", small)
			m.Key = other.Key
		},
	}
	for name, lie := range cases {
		t.Run(name, func(t *testing.T) {
			m := upload(t, s, data, "x.bin", small)
			lie(m)
			expectNoFile(t, s, m, attach.ErrIntegrity)
		})
	}
}

func TestMissingSegment(t *testing.T) {
	s := feed.NewMemory()
	m := upload(t, s, randomBytes(t, 300_000), "x.bin", small)
	s.DeleteBulk(m.Segments[1])
	expectNoFile(t, s, m, attach.ErrNotFound)
}

func TestTooLarge(t *testing.T) {
	s := feed.NewMemory()
	data := randomBytes(t, 200_000)
	opts := small
	opts.MaxSize = 150_000
	_, err := attach.Upload(context.Background(), s, bytes.NewReader(data), "big", "", opts)
	if !errors.Is(err, attach.ErrTooLarge) {
		t.Fatalf("Upload over the limit: %v", err)
	}
	m := upload(t, s, data, "big", small)
	dir := t.TempDir()
	if _, err := attach.Save(context.Background(), s, m, dir, opts); !errors.Is(err, attach.ErrTooLarge) {
		t.Fatalf("Save over the limit: %v", err)
	}
	if names := listDir(t, dir); len(names) != 0 {
		t.Fatalf("Save over the limit left %q", names)
	}
}

func TestHostileNames(t *testing.T) {
	bad := []string{"", ".", "..", "../x", "a/b", `a\b`, "/etc/passwd", "x\x00y", "x\ny", "x\x1b[31m",
		"x\u0085", "photo\u202egpj.exe", "a\u2066b", "\xff\xfe", strings.Repeat("a", 256)}
	for _, name := range bad {
		if err := attach.CheckName(name); !errors.Is(err, attach.ErrBadName) {
			t.Errorf("CheckName(%q) = %v, want ErrBadName", name, err)
		}
		_, err := attach.Upload(context.Background(), feed.NewMemory(), strings.NewReader("x"), name, "", small)
		if !errors.Is(err, attach.ErrBadName) {
			t.Errorf("Upload named %q: %v, want ErrBadName", name, err)
		}
	}
	for _, name := range []string{"a", "..a", "a..", ".bashrc", "résumé.pdf", "日本.txt", "a b (1).tar.gz", strings.Repeat("a", 255)} {
		if err := attach.CheckName(name); err != nil {
			t.Errorf("CheckName(%q) = %v", name, err)
		}
	}
}

// A manifest from the wire with a hostile name is refused by Parse, and
// Save of a manifest built in memory with one writes nothing anywhere.
func TestHostileNameInManifest(t *testing.T) {
	s := feed.NewMemory()
	m := upload(t, s, []byte("payload"), "aaaa", small)
	enc, _ := m.Marshal()
	for _, name := range []string{"../x", "a/b", "a\x07"} {
		patched := bytes.Replace(enc, []byte("\x04aaaa"), append([]byte{byte(len(name))}, name...), 1)
		if _, err := attach.Parse(patched); !errors.Is(err, attach.ErrBadName) {
			t.Errorf("Parse with name %q: %v, want ErrBadName", name, err)
		}
		parent := t.TempDir()
		dir := filepath.Join(parent, "in")
		os.Mkdir(dir, 0o700)
		bad := *m
		bad.Name = name
		if _, err := attach.Save(context.Background(), s, &bad, dir, small); !errors.Is(err, attach.ErrBadName) {
			t.Errorf("Save named %q: %v, want ErrBadName", name, err)
		}
		if names := listDir(t, parent); len(names) != 1 {
			t.Errorf("Save named %q wrote %q beside its directory", name, names)
		}
		if names := listDir(t, dir); len(names) != 0 {
			t.Errorf("Save named %q wrote %q", name, names)
		}
	}
}

func TestSaveNeverReplaces(t *testing.T) {
	s := feed.NewMemory()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("mine"), 0o600)
	os.WriteFile(filepath.Join(dir, "a (1).txt"), []byte("mine too"), 0o600)
	m := upload(t, s, []byte("theirs"), "a.txt", small)
	path, err := attach.Save(context.Background(), s, m, dir, small)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(path) != "a (2).txt" {
		t.Fatalf("saved as %s", path)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "a.txt")); string(b) != "mine" {
		t.Fatal("Save replaced an existing file")
	}
}

// countingStore counts puts and gets and can cancel the caller's context
// after a number of them, like a crash or a dropped connection mid-way.
type countingStore struct {
	feed.BulkStore
	puts, gets atomic.Int64
	mu         sync.Mutex
	cancelAt   int64
	cancel     context.CancelFunc
}

func (c *countingStore) PutBulk(ctx context.Context, r io.Reader) ([]byte, error) {
	n := c.puts.Add(1)
	c.maybeCancel(n)
	return c.BulkStore.PutBulk(ctx, r)
}

func (c *countingStore) GetBulk(ctx context.Context, ref []byte) (io.ReadCloser, error) {
	n := c.gets.Add(1)
	c.maybeCancel(n)
	return c.BulkStore.GetBulk(ctx, ref)
}

func (c *countingStore) maybeCancel(n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cancel != nil && n >= c.cancelAt {
		c.cancel()
	}
}

func (c *countingStore) interruptAt(n int64) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cancelAt, c.cancel = n, cancel
	return ctx
}

func (c *countingStore) noInterrupt() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cancel = nil
}

func TestResumeUpload(t *testing.T) {
	s := &countingStore{BulkStore: feed.NewMemory()}
	data := randomBytes(t, 20*attach.MinSegmentSize)
	opts := small
	opts.Parallel = 2
	opts.Journal = filepath.Join(t.TempDir(), "upload.journal")
	ctx := s.interruptAt(10)
	if _, err := attach.Upload(ctx, s, bytes.NewReader(data), "x.bin", "", opts); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted Upload: %v", err)
	}
	first := s.puts.Load()
	s.noInterrupt()
	m, err := attach.Upload(context.Background(), s, bytes.NewReader(data), "x.bin", "", opts)
	if err != nil {
		t.Fatalf("resumed Upload: %v", err)
	}
	second := s.puts.Load() - first
	t.Logf("interrupted run put %d segments, resumed run %d, of 20", first, second)
	// The put that was cut short and those in flight beside it count in
	// first but did not complete.
	if second > 20-first+1+int64(opts.Parallel) || second >= 20 {
		t.Fatalf("resumed Upload put %d segments again, want about %d", second, 20-first)
	}
	var buf bytes.Buffer
	if err := attach.Download(context.Background(), s, m, &buf, opts); err != nil || !bytes.Equal(buf.Bytes(), data) {
		t.Fatalf("download after resume: %v", err)
	}
	// Once complete, an Upload with the journal puts nothing at all.
	before := s.puts.Load()
	again, err := attach.Upload(context.Background(), s, bytes.NewReader(data), "x.bin", "", opts)
	if err != nil || s.puts.Load() != before || again.Key != m.Key {
		t.Fatalf("Upload of a journalled, complete file: %v, %d puts", err, s.puts.Load()-before)
	}
	// A changed segment is uploaded again; the rest is not.
	data[5*attach.MinSegmentSize] ^= 1
	if _, err := attach.Upload(context.Background(), s, bytes.NewReader(data), "x.bin", "", opts); err != nil || s.puts.Load() != before+1 {
		t.Fatalf("Upload after one segment changed: %v, %d puts", err, s.puts.Load()-before)
	}
	if err := attach.RemoveJournal(opts.Journal); err != nil {
		t.Fatal(err)
	}
}

func TestResumeSave(t *testing.T) {
	s := &countingStore{BulkStore: feed.NewMemory()}
	data := randomBytes(t, 20*attach.MinSegmentSize)
	opts := small
	opts.Parallel = 2
	m := upload(t, s, data, "x.bin", opts)
	dir := t.TempDir()
	ctx := s.interruptAt(8)
	if _, err := attach.Save(ctx, s, m, dir, opts); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted Save: %v", err)
	}
	for _, name := range listDir(t, dir) {
		if name == "x.bin" {
			t.Fatal("interrupted Save left the final name")
		}
	}
	first := s.gets.Load()
	s.noInterrupt()
	path, err := attach.Save(context.Background(), s, m, dir, opts)
	if err != nil {
		t.Fatalf("resumed Save: %v", err)
	}
	second := s.gets.Load() - first
	t.Logf("interrupted run fetched %d segments, resumed run %d, of 20", first, second)
	if second >= 20 {
		t.Fatalf("resumed Save fetched %d segments, want fewer than 20", second)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, data) {
		t.Fatal("resumed Save wrote different bytes")
	}
	if names := listDir(t, dir); len(names) != 1 {
		t.Fatalf("after Save: %q", names)
	}
}

// flakyStore fails the first GetBulk of every object mid-stream, like a
// dropped connection: the segment is fetched again and the file arrives.
type flakyStore struct {
	feed.BulkStore
	seen sync.Map
}

func (f *flakyStore) GetBulk(ctx context.Context, ref []byte) (io.ReadCloser, error) {
	rc, err := f.BulkStore.GetBulk(ctx, ref)
	if _, again := f.seen.LoadOrStore(string(ref), true); err != nil || again {
		return rc, err
	}
	return struct {
		io.Reader
		io.Closer
	}{io.MultiReader(io.LimitReader(rc, 1000), errReader{feed.ErrUnavailable}), rc}, nil
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestDroppedConnection(t *testing.T) {
	s := &flakyStore{BulkStore: feed.NewMemory()}
	data := randomBytes(t, 5*attach.MinSegmentSize)
	m := upload(t, s, data, "x.bin", small)
	path, err := attach.Save(context.Background(), s, m, t.TempDir(), small)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, data) {
		t.Fatal("wrong bytes")
	}
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// roundTripManifest checks that m saves as data.
func roundTripManifest(t *testing.T, s feed.BulkStore, m *attach.Manifest, data []byte) {
	t.Helper()
	path, err := attach.Save(context.Background(), s, m, t.TempDir(), attach.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, data) {
		t.Fatal("saved different bytes")
	}
}
