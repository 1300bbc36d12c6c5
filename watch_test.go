package deaddrop_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/deaddrop/deaddrop"
	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/transport"
)

// stalling is a transport whose Gets wait until released: a poll against a
// store that takes as long as it likes to answer.
type stalling struct {
	transport.Transport
	stalled chan struct{} // closed by the first Get that waits
	release chan struct{}
	first   chan struct{} // holds a token once armed
}

func newStalling(t *testing.T, storeDir string) *stalling {
	store, err := feed.OpenEmbedded(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	return &stalling{Transport: transport.NewDirect(store), stalled: make(chan struct{}), release: make(chan struct{}), first: make(chan struct{}, 1)}
}

// arm makes Gets from now on wait for release.
func (s *stalling) arm() { s.first <- struct{}{} }

func (s *stalling) Get(ctx context.Context, slot feed.Slot) ([]byte, error) {
	select {
	case <-s.first:
		close(s.stalled)
	case <-s.stalled:
	default:
		return s.Transport.Get(ctx, slot) // not armed
	}
	select {
	case <-s.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return s.Transport.Get(ctx, slot)
}

// A send made while Watch's poll waits on the store is stored at once, and
// Watch then streams the peer's message and the receipt for ours.
func TestWatchNeverBlocksSend(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	storeDir := filepath.Join(dir, "store")
	cfg := deaddrop.Config{Store: "embedded:" + storeDir}
	bob, err := deaddrop.Init(ctx, filepath.Join(dir, "bob"), "bob", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	slow := newStalling(t, storeDir)
	alice, err := deaddrop.Init(ctx, filepath.Join(dir, "alice"), "alice", deaddrop.Config{Store: cfg.Store, Transport: slow})
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	invite, _ := alice.Invite("bob")
	if _, err := bob.Accept(ctx, invite, ""); err != nil {
		t.Fatal(err)
	}

	if res, err := alice.Receive(ctx, nil); err != nil || len(res.Joined) != 1 {
		t.Fatalf("alice's first receive: %+v, %v", res, err)
	}

	slow.arm()
	watchCtx, stop := context.WithCancel(ctx)
	defer stop()
	events := alice.Watch(watchCtx, deaddrop.WatchOptions{Every: 10 * time.Millisecond})
	<-slow.stalled // Watch's poll waits on the store, and keeps waiting
	if m, err := alice.Send(ctx, "bob", "typed while the poll waits"); err != nil || m.State != deaddrop.Stored {
		t.Fatalf("send during a stalled poll: %v, %v", m.State, err)
	}
	close(slow.release)

	next := func(kind deaddrop.EventKind) deaddrop.Event {
		t.Helper()
		for {
			select {
			case ev := <-events:
				if ev.Kind == kind {
					return ev
				}
				if ev.Kind == deaddrop.EventStoreError || ev.Kind == deaddrop.EventProblem {
					t.Logf("event: %v: %v", ev.Kind, ev.Err)
				}
			case <-ctx.Done():
				t.Fatalf("no %v event", kind)
			}
		}
	}
	if _, err := bob.Send(ctx, "alice", "hello alice"); err != nil {
		t.Fatal(err)
	}
	if ev := next(deaddrop.EventMessage); ev.Message.Body != "hello alice" || ev.Contact != "bob" {
		t.Fatalf("message event: %+v", ev)
	}
	if _, err := bob.Receive(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if ev := next(deaddrop.EventDelivered); ev.Message.Body != "typed while the poll waits" {
		t.Fatalf("read event: %+v", ev)
	}
	// Delivered once: the message is seen, and a new Watch does not repeat it.
	stop()
	for range events {
	}
	unseen, err := alice.History("bob", deaddrop.Query{UnseenOnly: true})
	if err != nil || len(unseen) != 0 {
		t.Fatalf("unseen after Watch delivered: %v, %v", unseen, err)
	}
}

// Watch reports devices joining and leaving: the account's own (Contact
// empty) and a contact's, once a poll learns their newer signed list.
func TestWatchDeviceEvents(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	cfg := deaddrop.Config{Store: "embedded:" + filepath.Join(dir, "store")}
	alice, err := deaddrop.Init(ctx, filepath.Join(dir, "alice"), "alice", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	bob, err := deaddrop.Init(ctx, filepath.Join(dir, "bob"), "bob", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	invite, _ := alice.Invite("bob")
	if _, err := bob.Accept(ctx, invite, ""); err != nil {
		t.Fatal(err)
	}
	for range 3 { // both hold each other's first device list
		if _, err := alice.Receive(ctx, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := bob.Receive(ctx, nil); err != nil {
			t.Fatal(err)
		}
	}

	wctx, stop := context.WithCancel(ctx)
	defer stop()
	aliceEvents := alice.Watch(wctx, deaddrop.WatchOptions{Every: 20 * time.Millisecond})
	bobEvents := bob.Watch(wctx, deaddrop.WatchOptions{Every: 20 * time.Millisecond})
	next := func(events <-chan deaddrop.Event, kind deaddrop.EventKind) deaddrop.Event {
		t.Helper()
		for {
			select {
			case ev := <-events:
				if ev.Kind == kind {
					return ev
				}
			case <-ctx.Done():
				t.Fatalf("no %v event", kind)
			}
		}
	}

	lk, err := bob.LinkDevice(ctx, "phone", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	joined := make(chan error, 1)
	go func() {
		phone, _, err := deaddrop.JoinDevice(ctx, filepath.Join(dir, "phone"), lk.Code, cfg)
		if err == nil {
			phone.Close()
		}
		joined <- err
	}()
	dev, err := bob.WaitLink(ctx, lk, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-joined; err != nil {
		t.Fatal(err)
	}
	if ev := next(bobEvents, deaddrop.EventDeviceAdded); ev.Contact != "" || ev.Device.ID != dev.ID || ev.Device.Name != "phone" {
		t.Fatalf("bob's own device event: %+v", ev)
	}
	if ev := next(aliceEvents, deaddrop.EventDeviceAdded); ev.Contact != "bob" || ev.Device.ID != dev.ID {
		t.Fatalf("alice's device event for bob: %+v", ev)
	}

	if _, err := bob.RemoveDevice(ctx, dev.ID); err != nil {
		t.Fatal(err)
	}
	if ev := next(bobEvents, deaddrop.EventDeviceRemoved); ev.Contact != "" || ev.Device.ID != dev.ID {
		t.Fatalf("bob's own removal event: %+v", ev)
	}
	if ev := next(aliceEvents, deaddrop.EventDeviceRemoved); ev.Contact != "bob" || ev.Device.ID != dev.ID {
		t.Fatalf("alice's removal event for bob: %+v", ev)
	}
}

// Watch shows every message and receipt even when another poll of the same
// account (Receive here; a second chat through the daemon in the CLI) takes
// them from the store first: it follows the change feed.
func TestWatchSeesWhatOtherPollsTook(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	cfg := deaddrop.Config{Store: "embedded:" + filepath.Join(dir, "store")}
	alice, err := deaddrop.Init(ctx, filepath.Join(dir, "alice"), "alice", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	bob, err := deaddrop.Init(ctx, filepath.Join(dir, "bob"), "bob", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	invite, _ := alice.Invite("bob")
	if _, err := bob.Accept(ctx, invite, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Receive(ctx, nil); err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	polled := make(chan struct{})
	go func() { // the other poller, as fast as it goes
		defer close(polled)
		for wctx.Err() == nil {
			alice.Receive(wctx, nil)
			time.Sleep(time.Millisecond)
		}
	}()
	defer func() { stop(); <-polled }()
	events := alice.Watch(wctx, deaddrop.WatchOptions{Every: 50 * time.Millisecond})
	if _, err := alice.Send(ctx, "bob", "to bob"); err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{"one", "two", "three"} {
		if _, err := bob.Send(ctx, "alice", body); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := bob.Receive(ctx, nil); err != nil { // acknowledges "to bob"
		t.Fatal(err)
	}
	got := map[string]bool{}
	deadline := time.After(20 * time.Second)
	for len(got) < 4 {
		select {
		case ev := <-events:
			if ev.Kind == deaddrop.EventMessage || ev.Kind == deaddrop.EventDelivered {
				got[ev.Kind.String()+" "+ev.Message.Body] = true
			}
		case <-deadline:
			t.Fatalf("events seen: %v", got)
		}
	}
	for _, want := range []string{"message one", "message two", "message three", "delivered to bob"} {
		if !got[want] {
			t.Fatalf("no %q in %v", want, got)
		}
	}
}
