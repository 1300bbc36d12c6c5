package attach

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"filippo.io/age"
	"github.com/deaddrop/deaddrop/feed"
)

// Download fetches and decrypts an attachment into w, Parallel segments at
// a time, in order. Every segment is authenticated by age before a byte of
// it reaches w, but the whole (size and SHA-256) is known good only when
// Download returns nil: a caller that shows a file must use Save, which
// never names a file before it is whole and verified.
func Download(ctx context.Context, store feed.BulkStore, m *Manifest, w io.Writer, opts Options) error {
	opts = opts.withDefaults()
	id, err := checkForDownload(m, opts)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make([]chan segmentResult, len(m.Segments))
	for i := range results {
		results[i] = make(chan segmentResult, 1)
	}
	slots := make(chan struct{}, opts.Parallel)
	go func() {
		for i := range m.Segments {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			go func() {
				// Sized once: a growing buffer would copy and double.
				buf := bytes.NewBuffer(make([]byte, 0, m.segmentLen(i)))
				err := fetchSegment(ctx, store, m, id, i, buf, opts)
				results[i] <- segmentResult{buf.Bytes(), err}
			}()
		}
	}()
	whole := sha256.New()
	for i := range m.Segments {
		var res segmentResult
		select {
		case res = <-results[i]:
		case <-ctx.Done():
			return ctx.Err()
		}
		<-slots
		if res.err != nil {
			return res.err
		}
		whole.Write(res.data)
		if _, err := w.Write(res.data); err != nil {
			return fmt.Errorf("attach: writing the file: %w", err)
		}
		opts.progress(int64(len(res.data)))
	}
	if [32]byte(whole.Sum(nil)) != m.SHA256 {
		return fmt.Errorf("%w: SHA-256 of the whole does not match the manifest", ErrIntegrity)
	}
	return nil
}

type segmentResult struct {
	data []byte
	err  error
}

func checkForDownload(m *Manifest, opts Options) (*age.X25519Identity, error) {
	if err := m.Check(); err != nil {
		return nil, err
	}
	if m.Size > opts.MaxSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, m.Size, opts.MaxSize)
	}
	return m.identity()
}

// fetchSegment fetches segment i, decrypts it and writes exactly its
// plaintext length to w, retrying transient failures from the start of
// the segment (w must accept a rewrite: an offset writer or a buffer it
// resets).
func fetchSegment(ctx context.Context, store feed.BulkStore, m *Manifest, id age.Identity, i int, w io.Writer, opts Options) error {
	_, err := retry(ctx, opts.Attempts, func() (struct{}, error) {
		if b, ok := w.(*bytes.Buffer); ok {
			b.Reset()
		}
		if ow, ok := w.(*io.OffsetWriter); ok {
			ow.Seek(0, io.SeekStart)
		}
		return struct{}{}, fetchOnce(ctx, store, m, id, i, w)
	})
	if err != nil {
		return fmt.Errorf("attach: segment %d of %q: %w", i, m.Name, err)
	}
	return nil
}

func fetchOnce(ctx context.Context, store feed.BulkStore, m *Manifest, id age.Identity, i int, w io.Writer) error {
	rc, err := store.GetBulk(ctx, m.Segments[i])
	if err != nil {
		return err
	}
	defer rc.Close()
	src := &sourceReader{r: rc}
	plain, err := age.Decrypt(src, id)
	if err != nil {
		return src.blame(err)
	}
	want := m.segmentLen(i)
	n, err := io.Copy(w, io.LimitReader(plain, want))
	if err != nil {
		return src.blame(err)
	}
	if n != want {
		return fmt.Errorf("%w: segment holds %d bytes, manifest says %d", ErrIntegrity, n, want)
	}
	// The segment must end here: age authenticates its end, and more
	// plaintext than the manifest says is a lie too.
	if extra, err := plain.Read(make([]byte, 1)); extra != 0 || !errors.Is(err, io.EOF) {
		if err != nil && !errors.Is(err, io.EOF) {
			return src.blame(err)
		}
		return fmt.Errorf("%w: segment longer than the manifest says", ErrIntegrity)
	}
	return nil
}

// sourceReader remembers the store's own read error, so that a failure in
// age.Decrypt can be told apart: the store failed (maybe transient) or the
// bytes it gave are not what was encrypted (integrity).
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		s.err = err
	}
	return n, err
}

func (s *sourceReader) blame(err error) error {
	if s.err != nil {
		if errors.Is(s.err, feed.ErrCorrupt) {
			return fmt.Errorf("%w: %w", ErrIntegrity, s.err)
		}
		return s.err
	}
	return fmt.Errorf("%w: %v", ErrIntegrity, err)
}

