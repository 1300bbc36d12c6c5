package sync

import (
	"bytes"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Reassembly of long messages. Parts are delivered in sequence order (the
// session holds anything after a gap), and a sender queues all parts of one
// message in one transaction, so they arrive as consecutive sequence
// numbers: the reader keeps at most one message in progress per session,
// checks each part against it, and inserts the message into the history in
// the transaction that delivers its last part. A missing part keeps the
// message invisible; a part that disagrees drops it, reported as a problem.

// partialRecord is a long message being reassembled: from a session's
// parts (bucketParts) or from history entries (bucketLogParts).
type partialRecord struct {
	Kind   Kind   `json:"kind"`
	Count  int    `json:"count"`
	Total  int    `json:"total,omitempty"`
	Next   int    `json:"next,omitempty"` // session parts: the index expected next
	Origin []byte `json:"origin"`
	Data   []byte `json:"data,omitempty"`
	// Frags are history fragments by index (a log's entries may be sorted).
	Frags map[int][]byte `json:"frags,omitempty"`
}

func (p *partialRecord) validate() error {
	switch {
	case p.Kind != KindData && p.Kind != KindFile:
		return fmt.Errorf("kind %d", p.Kind)
	case p.Count < 2 || p.Count > MaxParts:
		return fmt.Errorf("%d parts", p.Count)
	case p.Next > p.Count || len(p.Data) > maxContentSize || len(p.Frags) > p.Count:
		return errors.New("inconsistent progress")
	}
	return nil
}

// receiveContent returns the content a KindData, KindFile or KindPart
// envelope completes, or nil when there is nothing to show yet (a part) or
// the message is malformed (reported with a.problem, never delivered).
func (a *Account) receiveContent(tx *bolt.Tx, c *convRecord, env *envelope) (*content, error) {
	if env.Kind == KindData {
		return &content{Text: string(env.Body)}, nil
	}
	if env.Kind == KindFile {
		ct, err := parseContent(KindFile, env.Body)
		if err != nil {
			a.problem(fmt.Errorf("%s: message #%d: %w", c.Name, env.Seq, err))
			return nil, nil
		}
		return ct, nil
	}
	ct, err := reassemble(tx.Bucket(bucketParts), []byte(c.Name), env)
	if err != nil {
		if errors.Is(err, ErrCorruptState) {
			return nil, err
		}
		a.problem(fmt.Errorf("%s: message #%d: %w", c.Name, env.Seq, err))
		return nil, nil
	}
	return ct, nil
}

// reassemble adds the part env carries to the session's message in
// progress, stored under key in b, and returns the content once complete.
func reassemble(b *bolt.Bucket, key []byte, env *envelope) (*content, error) {
	p, err := parsePart(env.Body)
	if err != nil {
		b.Delete(key)
		return nil, err
	}
	var rec *partialRecord
	if data := b.Get(key); data != nil {
		rec = new(partialRecord)
		if err := decodeRecord("message part", data, rec); err != nil {
			return nil, err
		}
	}
	var abandoned error
	if p.Index == 0 {
		if rec != nil {
			abandoned = fmt.Errorf("%w: a long message stopped after %d of %d parts", ErrBadPart, rec.Next, rec.Count)
		}
		rec = &partialRecord{Kind: p.Kind, Count: p.Count, Total: p.Total, Origin: env.Origin[:]}
	}
	switch {
	case rec == nil:
		return nil, fmt.Errorf("%w: part %d of %d without the parts before it", ErrBadPart, p.Index, p.Count)
	case p.Index != rec.Next || p.Kind != rec.Kind || p.Count != rec.Count || p.Total != rec.Total || !bytes.Equal(env.Origin[:], rec.Origin):
		b.Delete(key)
		return nil, fmt.Errorf("%w: part %d of %d does not continue the message in progress (part %d of %d)", ErrBadPart, p.Index, p.Count, rec.Next, rec.Count)
	}
	rec.Data = append(rec.Data, p.Data...)
	rec.Next++
	if rec.Next < rec.Count {
		return nil, errors.Join(abandoned, putRecord(b, key, rec))
	}
	if err := b.Delete(key); err != nil {
		return nil, err
	}
	ct, err := parseContent(rec.Kind, rec.Data)
	return ct, errors.Join(abandoned, err)
}
