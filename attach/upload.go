package attach

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"time"

	"filippo.io/age"
	"github.com/deaddrop/deaddrop/feed"
)

// DefaultSegmentSize is the plaintext size of a segment unless
// Options.SegmentSize says otherwise: small enough that Parallel segments in
// memory stay far below the memory goal, large enough that a 100 MiB file
// is 25 objects and its manifest fits in one message chunk.
const DefaultSegmentSize = 4 << 20

// DefaultParallel is how many segments move at once.
const DefaultParallel = 4

// Options tune Upload, Download and Save. Zero values pick the defaults.
type Options struct {
	// MaxSize is the largest attachment accepted (default DefaultMaxSize).
	MaxSize int64
	// SegmentSize is the plaintext size of a segment (Upload only; default
	// DefaultSegmentSize; a multiple of MinSegmentSize).
	SegmentSize int64
	// Parallel is how many segments are uploaded or fetched at once
	// (default DefaultParallel). Memory use is about Parallel+1 segments.
	Parallel int
	// Journal is where Upload records its progress (a file path, in the
	// account's state directory: it holds the file's key). A later Upload
	// with the same journal reuses the key and skips every segment already
	// uploaded whose plaintext is unchanged. Empty: no journal. The caller
	// removes it (RemoveJournal) once the manifest is safely queued.
	Journal string
	// Attempts is how many times a segment is tried before giving up on a
	// transient failure (default 3).
	Attempts int
	// Progress, if set, is told the plaintext bytes of every segment
	// uploaded or saved (or found done by a journal), possibly from
	// several goroutines at once: a progress bar adds them up.
	Progress func(n int64)
}

func (o Options) progress(n int64) {
	if o.Progress != nil {
		o.Progress(n)
	}
}

func (o Options) withDefaults() Options {
	if o.MaxSize == 0 {
		o.MaxSize = DefaultMaxSize
	}
	if o.SegmentSize == 0 {
		o.SegmentSize = DefaultSegmentSize
	}
	if o.Parallel <= 0 {
		o.Parallel = DefaultParallel
	}
	if o.Attempts <= 0 {
		o.Attempts = 3
	}
	return o
}

// Upload reads a file from r, encrypts it in segments under a fresh key and
// puts every segment into store, Parallel at a time, never holding more
// than Parallel+1 segments in memory. It returns the manifest to send.
// With Options.Journal, an Upload cut short (cancelled, crashed, killed)
// continues where it stopped when called again with the same input.
func Upload(ctx context.Context, store feed.BulkStore, r io.Reader, name, mediaType string, opts Options) (*Manifest, error) {
	opts = opts.withDefaults()
	if mediaType == "" {
		mediaType = "application/octet-stream"
	}
	if err := CheckName(name); err != nil {
		return nil, err
	}
	if err := checkMediaType(mediaType); err != nil {
		return nil, err
	}
	j, id, segSize, err := openUploadJournal(opts)
	if err != nil {
		return nil, err
	}
	if j != nil {
		defer j.close()
	}
	m := &Manifest{Name: name, MediaType: mediaType, SegmentSize: segSize, Key: id.String()}
	u := &uploader{store: store, recipient: id.Recipient(), journal: j, opts: opts, refs: map[int][]byte{}}
	if err := u.run(ctx, r, m); err != nil {
		return nil, err
	}
	if err := m.Check(); err != nil {
		return nil, err
	}
	return m, nil
}

// RemoveJournal deletes an upload journal (and with it the only copy of the
// file's key outside the manifest). Missing is fine.
func RemoveJournal(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// openUploadJournal returns the journal (nil without Options.Journal), the
// file's key and segment size: the journal's if it has them, else fresh.
func openUploadJournal(opts Options) (*journal, *age.X25519Identity, int64, error) {
	fresh, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, nil, 0, err
	}
	if opts.SegmentSize < MinSegmentSize || opts.SegmentSize > MaxSegmentSize || opts.SegmentSize%MinSegmentSize != 0 {
		return nil, nil, 0, fmt.Errorf("attach: segment size %d is not a multiple of %d in [%d, %d]",
			opts.SegmentSize, MinSegmentSize, MinSegmentSize, MaxSegmentSize)
	}
	if opts.Journal == "" {
		return nil, fresh, opts.SegmentSize, nil
	}
	j, err := openJournal(opts.Journal, journalHeader{V: 1, Key: fresh.String(), SegmentSize: opts.SegmentSize},
		func(h journalHeader) bool {
			_, err := age.ParseX25519Identity(h.Key)
			return err == nil && h.SegmentSize >= MinSegmentSize && h.SegmentSize <= MaxSegmentSize && h.SegmentSize%MinSegmentSize == 0
		})
	if err != nil {
		return nil, nil, 0, err
	}
	id, _ := age.ParseX25519Identity(j.header.Key)
	return j, id, j.header.SegmentSize, nil
}

