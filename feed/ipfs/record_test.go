package ipfs

import (
	"bytes"
	"errors"
	"flag"
	"testing"
	"time"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/feed/feedtest"
	"github.com/deaddrop/deaddrop/internal/fuzzseed"
	"github.com/ipfs/boxo/ipns"
)

var update = flag.Bool("update", false, "rewrite the fuzz seed corpus in testdata/fuzz")

func TestRecordRoundTripDeterministic(t *testing.T) {
	slot, chunk := feedtest.RandomSlot(t), feedtest.RandomChunk(t)
	k := keyFor(slot)
	a, err := buildRecord(k, chunk, RecordEOL)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := buildRecord(k, chunk, RecordEOL)
	if !bytes.Equal(a, b) {
		t.Fatal("records of the same chunk differ: republish would not be idempotent")
	}
	if len(a) > ipns.MaxRecordSize {
		t.Fatalf("record of %d bytes is over the limit", len(a))
	}
	got, err := parseRecord(k.name, a, time.Now())
	if err != nil || !bytes.Equal(got, chunk) {
		t.Fatalf("round trip: %v", err)
	}
	t.Logf("record size %d bytes for a %d-byte chunk", len(a), feed.ChunkSize)
}

func TestRecordRejections(t *testing.T) {
	slot, chunk := feedtest.RandomSlot(t), feedtest.RandomChunk(t)
	k := keyFor(slot)
	good, _ := buildRecord(k, chunk, RecordEOL)
	otherKey := keyFor(feedtest.RandomSlot(t))
	foreign, _ := buildRecord(otherKey, chunk, RecordEOL)
	expired, _ := buildRecord(k, chunk, time.Now().Add(-time.Hour))
	short, _ := buildRecord(k, chunk[:100], RecordEOL)
	flipped := bytes.Clone(good)
	flipped[len(flipped)-10] ^= 1
	cases := map[string][]byte{
		"signed by another key": foreign,
		"expired":               expired,
		"short chunk":           short,
		"flipped bit":           flipped,
		"oversize":              bytes.Repeat([]byte{0}, ipns.MaxRecordSize+1),
		"empty":                 nil,
	}
	for name, rec := range cases {
		if _, err := parseRecord(k.name, rec, time.Now()); !errors.Is(err, errBadRecord) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzParseRecord(f *testing.F) {
	slot := feed.Slot{9}
	k := keyFor(slot)
	good, _ := buildRecord(k, make([]byte, feed.ChunkSize), RecordEOL)
	fuzzseed.Add(f, "FuzzParseRecord", *update, good, []byte{}, good[:100])
	f.Fuzz(func(t *testing.T, b []byte) {
		if c, err := parseRecord(k.name, b, time.Now()); err == nil && len(c) != feed.ChunkSize {
			t.Fatal("accepted a chunk of the wrong size")
		}
	})
}
