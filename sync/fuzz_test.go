package sync

import (
	"bytes"
	"encoding/json"
	"flag"
	"github.com/deaddrop/deaddrop/ratchet"
	"github.com/deaddrop/deaddrop/sync/merkle"
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
		sealValue((&messageRecord{Local: 1, Origin: make([]byte, originSize), Dir: Incoming, Seq: 3, Body: "hi", Sent: time.Unix(1, 2), State: 1, Seen: true}).marshalRecord()),
		sealValue((&messageRecord{Local: 2, Origin: make([]byte, originSize), Dir: Outgoing, Seq: 4, Body: "photo", Attach: []byte{1, 2, 3}, Sent: time.Unix(1, 2), State: 2}).marshalRecord()),
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
		if decodeRecord("message", b, &m) == nil {
			// What decodes re-encodes to a record that decodes the same.
			var again messageRecord
			if err := decodeRecord("message", sealValue(m.marshalRecord()), &again); err != nil {
				t.Fatalf("re-encoded message record: %v", err)
			}
			if again.Body != m.Body || again.Seq != m.Seq || !again.Sent.Equal(m.Sent) || !bytes.Equal(again.Origin, m.Origin) ||
				!bytes.Equal(again.Attach, m.Attach) {
				t.Fatalf("message record changed in a round trip: %+v, %+v", m, again)
			}
		}
		var i inviteRecord
		_ = decodeRecord("invite", b, &i)
	})
}

// FuzzDecodeBlock: a history block's plaintext (it decrypted under the
// history key, so only our devices wrote it, but a bug or a removed device
// could write anything) decodes or is an error, never a panic, and every
// entry it accepts is valid.
func FuzzDecodeBlock(f *testing.F) {
	var prev merkle.Hash
	good, _ := json.Marshal(&block{Device: "0011223344556677", Index: 0, Prev: prev[:], Entries: []*logEntry{
		{Type: "contact", Contact: "bob", MyAnn: make([]byte, 32)},
		{Type: "msg", Contact: "bob", Origin: make([]byte, originSize), Dir: Incoming, Body: []byte("hi")},
		{Type: "state", Contact: "bob", Origin: make([]byte, originSize), State: Read}}})
	fuzzseed.Add(f, "FuzzDecodeBlock", *update, good, []byte(`{"dev":"0011223344556677","i":0,"e":[null]}`), []byte(`{`))
	f.Fuzz(func(t *testing.T, b []byte) {
		blk, err := decodeBlock(b, "0011223344556677", 0, prev)
		if err != nil {
			return
		}
		for _, e := range blk.Entries {
			if e.validate() != nil {
				t.Fatal("accepted an invalid entry")
			}
		}
	})
}

