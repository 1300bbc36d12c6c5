package attach_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/deaddrop/deaddrop/attach"
	"github.com/deaddrop/deaddrop/feed"
)

// FuzzParseManifest: Parse never panics, and what it accepts is valid and
// has exactly one encoding (Marshal gives the input back).
func FuzzParseManifest(f *testing.F) {
	s := feed.NewMemory()
	for _, n := range []int{0, 1, 3*attach.MinSegmentSize + 5} {
		m, err := attach.Upload(context.Background(), s, bytes.NewReader(make([]byte, n)), "a.txt", "text/plain; charset=utf-8", small)
		if err != nil {
			f.Fatal(err)
		}
		enc, _ := m.Marshal()
		f.Add(enc)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := attach.Parse(b)
		if err != nil {
			if !errors.Is(err, attach.ErrManifest) && !errors.Is(err, attach.ErrBadName) {
				t.Fatalf("Parse error %v wraps neither ErrManifest nor ErrBadName", err)
			}
			return
		}
		if err := m.Check(); err != nil {
			t.Fatalf("Parse accepted an invalid manifest: %v", err)
		}
		enc, err := m.Marshal()
		if err != nil || !bytes.Equal(enc, b) {
			t.Fatalf("Marshal(Parse(b)) != b: %v", err)
		}
	})
}

// The seeds in testdata/fuzz are real manifests: they must parse.
func TestFuzzSeedsParse(t *testing.T) {
	files, _ := filepath.Glob("testdata/fuzz/FuzzParseManifest/valid-*")
	if len(files) == 0 {
		t.Fatal("no valid seeds")
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		b := seedBytes(t, data)
		if _, err := attach.Parse(b); err != nil {
			t.Errorf("%s: %v", file, err)
		}
	}
}

// seedBytes decodes a corpus file of one []byte value.
func seedBytes(t *testing.T, data []byte) []byte {
	lines := bytes.SplitN(data, []byte("\n"), 3)
	if len(lines) < 2 {
		t.Fatal("bad corpus file")
	}
	var s string
	if _, err := fmtSscan(string(bytes.TrimSuffix(bytes.TrimPrefix(lines[1], []byte("[]byte(")), []byte(")"))), &s); err != nil {
		t.Fatal(err)
	}
	return []byte(s)
}

func TestParseRejects(t *testing.T) {
	s := feed.NewMemory()
	m, err := attach.Upload(context.Background(), s, bytes.NewReader(make([]byte, 100_000)), "a.txt", "text/plain", small)
	if err != nil {
		t.Fatal(err)
	}
	good, _ := m.Marshal()
	cases := map[string][]byte{
		"Empty":     nil,
		"Version":   append([]byte{2}, good[1:]...),
		"Trailing":  append(bytes.Clone(good), 0),
		"Truncated": good[:len(good)-1],
		"Segments":  func() []byte { b := bytes.Clone(good); b[6] ^= 0x10; return b }(), // size no longer fits the count
		"SegSize":   func() []byte { b := bytes.Clone(good); b[1+8+32+3] = 1; return b }(),
		"LowerKey":  bytes.Replace(good, []byte("AGE-SECRET-KEY-1"), []byte("age-secret-key-1"), 1),
	}
	for name, b := range cases {
		if _, err := attach.Parse(b); err == nil {
			t.Errorf("%s: Parse accepted it", name)
		}
	}
}
