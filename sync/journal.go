package sync

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	gosync "sync"
	"time"

	"github.com/deaddrop/deaddrop/ratchet"
	bolt "go.etcd.io/bbolt"
)

// The send journal: what makes a send durable before its put in one disk
// flush, where a commit takes two.
//
// A send encrypts inside a write transaction, which advances the session's
// sending chain, and the store must not see the chunk before that advance
// is durable: after a crash the account would encrypt another message under
// the same message key into the same slot. A bbolt commit flushes the disk
// twice (its pages, then its meta page). So Send writes what its transaction
// did that cannot be done again the same way (the content, the message's
// origin and time, and each encryption's output with the session state
// before and after it) to this journal, flushes it once, starts the puts,
// and lets the commit run beside them. If the commit never lands (a crash, a
// failed write), the transaction is done again from the journal, on the same
// state, with the recorded encryptions in place of new ones: by the send
// itself when its commit fails, else when the account is next opened.
//
// The file holds one record, the last send's: the next send's transaction
// begins only after this one's commit has ended (bbolt has one writer).
const journalFile = "send.journal"

// journalMagic starts a record; a record is the magic, the payload's length
// and CRC-32C (4 bytes each, big-endian) and the payload (JSON).
var journalMagic = []byte("ddj1")

const journalHeader = 12

// journalPrealloc is the size the file starts with, so that an ordinary
// record rewrites allocated blocks and the flush need not write the inode.
const journalPrealloc = 32 << 10

// journalRecord is one send, as its transaction saw it.
type journalRecord struct {
	Contact  string
	Text     string `json:",omitempty"`
	Attach   []byte `json:",omitempty"`
	ClientID string `json:",omitempty"`
	Origin   []byte
	Sent     time.Time
	Seals    []journalSeal
}

// journalSeal is one encryption: the session that made it (its state before,
// by hash, and after), what it encrypted (by hash) and its output.
type journalSeal struct {
	Conv   string
	Seq    uint64 // the envelope's sequence number
	Before [32]byte
	Plain  [32]byte
	After  []byte
	Slot   []byte
	Chunk  []byte
}

type journal struct {
	f      *os.File
	noSync bool
}

func openJournal(dir string, noSync bool) (*journal, error) {
	path := filepath.Join(dir, journalFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("send journal %s: %w", path, err)
	}
	j := &journal{f: f, noSync: noSync}
	if fi, err := f.Stat(); err == nil && fi.Size() < journalPrealloc {
		if err := f.Truncate(journalPrealloc); err != nil {
			f.Close()
			return nil, fmt.Errorf("send journal %s: %w", path, err)
		}
		if err := j.sync(true); err != nil {
			f.Close()
			return nil, fmt.Errorf("send journal %s: %w", path, err)
		}
	}
	return j, nil
}

func (j *journal) close() error { return j.f.Close() }

func (j *journal) sync(full bool) error {
	if j.noSync {
		return nil
	}
	if full {
		return j.f.Sync()
	}
	return datasync(j.f)
}

// write replaces the record with rec and makes it durable.
func (j *journal) write(rec *journalRecord) error {
	payload, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	buf := make([]byte, journalHeader, journalHeader+len(payload))
	copy(buf, journalMagic)
	binary.BigEndian.PutUint32(buf[4:], uint32(len(payload)))
	binary.BigEndian.PutUint32(buf[8:], crc32.Checksum(payload, castagnoli))
	buf = append(buf, payload...)
	if _, err := j.f.WriteAt(buf, 0); err != nil {
		return fmt.Errorf("send journal: %w", err)
	}
	if err := j.sync(false); err != nil {
		return fmt.Errorf("send journal: %w", err)
	}
	return nil
}

// read returns the record, or nil when there is none: an empty file, or a
// record whose write never finished (a crash before its flush, so before
// any put it allowed).
func (j *journal) read() (*journalRecord, error) {
	head := make([]byte, journalHeader)
	if _, err := j.f.ReadAt(head, 0); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, fmt.Errorf("send journal: %w", err)
	}
	if !bytes.Equal(head[:4], journalMagic) {
		return nil, nil
	}
	n := binary.BigEndian.Uint32(head[4:])
	if n > maxJournalRecord {
		return nil, nil
	}
	payload := make([]byte, n)
	if _, err := j.f.ReadAt(payload, journalHeader); err != nil {
		return nil, nil // torn: the file ends inside the record
	}
	if crc32.Checksum(payload, castagnoli) != binary.BigEndian.Uint32(head[8:]) {
		return nil, nil
	}
	rec := new(journalRecord)
	if err := json.Unmarshal(payload, rec); err != nil {
		return nil, fmt.Errorf("%w: send journal: a record with a valid checksum does not decode: %v", ErrCorruptState, err)
	}
	return rec, nil
}

