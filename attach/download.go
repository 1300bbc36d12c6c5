package attach

import (
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
	"sync"

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
	whole := sha256.New()
	err = inOrder(ctx, m, opts, func(ctx context.Context, i int, buf []byte) ([]byte, error) {
		return fetchSegment(ctx, store, m, id, i, buf, opts)
	}, func(i int, data []byte) error {
		whole.Write(data)
		if _, err := w.Write(data); err != nil {
			return fmt.Errorf("attach: writing the file: %w", err)
		}
		opts.progress(int64(len(data)))
		return nil
	})
	if err != nil {
		return err
	}
	if [32]byte(whole.Sum(nil)) != m.SHA256 {
		return fmt.Errorf("%w: SHA-256 of the whole does not match the manifest", ErrIntegrity)
	}
	return nil
}

// inOrder runs get for every segment, Parallel at once, each into a
// segment-sized buffer, and hands the results to put one at a time in
// segment order (put may hash them: the whole is hashed as it completes).
// At most Parallel+1 buffers exist at once, reused from segment to
// segment. It returns the first error, once every get it started has
// returned.
func inOrder(ctx context.Context, m *Manifest, opts Options,
	get func(ctx context.Context, i int, buf []byte) ([]byte, error),
	put func(i int, data []byte) error) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	results := make([]chan segmentResult, len(m.Segments))
	for i := range results {
		results[i] = make(chan segmentResult, 1)
	}
	free := make(chan []byte, opts.Parallel+1)
	slots := make(chan struct{}, opts.Parallel)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range m.Segments {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			var buf []byte
			select {
			case buf = <-free:
			default:
				// Sized once, for any segment: the last may be shorter.
				buf = make([]byte, m.SegmentSize)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				data, err := get(ctx, i, buf)
				results[i] <- segmentResult{buf, data, err}
			}()
		}
	}()
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
		if err := put(i, res.data); err != nil {
			return err
		}
		select {
		case free <- res.buf:
		default:
		}
	}
	return nil
}

type segmentResult struct {
	buf  []byte
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

// fetchSegment fetches segment i, decrypts it into buf (at least its
// plaintext length) and returns exactly its plaintext, retrying transient
// failures from the start of the segment.
func fetchSegment(ctx context.Context, store feed.BulkStore, m *Manifest, id age.Identity, i int, buf []byte, opts Options) ([]byte, error) {
	data, err := retry(ctx, opts.Attempts, func() ([]byte, error) {
		return fetchOnce(ctx, store, m, id, i, buf)
	})
	if err != nil {
		return nil, fmt.Errorf("attach: segment %d of %q: %w", i, m.Name, err)
	}
	return data, nil
}

func fetchOnce(ctx context.Context, store feed.BulkStore, m *Manifest, id age.Identity, i int, buf []byte) ([]byte, error) {
	rc, err := store.GetBulk(ctx, m.Segments[i])
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	src := &sourceReader{r: rc}
	plain, err := age.Decrypt(src, id)
	if err != nil {
		return nil, src.blame(err)
	}
	want := m.segmentLen(i)
	buf = buf[:want]
	// Read straight into buf: no intermediate copy, no growing buffer.
	n := 0
	for n < len(buf) {
		k, err := plain.Read(buf[n:])
		n += k
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, src.blame(err)
		}
	}
	if int64(n) != want {
		return nil, fmt.Errorf("%w: segment holds %d bytes, manifest says %d", ErrIntegrity, n, want)
	}
	// The segment must end here: age authenticates its end, and more
	// plaintext than the manifest says is a lie too.
	var one [1]byte
	if extra, err := plain.Read(one[:]); extra != 0 || !errors.Is(err, io.EOF) {
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, src.blame(err)
		}
		return nil, fmt.Errorf("%w: segment longer than the manifest says", ErrIntegrity)
	}
	return buf, nil
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

	wmu     sync.Mutex
	pending []int         // written at their offsets, not yet committed
	cerr    error         // a failed commit fails every later write
	kick    chan struct{} // wakes the committer
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
// and writes each at its offset in the part file; a segment the journal
// has is read back from the part file instead. Either way the segments
// are hashed in order as they complete, so that the whole is verified
// (size and SHA-256) without reading the file again at the end.
func (s *saver) fetchMissing(ctx context.Context, store feed.BulkStore, id age.Identity, opts Options) error {
	s.kick = make(chan struct{}, 1)
	stop := make(chan struct{})
	committed := make(chan error, 1)
	go s.committer(stop, committed)
	whole := sha256.New()
	err := inOrder(ctx, s.m, opts, func(ctx context.Context, i int, buf []byte) ([]byte, error) {
		if _, done := s.journal.get(i); done {
			return s.readBack(i, buf, opts)
		}
		return s.fetch(ctx, store, id, i, buf, opts)
	}, func(i int, data []byte) error {
		whole.Write(data)
		return nil
	})
	// Whatever happened, what was written is committed for the next Save.
	close(stop)
	if cerr := <-committed; err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	st, err := s.f.Stat()
	if err != nil {
		return fmt.Errorf("attach: %w", err)
	}
	if st.Size() != s.m.Size {
		return fmt.Errorf("%w: %d bytes received, manifest says %d", ErrIntegrity, st.Size(), s.m.Size)
	}
	if [32]byte(whole.Sum(nil)) != s.m.SHA256 {
		return fmt.Errorf("%w: SHA-256 of the whole does not match the manifest", ErrIntegrity)
	}
	return nil
}

