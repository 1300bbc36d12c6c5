package sync

import (
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// History entries of long and file messages. A text message that fits one
// chunk is logged as before (Body is its text). Other content (the KindData
// or KindFile body of content.go) is logged whole when it fits one entry
// (Kind set, Parts 0), else cut into Parts entries of at most logPartMax
// bytes, which a reader gathers (bucketLogParts) and inserts once all are
// read: a restored history never shows part of a message. The attachment
// itself is not in the log, only its manifest: restore and device join
// fetch files on demand, when the user saves one.

// logPartMax is the most content one history entry carries: with base64 and
// the entry's other fields it fits a block (sealedContentMax).
const logPartMax = 2048

// maxLogParts bounds the entries of one message.
const maxLogParts = (maxContentSize + logPartMax - 1) / logPartMax

func (e *logEntry) validateContent() error {
	switch {
	case e.Kind != 0 && e.Kind != KindData && e.Kind != KindFile:
		return fmt.Errorf("message entry of kind %d", e.Kind)
	case e.Parts == 0 && e.Part == 0:
		if e.Kind != 0 && len(e.Body) > logPartMax {
			return errors.New("message entry too long")
		}
		return nil
	case e.Kind == 0 || e.Parts < 2 || e.Parts > maxLogParts || e.Part < 0 || e.Part >= e.Parts || len(e.Body) > logPartMax:
		return fmt.Errorf("message entry part %d of %d", e.Part, e.Parts)
	}
	return nil
}

// stageMessage stages the history entries of message m.
func (a *Account) stageMessage(tx *bolt.Tx, contact string, m *messageRecord) error {
	for _, e := range messageEntries(contact, m) {
		if err := a.stage(tx, e); err != nil {
			return err
		}
	}
	return nil
}

func messageEntries(contact string, m *messageRecord) []*logEntry {
	if m.Attach == nil && len(m.Body) <= MaxMessageSize {
		return []*logEntry{messageEntry(contact, m)}
	}
	ct := &content{Text: m.Body, Attach: m.Attach}
	whole := ct.marshal()
	if len(whole) <= logPartMax {
		e := messageEntry(contact, m)
		e.Kind, e.Body = ct.kind(), whole
		return []*logEntry{e}
	}
	n := (len(whole) + logPartMax - 1) / logPartMax
	entries := make([]*logEntry, n)
	for i := range n {
		e := messageEntry(contact, m)
		e.Kind, e.Part, e.Parts = ct.kind(), i, n
		e.Body = whole[i*logPartMax : min(len(whole), (i+1)*logPartMax)]
		entries[i] = e
	}
	return entries
}

// entryContent returns the content of a msg entry, or nil while the other
// entries of a long message are still to be read.
func entryContent(tx *bolt.Tx, e *logEntry) (*content, error) {
	if e.Kind == 0 {
		return &content{Text: string(e.Body)}, nil
	}
	if e.Parts == 0 {
		return parseContent(e.Kind, e.Body)
	}
	b := tx.Bucket(bucketLogParts)
	key := append(contactPrefix(e.Contact), e.Origin...)
	rec := &partialRecord{Kind: e.Kind, Count: e.Parts, Origin: e.Origin, Frags: map[int][]byte{}}
	if data := b.Get(key); data != nil {
		if err := decodeRecord("history message part", data, rec); err != nil {
			return nil, err
		}
	}
	if rec.Kind != e.Kind || rec.Count != e.Parts {
		return nil, fmt.Errorf("%w: history entries of one message disagree", ErrBadPart)
	}
	rec.Frags[e.Part] = e.Body
	if len(rec.Frags) < rec.Count {
		return nil, putRecord(b, key, rec)
	}
	var whole []byte
	for i := range rec.Count {
		whole = append(whole, rec.Frags[i]...)
	}
	if err := b.Delete(key); err != nil {
		return nil, err
	}
	return parseContent(rec.Kind, whole)
}