// Save downloads an attachment into dir and returns the path of the file.
// Segments are written to a hidden part file beside a journal of the done
// ones (both named after the manifest, so a later Save of the same manifest
// continues where this one stopped, and a name of any length fits). Only
// when every segment is in and the size and SHA-256 of the whole match is
// the file linked under its name: m.Name, or "name (1).ext" and so on if
// that is taken; an existing file is never replaced. Every operation goes
// through an os.Root of dir, so no name can reach outside it. On an
// integrity failure the part file and its journal are removed; on any
// other failure they stay for the next Save.
func Save(ctx context.Context, store feed.BulkStore, m *Manifest, dir string, opts Options) (string, error) {
	opts = opts.withDefaults()
	id, err := checkForDownload(m, opts)
	if err != nil {
		return "", err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return "", fmt.Errorf("attach: %w", err)
	}
	defer root.Close()
	s, err := openSave(root, dir, m)
	if err != nil {
		return "", err
	}
	err = s.fetchMissing(ctx, store, id, opts)
	if err == nil {
		err = s.verify()
	}
	if err != nil {
		s.close(errors.Is(err, ErrIntegrity))
		return "", err
	}
	name, err := s.publish()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, name), nil
}

type saver struct {
	root    *os.Root
	m       *Manifest
	part    string
	f       *os.File
	journal *journal
}

func openSave(root *os.Root, dir string, m *Manifest) (*saver, error) {
	enc, err := m.Marshal()
	if err != nil {
		return nil, err
	}
	digest := sha256.Sum256(enc)
	base := ".deaddrop-" + hex.EncodeToString(digest[:12])
	s := &saver{root: root, m: m, part: base + ".part"}
	if s.f, err = root.OpenFile(s.part, os.O_RDWR|os.O_CREATE, 0o600); err != nil {
		return nil, fmt.Errorf("attach: %w", err)
	}
	// The journal is opened by path: os.Root has no CreateTemp, and the
	// name is ours (a hex digest), never the sender's.
	jpath := filepath.Join(dir, base+".journal")
	hdr := journalHeader{V: 1, Manifest: hex.EncodeToString(digest[:])}
	s.journal, err = openJournal(jpath, hdr, func(h journalHeader) bool { return h.Manifest == hdr.Manifest })
	if err != nil {
		s.f.Close()
		return nil, err
	}
	if err := s.f.Truncate(m.Size); err != nil {
		s.close(false)
		return nil, fmt.Errorf("attach: %w", err)
	}
	return s, nil
}

// fetchMissing fetches every segment the journal lacks, Parallel at once,
// straight into the part file at its offset.
func (s *saver) fetchMissing(ctx context.Context, store feed.BulkStore, id age.Identity, opts Options) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(s.m.Segments))
	slots := make(chan struct{}, opts.Parallel)
	started := 0
	for i := range s.m.Segments {
		if _, done := s.journal.get(i); done {
			opts.progress(s.m.segmentLen(i))
			continue
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		started++
		go func() {
			defer func() { <-slots }()
			errs <- s.fetch(ctx, store, id, i, opts)
		}()
	}
	var first error
	for range started {
		if err := <-errs; err != nil && first == nil {
			first = err
			cancel()
		}
	}
	if first == nil {
		first = ctx.Err()
	}
	return first
}

func (s *saver) fetch(ctx context.Context, store feed.BulkStore, id age.Identity, i int, opts Options) error {
	w := io.NewOffsetWriter(s.f, int64(i)*s.m.SegmentSize)
	if err := fetchSegment(ctx, store, s.m, id, i, w, opts); err != nil {
		return err
	}
	// The bytes must be on disk before the journal says they are.
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("attach: %w", err)
	}
	if err := s.journal.record(journalEntry{I: i}); err != nil {
		return err
	}
	opts.progress(s.m.segmentLen(i))
	return nil
}

// verify reads the part file back and checks the size and SHA-256 of the
// whole against the manifest.
func (s *saver) verify() error {
	st, err := s.f.Stat()
	if err != nil {
		return fmt.Errorf("attach: %w", err)
	}
	if st.Size() != s.m.Size {
		return fmt.Errorf("%w: %d bytes received, manifest says %d", ErrIntegrity, st.Size(), s.m.Size)
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(s.f, 0, s.m.Size)); err != nil {
		return fmt.Errorf("attach: %w", err)
	}
	if [32]byte(h.Sum(nil)) != s.m.SHA256 {
		return fmt.Errorf("%w: SHA-256 of the whole does not match the manifest", ErrIntegrity)
	}
	return nil
}

// publish links the verified part file under a free name and removes the
// part file and journal.
func (s *saver) publish() (string, error) {
	if err := s.f.Sync(); err != nil {
		return "", fmt.Errorf("attach: %w", err)
	}
	for n := 0; n < 1000; n++ {
		name := numbered(s.m.Name, n)
		if err := CheckName(name); err != nil {
			continue
		}
		err := s.root.Link(s.part, name)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("attach: %w", err)
		}
		s.close(true)
		return name, nil
	}
	return "", fmt.Errorf("attach: no free name for %q", s.m.Name)
}

// close closes the part file and journal, removing both if drop.
func (s *saver) close(drop bool) {
	s.f.Close()
	if drop {
		s.root.Remove(s.part)
		s.journal.remove()
		return
	}
	s.journal.close()
}

// numbered returns name for n = 0, else "stem (n).ext".
func numbered(name string, n int) string {
	if n == 0 {
		return name
	}
	ext := filepath.Ext(name)
	if ext == name || strings.HasPrefix(name, ".") && strings.Count(name, ".") == 1 {
		ext = ""
	}
	return fmt.Sprintf("%s (%d)%s", strings.TrimSuffix(name, ext), n, ext)
}