// readBack reads segment i, done by an earlier Save, from the part file.
func (s *saver) readBack(i int, buf []byte, opts Options) ([]byte, error) {
	buf = buf[:s.m.segmentLen(i)]
	if _, err := s.f.ReadAt(buf, int64(i)*s.m.SegmentSize); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: part file shorter than the manifest says", ErrIntegrity)
		}
		return nil, fmt.Errorf("attach: %w", err)
	}
	opts.progress(int64(len(buf)))
	return buf, nil
}

func (s *saver) fetch(ctx context.Context, store feed.BulkStore, id age.Identity, i int, buf []byte, opts Options) ([]byte, error) {
	data, err := fetchSegment(ctx, store, s.m, id, i, buf, opts)
	if err != nil {
		return nil, err
	}
	if _, err := s.f.WriteAt(data, int64(i)*s.m.SegmentSize); err != nil {
		return nil, fmt.Errorf("attach: %w", err)
	}
	if err := s.written(i); err != nil {
		return nil, err
	}
	opts.progress(int64(len(data)))
	return data, nil
}

// written notes segment i as written at its offset and wakes the
// committer, which makes it durable and journals it in the background:
// the worker goes on to its next segment instead of waiting for the disk.
func (s *saver) written(i int) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.cerr != nil {
		return s.cerr
	}
	s.pending = append(s.pending, i)
	select {
	case s.kick <- struct{}{}:
	default:
	}
	return nil
}

// committer runs until stop is closed, committing what is written; then
// it commits the rest once more and reports the first failure.
func (s *saver) committer(stop <-chan struct{}, done chan<- error) {
	for {
		select {
		case <-s.kick:
			if err := s.commit(); err != nil {
				done <- err
				return
			}
		case <-stop:
			done <- s.commit()
			return
		}
	}
}

// commit makes every segment written so far durable, then records them in
// the journal: the bytes must be on disk before the journal says they
// are. One fsync and one journal append cover every segment written
// meanwhile (a group commit).
func (s *saver) commit() error {
	s.wmu.Lock()
	batch := s.pending
	s.pending = nil
	s.wmu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	err := s.f.Sync()
	if err != nil {
		err = fmt.Errorf("attach: %w", err)
	} else {
		es := make([]journalEntry, len(batch))
		for k, j := range batch {
			es[k] = journalEntry{I: j}
		}
		err = s.journal.record(es...)
	}
	if err != nil {
		s.wmu.Lock()
		s.cerr = err
		s.wmu.Unlock()
	}
	return err
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
