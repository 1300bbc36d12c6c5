package sync

import (
	"bytes"
	"flag"
	"testing"
	"time"

	"github.com/deaddrop/deaddrop/internal/fuzzseed"
)

var update = flag.Bool("update", false, "rewrite the fuzz seed corpus in testdata/fuzz")

// FuzzParseEnvelope: any plaintext that survived the ratchet is decoded
// without panicking, and whatever decodes re-encodes to the same bytes.
func FuzzParseEnvelope(f *testing.F) {
	fuzzseed.Add(f, "FuzzParseEnvelope", *update,
		(&envelope{Kind: KindData, Seq: 1, Ack: 0, Sent: time.UnixMilli(1700000000000), Body: []byte("hi")}).marshal(),
		(&envelope{Kind: KindAck, Seq: 9, Ack: 7, Sent: time.UnixMilli(1)}).marshal(),
		(&envelope{Kind: KindHello, Seq: 1, Body: []byte("bob")}).marshal(),
		[]byte{1, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := parseEnvelope(b)
		if err != nil {
			return
		}
		if !bytes.Equal(e.marshal(), b) {
			t.Fatalf("re-encoding differs")
		}
	})
}

// FuzzDecodeRecords: a damaged state record is an error naming the record,
// never a panic, and never accepted when it breaks an invariant.
func FuzzDecodeRecords(f *testing.F) {
	fuzzseed.Add(f, "FuzzDecodeRecords", *update,
		sealValue([]byte(`{"name":"bob","session":"AQ==","next_seq":3,"peer_acked":1,"recv_contig":2}`)),
		sealValue([]byte(`{"seq":1,"kind":1,"slot":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","chunk":""}`)),
		sealValue([]byte(`{"local":1,"dir":2,"seq":1,"body":"hi"}`)),
		sealValue([]byte(`{"pending":"AQ==","label":"bob"}`)),
		sealValue([]byte(`{`)))
	f.Fuzz(func(t *testing.T, b []byte) {
		var c convRecord
		if decodeRecord("contact", b, &c) == nil && c.PeerAcked >= c.NextSeq {
			t.Fatal("accepted an ack beyond what was sent")
		}
		var o outboxRecord
		if decodeRecord("outbox", b, &o) == nil && len(o.Chunk) != 4096 {
			t.Fatal("accepted a chunk of the wrong size")
		}
		var m messageRecord
		_ = decodeRecord("message", b, &m)
		var i inviteRecord
		_ = decodeRecord("invite", b, &i)
	})
}