// maxJournalRecord bounds a record: the longest message's chunks for a
// contact with the most devices, with room to spare.
const maxJournalRecord = 64 << 20

// sealRecorder encrypts with the session as usual and records each
// encryption in rec.
func (a *Account) sealRecorder(rec *journalRecord) sealFunc {
	return func(c *convRecord, s *ratchet.Session, seq uint64, plain []byte) (ratchet.Sealed, error) {
		before, err := s.MarshalBinary()
		if err != nil {
			return ratchet.Sealed{}, err
		}
		sealed, err := s.Encrypt(plain, a.opts.Rand)
		if err != nil {
			return sealed, err
		}
		after, err := s.MarshalBinary()
		if err != nil {
			return sealed, err
		}
		rec.Seals = append(rec.Seals, journalSeal{
			Conv: c.Name, Seq: seq, Before: sha256.Sum256(before), Plain: sha256.Sum256(plain),
			After: after, Slot: sealed.Slot[:], Chunk: sealed.Chunk,
		})
		return sealed, nil
	}
}

// errJournalMismatch: a transaction done again from the journal did not
// ask for the encryptions the journal recorded. It never should (the state
// is the one the send saw); if it does, nothing is applied.
var errJournalMismatch = errors.New("send journal: the send done again differs from the one recorded")

// sealReplayer hands out the recorded encryptions, in order, checking that
// each is asked for by the same session in the same state for the same
// plaintext.
func sealReplayer(seals []journalSeal) (sealFunc, func() error) {
	next := 0
	seal := func(c *convRecord, s *ratchet.Session, seq uint64, plain []byte) (ratchet.Sealed, error) {
		if next == len(seals) {
			return ratchet.Sealed{}, fmt.Errorf("%w: more encryptions than recorded", errJournalMismatch)
		}
		r := seals[next]
		next++
		before, err := s.MarshalBinary()
		if err != nil {
			return ratchet.Sealed{}, err
		}
		if r.Conv != c.Name || r.Seq != seq || r.Before != sha256.Sum256(before) || r.Plain != sha256.Sum256(plain) || len(r.Slot) != len(ratchet.Sealed{}.Slot) {
			return ratchet.Sealed{}, fmt.Errorf("%w: encryption %d (%s, message %d)", errJournalMismatch, next, c.Name, seq)
		}
		after, err := ratchet.UnmarshalSession(r.After)
		if err != nil {
			return ratchet.Sealed{}, fmt.Errorf("%w: send journal: session state: %v", ErrCorruptState, err)
		}
		*s = *after
		var sealed ratchet.Sealed
		copy(sealed.Slot[:], r.Slot)
		sealed.Chunk = r.Chunk
		return sealed, nil
	}
	done := func() error {
		if next != len(seals) {
			return fmt.Errorf("%w: %d of %d recorded encryptions used", errJournalMismatch, next, len(seals))
		}
		return nil
	}
	return seal, done
}

// redoJournal does the journal's send again if its commit never landed:
// its first encryption's session has not moved past it. Called by Open
// before anything else writes, and by a send whose commit failed.
func (a *Account) redoJournal() error {
	rec, err := a.journal.read()
	if err != nil || rec == nil || len(rec.Seals) == 0 {
		return err
	}
	first := rec.Seals[0]
	return a.db.Update(func(tx *bolt.Tx) error {
		c, err := loadConv(tx, first.Conv)
		if errors.Is(err, ErrUnknownContact) {
			return nil // the conversation was dropped since: the send landed before that
		}
		if err != nil {
			return err
		}
		switch {
		case c.NextSeq > first.Seq:
			return nil // landed
		case c.NextSeq < first.Seq:
			return fmt.Errorf("%w: the send journal records message %d to %s, but the state file's next is %d (was the state file replaced by an older copy?)", ErrCorruptState, first.Seq, first.Conv, c.NextSeq)
		}
		if v, ok := unsettledSends.Load(tx.DB()); ok {
			v.(*unsettledSend).redo = tx // written under the write lock, read by its holders
		}
		seal, done := sealReplayer(rec.Seals)
		a.sealer = seal
		defer func() { a.sealer = nil }()
		ct := &content{Text: rec.Text, Attach: rec.Attach}
		if _, err := a.sendTx(tx, rec.Contact, ct, SendOptions{ClientID: rec.ClientID}, rec.Origin, rec.Sent); err != nil {
			return fmt.Errorf("send journal: doing the send to %s again: %w", rec.Contact, err)
		}
		return done()
	})
}