type uploader struct {
	store     feed.BulkStore
	recipient age.Recipient
	journal   *journal
	opts      Options

	mu   sync.Mutex
	refs map[int][]byte
	err  error
}

// run reads segments in order, hashing the whole, and hands each one not
// already in the journal to one of Parallel workers.
func (u *uploader) run(ctx context.Context, r io.Reader, m *Manifest) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	free := make(chan []byte, u.opts.Parallel+1)
	for range u.opts.Parallel + 1 {
		free <- make([]byte, m.SegmentSize)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	whole := sha256.New()
	for i := 0; ; i++ {
		var buf []byte
		select {
		case buf = <-free:
		case <-ctx.Done():
			return u.firstErr(ctx.Err())
		}
		n, err := io.ReadFull(r, buf)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("attach: reading the file: %w", err)
		}
		whole.Write(buf[:n])
		if m.Size += int64(n); m.Size > u.opts.MaxSize {
			return fmt.Errorf("%w: over %d bytes", ErrTooLarge, u.opts.MaxSize)
		}
		if i >= MaxSegments {
			return fmt.Errorf("%w: over %d segments", ErrTooLarge, MaxSegments)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { free <- buf }()
			if err := u.segment(ctx, i, buf[:n]); err != nil {
				u.fail(err)
				cancel()
			}
		}()
		if n < len(buf) {
			break
		}
	}
	wg.Wait()
	if err := u.firstErr(nil); err != nil {
		return err
	}
	whole.Sum(m.SHA256[:0])
	m.Segments = make([][]byte, len(u.refs))
	for i := range m.Segments {
		m.Segments[i] = u.refs[i]
	}
	return nil
}

// segment uploads plaintext segment i unless the journal has it already.
func (u *uploader) segment(ctx context.Context, i int, plain []byte) error {
	// The segment's own digest is only for the journal.
	var sum [sha256.Size]byte
	if u.journal != nil {
		sum = sha256.Sum256(plain)
		if e, ok := u.journal.get(i); ok && bytes.Equal(e.SHA256, sum[:]) && feed.CheckRef(e.Ref) == nil {
			u.setRef(i, e.Ref)
			u.opts.progress(int64(len(plain)))
			return nil
		}
	}
	ref, err := retry(ctx, u.opts.Attempts, func() ([]byte, error) {
		enc, err := age.EncryptReader(bytes.NewReader(plain), u.recipient)
		if err != nil {
			return nil, err
		}
		return u.store.PutBulk(ctx, enc)
	})
	if err != nil {
		return fmt.Errorf("attach: upload segment %d: %w", i, err)
	}
	if u.journal != nil {
		if err := u.journal.record(journalEntry{I: i, SHA256: sum[:], Ref: ref}); err != nil {
			return err
		}
	}
	u.setRef(i, ref)
	u.opts.progress(int64(len(plain)))
	return nil
}

func (u *uploader) setRef(i int, ref []byte) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.refs[i] = ref
}

func (u *uploader) fail(err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.err == nil {
		u.err = err
	}
}

// firstErr returns the first worker error, else fallback.
func (u *uploader) firstErr(fallback error) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.err != nil {
		return u.err
	}
	return fallback
}

// retry calls fn up to attempts times while it fails transiently (the store
// unreachable, a connection dropped), with a short pause between tries.
func retry[T any](ctx context.Context, attempts int, fn func() (T, error)) (T, error) {
	var zero T
	for a := 1; ; a++ {
		v, err := fn()
		if err == nil || a >= attempts || !transient(err) || ctx.Err() != nil {
			if ctx.Err() != nil && err != nil {
				return zero, errors.Join(ctx.Err(), err)
			}
			return v, err
		}
		select {
		case <-ctx.Done():
			return zero, ctx.Err()
		case <-time.After(time.Duration(a) * 200 * time.Millisecond):
		}
	}
}

// transient reports failures worth another try: not a missing object, a
// damaged one, a malformed reference or the caller giving up.
func transient(err error) bool {
	for _, permanent := range []error{feed.ErrNotFound, feed.ErrBadRef, ErrIntegrity, context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, permanent) {
			return false
		}
	}
	return true
}
