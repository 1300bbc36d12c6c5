package deaddrop_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"testing"
	"time"

	"github.com/deaddrop/deaddrop"
)

// pair makes alice and bob, contacts of each other, on one embedded store.
func pair(t *testing.T) (alice, bob *deaddrop.Client) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	cfg := deaddrop.Config{Store: "embedded:" + filepath.Join(dir, "store")}
	alice, err := deaddrop.Init(ctx, filepath.Join(dir, "alice"), "alice", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { alice.Close() })
	bob, err = deaddrop.Init(ctx, filepath.Join(dir, "bob"), "bob", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bob.Close() })
	inv, err := alice.Invite("bob")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Accept(ctx, inv, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Receive(ctx, nil); err != nil {
		t.Fatal(err)
	}
	return alice, bob
}

// A message has one ID on both sides, unlike Seq and Local, and it is
// globally unique.
func TestMessageID(t *testing.T) {
	ctx := context.Background()
	alice, bob := pair(t)
	sent, err := alice.Send(ctx, "bob", "hi")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{32,}$`).MatchString(sent.ID) {
		t.Fatalf("ID %q is not hex", sent.ID)
	}
	res, err := bob.Receive(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got deaddrop.Message
	for _, m := range res.New {
		if m.Body == "hi" {
			got = m
		}
	}
	if got.ID != sent.ID {
		t.Fatalf("bob sees ID %q, alice sent %q", got.ID, sent.ID)
	}
	hist, err := alice.History("bob", deaddrop.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if last := hist[len(hist)-1]; last.ID != sent.ID {
		t.Fatalf("history ID %q, Send returned %q", last.ID, sent.ID)
	}
	second, err := alice.Send(ctx, "bob", "hi")
	if err != nil {
		t.Fatal(err)
	}
	if second.ID == sent.ID {
		t.Fatal("two sends of one body share an ID")
	}
}

func TestEnumStrings(t *testing.T) {
	for v, want := range map[interface{ String() string }]string{
		deaddrop.Outgoing: "outgoing", deaddrop.Incoming: "incoming",
		deaddrop.Queued: "queued", deaddrop.Delivered: "delivered", deaddrop.Stored: "stored", deaddrop.Received: "received",
		deaddrop.EventMessage: "message", deaddrop.EventDelivered: "delivered",
	} {
		if got := v.String(); got != want {
			t.Errorf("%v: String() = %q, want %q", v, got, want)
		}
	}
}

// A retried send with the same client ID is one message; the same ID with
// another body is refused; another contact's ID space is its own.
func TestSendClientID(t *testing.T) {
	ctx := context.Background()
	alice, bob := pair(t)
	first, err := alice.SendWith(ctx, "bob", "once", deaddrop.SendOptions{ClientID: "txn-1"})
	if err != nil {
		t.Fatal(err)
	}
	again, err := alice.SendWith(ctx, "bob", "once", deaddrop.SendOptions{ClientID: "txn-1"})
	if err != nil {
		t.Fatal(err)
	}
	if again.ID != first.ID || again.Local != first.Local {
		t.Fatalf("retry made %+v, first was %+v", again, first)
	}
	if _, err := alice.SendWith(ctx, "bob", "other", deaddrop.SendOptions{ClientID: "txn-1"}); !errors.Is(err, deaddrop.ErrClientIDReused) {
		t.Fatalf("reused ID with another body: %v, want ErrClientIDReused", err)
	}
	res, err := bob.Receive(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range res.New {
		if m.Body == "once" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("bob received %d copies, want 1", n)
	}
	long := make([]byte, deaddrop.MaxClientIDSize+1)
	for i := range long {
		long[i] = 'x'
	}
	if _, err := alice.SendWith(ctx, "bob", "x", deaddrop.SendOptions{ClientID: string(long)}); err == nil {
		t.Fatal("an over-long client ID was accepted")
	}
}

// A send whose context is already cancelled commits nothing: a client that
// retries it after the error sends one message, not two.
func TestSendCancelledContext(t *testing.T) {
	alice, _ := pair(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := alice.Send(ctx, "bob", "never"); !errors.Is(err, context.Canceled) || errors.Is(err, deaddrop.ErrNotStored) {
		t.Fatalf("cancelled send: %v, want context.Canceled without ErrNotStored", err)
	}
	hist, err := alice.History("bob", deaddrop.Query{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range hist {
		if m.Body == "never" {
			t.Fatal("a send with a cancelled context was committed")
		}
	}
}

// Typed errors are testable from the root package.
func TestTypedErrors(t *testing.T) {
	ctx := context.Background()
	alice, _ := pair(t)
	if _, err := alice.Send(ctx, "carol", "hi"); !errors.Is(err, deaddrop.ErrUnknownContact) {
		t.Fatalf("send to a stranger: %v", err)
	}
	if _, err := deaddrop.Open(ctx, t.TempDir(), deaddrop.Config{}); !errors.Is(err, deaddrop.ErrNoAccount) {
		t.Fatalf("open of an empty home: %v", err)
	}
	home := filepath.Join(t.TempDir(), "carol")
	cfg := deaddrop.Config{Store: "embedded:" + filepath.Join(t.TempDir(), "store")}
	carol, err := deaddrop.Init(ctx, home, "carol", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer carol.Close()
	if _, err := deaddrop.Open(ctx, home, deaddrop.Config{}); !errors.Is(err, deaddrop.ErrHomeInUse) {
		t.Fatalf("second open of a home: %v, want ErrHomeInUse", err)
	}
}

// A client that was away resumes from its cursor: it gets the messages that
// arrived and the delivery receipts, each message once, as it stands now.
func TestChangesResume(t *testing.T) {
	ctx := context.Background()
	alice, bob := pair(t)
	_, cursor, err := alice.Changes(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	sent, err := alice.Send(ctx, "bob", "are you there")
	if err != nil {
		t.Fatal(err)
	}
	// Away: bob receives and answers, alice polls without anyone watching.
	if _, err := bob.Receive(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Send(ctx, "alice", "yes"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Receive(ctx, nil); err != nil {
		t.Fatal(err)
	}
	chs, next, err := alice.Changes(cursor, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]deaddrop.Message{}
	for _, ch := range chs {
		if _, dup := got[ch.Message.ID]; dup {
			t.Fatalf("message %s listed twice", ch.Message.ID)
		}
		if ch.Cursor <= cursor || ch.Cursor > next {
			t.Fatalf("change cursor %d outside (%d, %d]", ch.Cursor, cursor, next)
		}
		got[ch.Message.ID] = ch.Message
	}
	if m := got[sent.ID]; m.State != deaddrop.Delivered {
		t.Fatalf("our message after bob's reply: %+v, want Delivered", m)
	}
	var reply *deaddrop.Message
	for _, m := range got {
		if m.Body == "yes" {
			reply = &m
		}
	}
	if reply == nil || reply.Dir != deaddrop.Incoming {
		t.Fatalf("changes %+v lack bob's reply", chs)
	}
	// Nothing new: the same cursor back, no changes.
	if chs, again, err := alice.Changes(next, 0); err != nil || len(chs) != 0 || again != next {
		t.Fatalf("after the last cursor: %v, %d, %v", chs, again, err)
	}
	// Seeing the reply is a change too.
	if err := alice.MarkSeen([]deaddrop.Message{*reply}); err != nil {
		t.Fatal(err)
	}
	chs, _, err = alice.Changes(next, 0)
	if err != nil || len(chs) != 1 || !chs[0].Message.Seen || chs[0].Message.ID != reply.ID {
		t.Fatalf("after MarkSeen: %+v, %v", chs, err)
	}
	// limit pages.
	all, _, err := alice.Changes(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	page, pcur, err := alice.Changes(0, 1)
	if err != nil || len(page) != 1 || pcur != page[0].Cursor || !reflect.DeepEqual(page[0], all[0]) {
		t.Fatalf("first page: %+v, %d, %v", page, pcur, err)
	}
}

// A --store override naming an embedded directory that does not exist is a
// typo, not a new empty store.
func TestOpenStoreTypo(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	home := filepath.Join(dir, "alice")
	cl, err := deaddrop.Init(ctx, home, "alice", deaddrop.Config{Store: "embedded:" + filepath.Join(dir, "store")})
	if err != nil {
		t.Fatal(err)
	}
	cl.Close()
	typo := filepath.Join(dir, "stroe")
	if _, err := deaddrop.Open(ctx, home, deaddrop.Config{Store: "embedded:" + typo}); !errors.Is(err, deaddrop.ErrNoStore) {
		t.Fatalf("open with a mistyped store: %v", err)
	}
	if _, err := os.Stat(typo); err == nil {
		t.Fatal("the mistyped store was created")
	}
	cl, err = deaddrop.Open(ctx, home, deaddrop.Config{Store: "embedded:" + filepath.Join(dir, "store")})
	if err != nil {
		t.Fatal(err)
	}
	cl.Close()
}

// A state file this user cannot write is a permission problem, not damage.
func TestOpenReadOnlyState(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores file permissions")
	}
	ctx := context.Background()
	dir := t.TempDir()
	home := filepath.Join(dir, "alice")
	cl, err := deaddrop.Init(ctx, home, "alice", deaddrop.Config{Store: "embedded:" + filepath.Join(dir, "store")})
	if err != nil {
		t.Fatal(err)
	}
	cl.Close()
	matches, _ := filepath.Glob(filepath.Join(home, "*.db"))
	for _, m := range matches {
		os.Chmod(m, 0o400)
	}
	_, err = deaddrop.Open(ctx, home, deaddrop.Config{})
	if err == nil || errors.Is(err, deaddrop.ErrCorruptState) || !errors.Is(err, os.ErrPermission) {
		t.Fatalf("read-only state: %v", err)
	}
}

// Delivery and reading are separate: a message is Delivered when bob's
// device has it, ReadByContact only once bob saw it and only if bob sends
// read receipts.
func TestReadReceipts(t *testing.T) {
	ctx := context.Background()
	alice, bob := pair(t)
	state := func(id string) deaddrop.MessageState {
		t.Helper()
		hist, err := alice.History("bob", deaddrop.Query{})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range hist {
			if m.ID == id {
				return m.State
			}
		}
		t.Fatalf("no message %s", id)
		return 0
	}
	exchange := func() {
		t.Helper()
		for range 2 {
			if _, err := bob.Receive(ctx, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := alice.Receive(ctx, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	seen := func() {
		t.Helper()
		msgs, err := bob.Unseen()
		if err != nil {
			t.Fatal(err)
		}
		if err := bob.MarkSeen(msgs); err != nil {
			t.Fatal(err)
		}
	}

	// Off (the default): delivered, never read.
	if on, err := bob.ReadReceipts(); err != nil || on {
		t.Fatalf("read receipts on by default: %v %v", on, err)
	}
	quiet, err := alice.Send(ctx, "bob", "no receipt for this")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Receive(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Send(ctx, "alice", "ack carrier"); err != nil {
		t.Fatal(err)
	}
	exchange()
	if s := state(quiet.ID); s != deaddrop.Delivered {
		t.Fatalf("before bob saw it: %v, want delivered", s)
	}
	seen()
	exchange()
	if s := state(quiet.ID); s != deaddrop.Delivered {
		t.Fatalf("receipts off, bob saw it: %v, want delivered", s)
	}

	// On: read once bob saw it.
	if err := bob.SetReadReceipts(true); err != nil {
		t.Fatal(err)
	}
	loud, err := alice.Send(ctx, "bob", "tell me when you read this")
	if err != nil {
		t.Fatal(err)
	}
	exchange()
	if s := state(loud.ID); s == deaddrop.ReadByContact {
		t.Fatal("read before bob saw it")
	}
	seen()
	exchange()
	if s := state(loud.ID); s != deaddrop.ReadByContact {
		t.Fatalf("receipts on, bob saw it: %v, want read", s)
	}
	if s := state(quiet.ID); s != deaddrop.Delivered {
		t.Fatalf("the earlier message became %v: receipts are for what is seen after", s)
	}
	if deaddrop.ReadByContact.String() != "read" || deaddrop.Delivered.String() != "delivered" {
		t.Fatal("state names")
	}
}

// Watch reports a read receipt as its own event, after the delivery.
func TestWatchReadReceipt(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	alice, bob := pair(t)
	if err := bob.SetReadReceipts(true); err != nil {
		t.Fatal(err)
	}
	events := alice.Watch(ctx, deaddrop.WatchOptions{Every: 20 * time.Millisecond})
	sent, err := alice.Send(ctx, "bob", "watch me being read")
	if err != nil {
		t.Fatal(err)
	}
	bobDone := make(chan struct{})
	defer func() { cancel(); <-bobDone }()
	go func() { // bob reads, as a chat app would
		defer close(bobDone)
		for ctx.Err() == nil {
			bob.Receive(ctx, nil)
			if msgs, err := bob.Unseen(); err == nil && len(msgs) > 0 {
				bob.MarkSeen(msgs)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	var kinds []deaddrop.EventKind
	for ev := range events {
		if ev.Message.ID != sent.ID {
			continue
		}
		kinds = append(kinds, ev.Kind)
		if ev.Kind == deaddrop.EventReadByContact {
			break
		}
	}
	if len(kinds) == 0 || kinds[len(kinds)-1] != deaddrop.EventReadByContact {
		t.Fatalf("events for the message: %v, want …, read", kinds)
	}
	cancel()
	for range events {
	}
}
