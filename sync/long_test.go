package sync_test

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/sync"
)

// longText returns n bytes of UTF-8 text with multi-byte runes, so that
// part boundaries fall inside runes.
func longText(n int) string {
	s := strings.Repeat("ünïcödé ", n/len("ünïcödé ")+1)
	s = strings.ToValidUTF8(s[:n], "")
	return s + strings.Repeat("x", n-len(s))
}

func TestLongMessageRoundTrip(t *testing.T) {
	p := newPair(t)
	text := longText(sync.MaxTextSize)
	if len(text) != sync.MaxTextSize {
		t.Fatalf("test text of %d bytes", len(text))
	}
	m := send(t, p.alice, "bob", text)
	if m.State != sync.Stored {
		t.Fatalf("state %v", m.State)
	}
	res := poll(t, p.bob)
	if len(res.New) != 1 || res.New[0].Body != text {
		t.Fatalf("bob got %d messages (first %d bytes)", len(res.New), len(bodies(res.New)))
	}
	send(t, p.bob, "alice", "ok")
	res = poll(t, p.alice)
	if len(res.Read) != 1 || res.Read[0].Body != text {
		t.Fatalf("alice's receipt: %d read", len(res.Read))
	}
	out, err := p.alice.Outbox()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range out {
		if e.Kind != sync.KindAck {
			t.Fatalf("outbox after ack holds %v #%d", e.Kind, e.Seq)
		}
	}
}

// Parts that arrive out of order are delivered once all have; a missing
// part holds the message (and everything after it), never shows a piece.
func TestLongMessagePartsHeld(t *testing.T) {
	p := newFaultPair(t, 7)
	text := strings.Repeat("long message ", 1000) // 13,000 bytes: 5 parts
	m := send(t, p.alice, "bob", text)
	after := send(t, p.alice, "bob", "after")
	var slots []feed.Slot
	for seq := m.Seq; seq < after.Seq; seq++ {
		slots = append(slots, findSlot(t, p.alice, seq))
	}
	if len(slots) < 3 {
		t.Fatalf("%d parts", len(slots))
	}
	// The last part first, then the middle missing.
	p.bobT.hidden[slots[1]] = true
	if got := bodies(poll(t, p.bob).New); len(got) != 0 {
		t.Fatalf("with part 1 missing bob got %d messages", len(got))
	}
	if h := p.bobHistory(t); h != "" {
		t.Fatalf("history shows %q", h)
	}
	clear(p.bobT.hidden)
	got := bodies(poll(t, p.bob).New)
	if len(got) != 2 || got[0] != text || got[1] != "after" {
		t.Fatalf("after the gap filled bob got %d messages", len(got))
	}
}

// A file message carries its manifest (opaque to sync) and caption to the
// peer, and through the history log to a restored device; so does a long
// text.
func TestFileMessageAndRestore(t *testing.T) {
	p := newPair(t)
	manifest := bytes.Repeat([]byte{0xab}, 3000) // a long manifest: parts
	if _, err := p.alice.SendFile(ctx, "bob", manifest, "the photo"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.alice.SendFile(ctx, "bob", []byte{1, 2, 3}, ""); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("z", 9000)
	send(t, p.alice, "bob", long)
	res := poll(t, p.bob)
	if len(res.New) != 3 || !bytes.Equal(res.New[0].Attachment, manifest) || res.New[0].Body != "the photo" ||
		!bytes.Equal(res.New[1].Attachment, []byte{1, 2, 3}) || res.New[1].Body != "" || res.New[2].Body != long {
		t.Fatalf("bob got %+v", len(res.New))
	}
	poll(t, p.alice)
	if _, err := p.alice.Republish(ctx); err != nil {
		t.Fatal(err)
	}
	phrase := p.alice.RecoveryPhrase()
	p.alice.Close()
	os.RemoveAll(p.dirA)
	a2, _, err := sync.Restore(ctx, t.TempDir(), phrase, "phone", direct(p.store), sync.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a2.Close()
	h, err := a2.History("bob", sync.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 3 || !bytes.Equal(h[0].Attachment, manifest) || h[0].Body != "the photo" || h[2].Body != long {
		t.Fatalf("restored history has %d messages", len(h))
	}
	for _, m := range h {
		if _, err := a2.ProveMessage(ctx, m); err != nil {
			t.Errorf("proof of message %d: %v", m.Local, err)
		}
	}
}

func TestFileMessageBadInput(t *testing.T) {
	p := newPair(t)
	if _, err := p.alice.SendFile(ctx, "bob", nil, ""); err == nil {
		t.Fatal("empty manifest accepted")
	}
	if _, err := p.alice.SendFile(ctx, "bob", make([]byte, sync.MaxAttachmentSize+1), ""); err == nil {
		t.Fatal("huge manifest accepted")
	}
}