// afterJournal, set by tests only, runs in a send's transaction once the
// puts may start; an error makes the commit fail.
var afterJournal func() error

// sealFunc encrypts plain with session s of conversation c as message seq.
type sealFunc func(c *convRecord, s *ratchet.Session, seq uint64, plain []byte) (ratchet.Sealed, error)

// encrypt is how a transaction encrypts a message: with the send's
// recorder or replayer when one is set (a.sealer is only set and read
// inside write transactions, which bbolt runs one at a time).
func (a *Account) encrypt(c *convRecord, s *ratchet.Session, seq uint64, plain []byte) (ratchet.Sealed, error) {
	if a.sealer != nil {
		return a.sealer(c, s, seq, plain)
	}
	return s.Encrypt(plain, a.opts.Rand)
}

// Unsettled sends: a send whose copies may be in the store while its commit
// has not landed. From the moment its puts may start until its commit (or
// the redo from the journal) lands, no other transaction may save the
// sessions it encrypted with: one that did would encrypt under a key the
// copies used, or change a state the redo must find as it was. saveConv
// checks here, so every writer of session state does.
type unsettledSend struct {
	rec  *journalRecord
	redo *bolt.Tx // the transaction doing the send again, which may
}

var unsettledSends gosync.Map // *bolt.DB → *unsettledSend

// errUnsettledSend: see unsettledSend.
var errUnsettledSend = errors.New("a send's commit failed after its copies were put, and it is not done again yet from the send journal: this conversation's state is frozen until it is (close and open the account)")

func markUnsettled(tx *bolt.Tx, rec *journalRecord) {
	unsettledSends.Store(tx.DB(), &unsettledSend{rec: rec})
}

func settled(db *bolt.DB, rec *journalRecord) {
	if v, ok := unsettledSends.Load(db); ok && v.(*unsettledSend).rec == rec {
		unsettledSends.CompareAndDelete(db, v)
	}
}

// checkUnsettled refuses to let tx save conversation conv's state while an
// unsettled send used it, unless tx is that send's redo or finds that the
// send's commit landed after all.
func checkUnsettled(tx *bolt.Tx, conv string) error {
	v, ok := unsettledSends.Load(tx.DB())
	if !ok {
		return nil
	}
	u := v.(*unsettledSend)
	if u.redo == tx {
		return nil
	}
	for _, s := range u.rec.Seals {
		if s.Conv != conv {
			continue
		}
		stored, err := loadConv(tx, conv)
		if err == nil && stored.NextSeq > s.Seq {
			unsettledSends.CompareAndDelete(tx.DB(), v) // it landed
			return nil
		}
		return fmt.Errorf("%s: %w", conv, errUnsettledSend)
	}
	return nil
}

// commitGate lets reads wait for the commits of sends that have returned:
// a send returns once its copies are put, possibly before its commit has
// landed, and what it returned must be what a read after it sees.
type commitGate struct {
	mu   gosync.Mutex
	cond *gosync.Cond
	next uint64
	open map[uint64]bool
}

func newCommitGate() *commitGate {
	g := &commitGate{open: map[uint64]bool{}}
	g.cond = gosync.NewCond(&g.mu)
	return g
}

// begin is called with the send's transaction journaled, before the send
// can return; end once its commit (or its redo) has ended.
func (g *commitGate) begin() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	t := g.next
	g.next++
	g.open[t] = true
	return t
}

func (g *commitGate) end(t uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.open, t)
	g.cond.Broadcast()
}

// wait returns once every commit begun before the call has ended (not
// those begun since: a stream of sends does not hold a read off).
func (g *commitGate) wait() {
	g.mu.Lock()
	defer g.mu.Unlock()
	target := g.next
	for g.anyBefore(target) {
		g.cond.Wait()
	}
}

func (g *commitGate) anyBefore(target uint64) bool {
	for t := range g.open {
		if t < target {
			return true
		}
	}
	return false
}

// view is db.View after the commits of the sends that returned before it.
func (a *Account) view(fn func(*bolt.Tx) error) error {
	a.gate.wait()
	return a.db.View(fn)
}

// update is db.Update after those commits. A writer would wait for them
// anyway (bbolt has one write lock), except after a failed commit: then it
// waits for the redo from the journal, which must find the state as the
// send left it. Only the redo uses db.Update itself.
func (a *Account) update(fn func(*bolt.Tx) error) error {
	a.gate.wait()
	return a.db.Update(fn)
}