// FuzzVerifyList: a device list from a contact's feed or a meta message is
// accepted only when the account signed it.
func FuzzVerifyList(f *testing.F) {
	id, _ := ratchet.NewIdentity(bytes.NewReader(make([]byte, 64)))
	l := &DeviceList{Account: id.Public().Bytes(), Name: "alice", Version: 1, Recovery: id.Public().Bytes(),
		Devices: []Device{{ID: "0011223344556677", Name: "first", Identity: id.Public().Bytes()}}}
	signed, _ := signList(id, l)
	meta, _ := json.Marshal(metaBody{Device: "0011223344556677", Account: id.Public().Bytes(), Ann: make([]byte, 32), List: signed})
	invite := []byte(`{"from":"0011223344556677","for":"8899aabbccddeeff","invite":"x"}`)
	fuzzseed.Add(f, "FuzzVerifyList", *update, signed, meta, invite, []byte(`{"list":"e30=","sig":""}`), []byte(`{"list":{},"sig":""}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, err := verifyList(b, id.Public()); err == nil && len(got.Devices) == 0 {
			t.Fatal("accepted an empty list")
		}
		parseMeta(b)
		parseAnn(b, id.Public())
	})
}

// FuzzParseCodes: recovery phrases and link codes typed by people.
func FuzzParseCodes(f *testing.F) {
	fuzzseed.Add(f, "FuzzParseCodes", *update, []byte(encodePhrase(make([]byte, 32))),
		[]byte(linkCodePrefix+"aaaaaaaaaaaaaaaaaaaaaaaaaa"), []byte("hello world"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if seed, err := parsePhrase(string(b)); err == nil {
			if p, _ := parsePhrase(encodePhrase(seed)); !bytes.Equal(p, seed) {
				t.Fatal("phrase does not round-trip")
			}
		}
		parseLinkCode(string(b))
	})
}

// FuzzParsePart: any KindPart body decodes without panicking, and whatever
// decodes re-encodes to the same bytes with a length its header implies.
func FuzzParsePart(f *testing.F) {
	_, long := (&content{Text: string(bytes.Repeat([]byte("x"), 6000))}).split()
	_, file := (&content{Attach: bytes.Repeat([]byte{7}, 3000), Text: "cap"}).split()
	fuzzseed.Add(f, "FuzzParsePart", *update, long[0], long[len(long)-1], file[1],
		(&part{Kind: KindData, Index: 0, Count: 65535, Total: 1 << 30, Data: []byte("x")}).marshal(),
		[]byte{1, 0, 0, 0, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parsePart(b)
		if err != nil {
			return
		}
		if !bytes.Equal(p.marshal(), b) {
			t.Fatal("re-encoding differs")
		}
		if p.Count > MaxParts || p.Total > maxContentSize || p.Index >= p.Count {
			t.Fatalf("accepted part %d of %d, %d bytes", p.Index, p.Count, p.Total)
		}
	})
}

// FuzzParseContent: any file message body decodes without panicking, and
// whatever decodes re-encodes to the same bytes.
func FuzzParseContent(f *testing.F) {
	fuzzseed.Add(f, "FuzzParseContent", *update,
		(&content{Attach: []byte{1, 2, 3}, Text: "photo"}).marshal(),
		(&content{Attach: []byte{1}}).marshal(),
		[]byte{0, 0, 0, 9, 1}, []byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := parseContent(KindFile, b)
		if err != nil {
			return
		}
		if !bytes.Equal(c.marshal(), b) {
			t.Fatal("re-encoding differs")
		}
	})
}

// linkFuzzSecret is the code secret of the link fuzz targets' seeds.
var linkFuzzSecret = bytes.Repeat([]byte{0x22}, 16)

// FuzzParseLinkRequest: an opened join request (anyone with the code can
// write one) is accepted only with well-formed keys and a signature by the
// identity it names over this code's slot and its keys; anything else is an
// error, never a panic.
func FuzzParseLinkRequest(f *testing.F) {
	id, _ := ratchet.NewIdentity(bytes.NewReader(bytes.Repeat([]byte{0x88}, 64)))
	eph := bytes.Repeat([]byte{0x99}, 32)
	chunk, err := sealLinkRequest(linkFuzzSecret, id, eph, bytes.NewReader(bytes.Repeat([]byte{0xaa}, 24)))
	if err != nil {
		f.Fatal(err)
	}
	good, err := openContent(secretKey("link request", linkFuzzSecret), linkRequestAD, chunk)
	if err != nil {
		f.Fatal(err)
	}
	fuzzseed.Add(f, "FuzzParseLinkRequest", *update, good,
		[]byte(`{"v":4,"identity":"","seal":"","ephemeral":"","sig":""}`),
		[]byte(`{"v":3}`), []byte(`null`), []byte(`{`))
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := parseLinkRequest(linkFuzzSecret, b)
		if err != nil {
			return
		}
		pub, err := ratchet.ParsePublicIdentity(req.Identity)
		if err != nil || len(req.Seal) != 32 || len(req.Ephemeral) != 32 || req.V != linkVersion {
			t.Fatalf("accepted a request with malformed keys: %+v", req)
		}
		if !pub.Verify(linkRequestSigned(linkFuzzSecret, req.Identity, req.Ephemeral, req.Seal), req.Sig) {
			t.Fatal("accepted a request its identity did not sign")
		}
		if _, err := parseLinkRequest(bytes.Repeat([]byte{0x23}, 16), b); err == nil {
			t.Fatal("a request signed for one code is accepted for another")
		}
	})
}

// FuzzParseLinkAnswer: an opened link answer (sealed to our ephemeral key,
// so only someone holding the code wrote it) is a refusal, an error, or an
// answer whose keys a join can use as they are; never a panic.
func FuzzParseLinkAnswer(f *testing.F) {
	hk := bytes.Repeat([]byte{0x44}, 32)
	acct, _ := ratchet.NewIdentity(bytes.NewReader(bytes.Repeat([]byte{0x01}, 64)))
	good, _ := json.Marshal(&linkAnswer{V: linkVersion, Name: "alice", Device: "0123456789abcdef", Account: acct.Public().Bytes(),
		History: hk, Epochs: linkEpochs(epochKeys{0: [32]byte(hk), 1: [32]byte(bytes.Repeat([]byte{0x45}, 32))})})
	refusal, _ := json.Marshal(&linkAnswer{V: linkVersion, Refused: "the code expired"})
	fuzzseed.Add(f, "FuzzParseLinkAnswer", *update, good, refusal,
		[]byte(`{"v":4,"name":"a","device":"0123456789abcdef","account":"","history":"","epochs":""}`),
		[]byte(`{"v":4}`), []byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ans, err := parseLinkAnswer(b)
		if err != nil {
			return
		}
		if ans.Refused != "" {
			t.Fatal("a refusal was accepted as an answer")
		}
		if _, err := ratchet.ParsePublicIdentity(ans.Account); err != nil || validDeviceID(ans.Device) != nil || ValidName(ans.Name) != nil {
			t.Fatalf("accepted an answer with malformed fields: %+v", ans)
		}
		k, err := parseEpochKeys(ans.Epochs)
		if err != nil || len(ans.History) != 32 || k[0] != [32]byte(ans.History) {
			t.Fatalf("accepted an answer with malformed history keys: %+v", ans)
		}
	})
}
