package sync

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func partEnvelope(p *part, origin byte) *envelope {
	e := &envelope{Kind: KindPart, Seq: 1, Body: p.marshal()}
	e.Origin[0] = origin
	return e
}

// Parts whose header cannot be honest are refused on their own: counts
// over MaxParts or disagreeing with the total, indexes past the count, a
// total over the limit, a part of the wrong length.
func TestHostileParts(t *testing.T) {
	full := make([]byte, partDataMax)
	cases := []struct {
		name string
		p    part
	}{
		{"count 65535", part{Kind: KindData, Index: 0, Count: 65535, Total: 65535 * partDataMax, Data: full}},
		{"count 1", part{Kind: KindData, Index: 0, Count: 1, Total: partDataMax, Data: full}},
		{"count 0", part{Kind: KindData, Index: 0, Count: 0, Total: 2 * partDataMax, Data: full}},
		{"index past count", part{Kind: KindData, Index: 3, Count: 3, Total: 3 * partDataMax, Data: full}},
		{"count disagrees with total", part{Kind: KindData, Index: 0, Count: 10, Total: 2 * partDataMax, Data: full}},
		{"total over limit", part{Kind: KindData, Index: 0, Count: 60, Total: 60 * partDataMax, Data: full}},
		{"total 4 GiB", part{Kind: KindData, Index: 0, Count: 2, Total: 1<<32 - 1, Data: full}},
		{"short part", part{Kind: KindData, Index: 0, Count: 2, Total: 2 * partDataMax, Data: full[:10]}},
		{"whole of kind ack", part{Kind: KindAck, Index: 0, Count: 2, Total: 2 * partDataMax, Data: full}},
		{"whole of kind part", part{Kind: KindPart, Index: 0, Count: 2, Total: 2 * partDataMax, Data: full}},
	}
	for _, c := range cases {
		if _, err := parsePart(c.p.marshal()); !errors.Is(err, ErrBadPart) {
			t.Errorf("%s: %v, want ErrBadPart", c.name, err)
		}
	}
}

// Reassembly keeps one message in progress per session and drops it when
// a part does not continue it.
func TestReassembly(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	text := strings.Repeat("abc", 3000) // 9,000 bytes: 4 parts
	_, bodies := (&content{Text: text}).split()
	if len(bodies) != 4 {
		t.Fatalf("%d parts", len(bodies))
	}
	parts := make([]*part, len(bodies))
	for i, b := range bodies {
		if parts[i], err = parsePart(b); err != nil {
			t.Fatal(err)
		}
	}
	feed := func(b *bolt.Bucket, seq []int, origin byte) (*content, error) {
		var ct *content
		var err error
		for _, i := range seq {
			if ct, err = reassemble(b, []byte("bob"), partEnvelope(parts[i], origin)); err != nil {
				return nil, err
			}
		}
		return ct, nil
	}
	db.Update(func(tx *bolt.Tx) error {
		b, _ := tx.CreateBucket(bucketParts)
		if ct, err := feed(b, []int{0, 1, 2, 3}, 1); err != nil || ct == nil || ct.Text != text {
			t.Fatalf("in order: %v", err)
		}
		if ct, err := feed(b, []int{0, 1, 2}, 1); err != nil || ct != nil {
			t.Fatalf("three of four: %v %v", ct, err)
		}
		if _, err := feed(b, []int{3}, 2); !errors.Is(err, ErrBadPart) {
			t.Fatalf("last part of another message: %v", err)
		}
		if b.Get([]byte("bob")) != nil {
			t.Fatal("message in progress kept after a part that does not continue it")
		}
		if _, err := feed(b, []int{2}, 1); !errors.Is(err, ErrBadPart) {
			t.Fatalf("part without its predecessors: %v", err)
		}
		if _, err := feed(b, []int{0, 2}, 1); !errors.Is(err, ErrBadPart) {
			t.Fatalf("skipped part: %v", err)
		}
		// A restart at part 0 abandons the message in progress (reported)
		// and reassembles the new one.
		feed(b, []int{0, 1}, 3)
		if _, err := feed(b, []int{0}, 4); !errors.Is(err, ErrBadPart) {
			t.Fatalf("restart not reported: %v", err)
		}
		if ct, err := feed(b, []int{1, 2, 3}, 4); err != nil || ct == nil || ct.Text != text {
			t.Fatalf("after a restart: %v", err)
		}
		return nil
	})
}

func TestContentRoundTrip(t *testing.T) {
	for _, c := range []*content{
		{Text: "hi"},
		{Text: strings.Repeat("é", MaxTextSize/2)},
		{Attach: []byte{1}, Text: ""},
		{Attach: make([]byte, MaxAttachmentSize), Text: strings.Repeat("x", MaxTextSize)},
	} {
		kinds, bodies := c.split()
		var whole []byte
		kind := kinds[0]
		if kind == KindPart {
			for _, b := range bodies {
				p, err := parsePart(b)
				if err != nil {
					t.Fatal(err)
				}
				kind, whole = p.Kind, append(whole, p.Data...)
			}
		} else {
			whole = bodies[0]
		}
		got, err := parseContent(kind, whole)
		if err != nil || got.Text != c.Text || string(got.Attach) != string(c.Attach) {
			t.Fatalf("%d parts: %v", len(bodies), err)
		}
		if len(bodies) > MaxParts {
			t.Fatalf("%d parts", len(bodies))
		}
	}
}
