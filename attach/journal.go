package attach

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// A journal is a small append-only file of JSON lines: a header, then one
// line per segment that is durably done. It is rewritten whole (temporary
// file, fsync, rename) when opened, which drops a line torn by a crash, and
// every later line is appended and synced before the segment counts as
// done. The upload journal holds the file's key, so it lives with the
// account's state and is created 0600.

type journalHeader struct {
	V           int    `json:"v"`
	Key         string `json:"key,omitempty"`
	SegmentSize int64  `json:"segment_size,omitempty"`
	Manifest    string `json:"manifest,omitempty"`
}

type journalEntry struct {
	I      int    `json:"i"`
	SHA256 []byte `json:"sha256,omitempty"` // plaintext digest (upload)
	Ref    []byte `json:"ref,omitempty"`    // bulk reference (upload)
}

type journal struct {
	path string

	mu      sync.Mutex
	f       *os.File
	header  journalHeader
	entries map[int]journalEntry
}

// openJournal loads the journal at path, or starts one with fresh as its
// header. A header that does not match (match returns false) starts over.
func openJournal(path string, fresh journalHeader, match func(journalHeader) bool) (*journal, error) {
	j := &journal{path: path, header: fresh, entries: map[int]journalEntry{}}
	if err := j.load(match); err != nil {
		return nil, err
	}
	if err := j.rewrite(); err != nil {
		return nil, fmt.Errorf("attach: journal %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("attach: journal: %w", err)
	}
	j.f = f
	return j, nil
}

func (j *journal) load(match func(journalHeader) bool) error {
	data, err := os.ReadFile(j.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("attach: journal: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	if !sc.Scan() {
		return nil
	}
	var h journalHeader
	if json.Unmarshal(sc.Bytes(), &h) != nil || h.V != 1 || !match(h) {
		return nil // not ours, or torn before the header was whole: start over
	}
	j.header = h
	for sc.Scan() {
		var e journalEntry
		if json.Unmarshal(sc.Bytes(), &e) != nil || e.I < 0 {
			break // a line torn by a crash ends the journal
		}
		j.entries[e.I] = e
	}
	return nil
}

// rewrite replaces the journal file with its current contents, atomically.
func (j *journal) rewrite() error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.Encode(j.header)
	for _, e := range j.entries {
		enc.Encode(e)
	}
	tmp, err := os.CreateTemp(filepath.Dir(j.path), ".journal-*")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(buf.Bytes())
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), j.path); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return syncDir(filepath.Dir(j.path))
}

func (j *journal) get(i int) (journalEntry, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	e, ok := j.entries[i]
	return e, ok
}

// record appends es and syncs them, in one write and one fsync: after
// record returns, those segments are done even if the process dies (a
// write torn by a crash ends the journal at the last whole line).
func (j *journal) record(es ...journalEntry) error {
	var lines []byte
	for _, e := range es {
		line, _ := json.Marshal(e)
		lines = append(append(lines, line...), '\n')
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, err := j.f.Write(lines); err != nil {
		return fmt.Errorf("attach: journal: %w", err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("attach: journal: %w", err)
	}
	for _, e := range es {
		j.entries[e.I] = e
	}
	return nil
}

func (j *journal) close() error { return j.f.Close() }

// remove closes and deletes the journal.
func (j *journal) remove() error {
	j.f.Close()
	return os.Remove(j.path)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
