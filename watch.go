package deaddrop

import (
	"context"
	"slices"
	"time"
)

// EventKind says what an Event reports.
type EventKind int

// EventRead is the old name of EventDelivered, which it always meant.
//
// Deprecated: use EventDelivered.
const EventRead = EventDelivered

const (
	// EventMessage: a new incoming message, in Event.Message.
	EventMessage EventKind = iota + 1
	// EventDelivered: a device of the contact acknowledged one of our
	// messages (in Event.Message, State Delivered): it is durably in their
	// state. It is a delivery receipt, not a read receipt: nobody may have
	// looked at it yet. Watch follows the change feed for it, so it sees
	// receipts whichever poll took them (another Watch, Receive, another
	// device of the account); a message read before Watch looked shows as
	// EventReadByContact only.
	EventDelivered
	// EventJoined: someone accepted one of our invites; Event.Contact names
	// the new conversation.
	EventJoined
	// EventProblem: something on the store did not open or verify (a chunk,
	// a message, a device list). It was skipped; Event.Err says what.
	EventProblem
	// EventStoreError: a poll, republish or keeper push failed (a node is
	// down, a request timed out). Nothing is lost and Watch tries again at
	// its next poll; Event.Err says what failed.
	EventStoreError
	// EventReadByContact: the contact saw one of our messages (a read
	// receipt: only from contacts who send them), in Event.Message.
	EventReadByContact
	// EventDeviceAdded: a device joined the account (Event.Contact empty)
	// or a contact's account (Event.Contact names them), in Event.Device:
	// a newer signed device list says so. A contact's first list known
	// here is where their devices start, not an addition.
	EventDeviceAdded
	// EventDeviceRemoved: a device left the account (Event.Contact empty)
	// or a contact's account, in Event.Device.
	EventDeviceRemoved
)

func (k EventKind) String() string {
	switch k {
	case EventMessage:
		return "message"
	case EventDelivered:
		return "delivered"
	case EventJoined:
		return "joined"
	case EventProblem:
		return "problem"
	case EventStoreError:
		return "store error"
	case EventReadByContact:
		return "read"
	case EventDeviceAdded:
		return "device added"
	case EventDeviceRemoved:
		return "device removed"
	}
	return "unknown event"
}

// Event is one thing Watch saw happen.
type Event struct {
	Kind    EventKind
	Message Message // EventMessage, EventDelivered, EventReadByContact
	Contact string  // the conversation the event belongs to, if any
	Err     error   // EventProblem, EventStoreError
	Device  Device  // EventDeviceAdded, EventDeviceRemoved
}

// WatchOptions tunes Watch. The zero value watches every conversation,
// polling once a second.
type WatchOptions struct {
	// Every is the pause between the end of one poll and the start of the
	// next; 0: one second.
	Every time.Duration
	// Contacts, if set, limits message, receipt and contact device events
	// to these conversations: the messages of others stay unseen for
	// whoever shows them later (deaddrop read). Problems, store errors and
	// the account's own device events are always reported.
	Contacts []string
}

// Watch receives in the background until ctx ends, and streams what it sees
// on the returned channel, which it closes when it stops. It polls the store,
// republishes what is due and keeps the account's chunks alive (Receive), then
// pauses for opts.Every, and again.
//
// Each incoming message is delivered once: Watch delivers the unseen messages
// of the watched conversations, those that arrived before it started first,
// and marks each one seen once the reader received it (the channel is
// unbuffered: a reader that stops loses nothing). A reader that does not
// keep up holds polling back; nothing is dropped. Sending while Watch runs is
// fine and never waits for a poll's network round. Watch follows the
// account's change feed besides its own polls, so it also shows what
// another poll of the account took from the store first (Receive, another
// Watch, a daemon client's receive).
func (c *Client) Watch(ctx context.Context, opts WatchOptions) <-chan Event {
	if opts.Every <= 0 {
		opts.Every = time.Second
	}
	events := make(chan Event) // unbuffered: "taken" means the reader has it
	w := &watcher{c: c, opts: opts, events: events}
	w.cursor, w.cursorErr = c.LastChange() // read receipts from now on
	w.devices = w.deviceLists()            // device changes from now on
	go func() {
		defer close(events)
		if !w.deliverUnseen(ctx, nil) {
			return
		}
		for {
			if !w.pollOnce(ctx) {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(opts.Every):
			}
		}
	}()
	return events
}

type watcher struct {
	c      *Client
	opts   WatchOptions
	events chan<- Event

	cursor    uint64 // the change feed, for read receipts
	cursorErr error

	devices map[string][]Device // by contact ("": the account's own), as last seen
}

// deviceLists snapshots the account's devices (under "") and each
// contact's, for those with a list; nil when they cannot be read (the
// next poll tries again).
func (w *watcher) deviceLists() map[string][]Device {
	out := map[string][]Device{}
	if own, _, err := w.c.Devices(); err == nil { // ErrNoHistory: no device list
		for _, d := range own {
			out[""] = append(out[""], d.Device)
		}
	}
	cds, err := w.c.ContactDevices()
	if err != nil {
		return nil
	}
	for _, cd := range cds {
		if cd.Version > 0 {
			out[cd.Contact] = cd.Devices
		}
	}
	return out
}

// deviceEvents emits the devices added and removed since the last look.
func (w *watcher) deviceEvents(ctx context.Context) bool {
	now := w.deviceLists()
	if now == nil {
		return true
	}
	old := w.devices
	w.devices = now
	if old == nil {
		return true
	}
	names := make([]string, 0, len(now))
	for name := range now {
		names = append(names, name)
	}
	slices.Sort(names) // the account's own ("") first
	for _, name := range names {
		before, known := old[name]
		if !known || name != "" && !w.watched(name) {
			continue // a contact's first list: where their devices start
		}
		for _, d := range now[name] {
			if !slices.ContainsFunc(before, func(b Device) bool { return b.ID == d.ID }) &&
				!w.emit(ctx, Event{Kind: EventDeviceAdded, Contact: name, Device: d}) {
				return false
			}
		}
		for _, d := range before {
			if !slices.ContainsFunc(now[name], func(n Device) bool { return n.ID == d.ID }) &&
				!w.emit(ctx, Event{Kind: EventDeviceRemoved, Contact: name, Device: d}) {
				return false
			}
		}
	}
	return true
}

// followFeed emits the messages the change feed shows delivered to or
// read by their contact since the last look, and returns the watched
// contacts with new unseen incoming messages there: whichever poll took
// them (this Watch's, another Watch's or Receive on the same account, a
// daemon client's receive), so that two watchers of one account both show
// every message and receipt.
func (w *watcher) followFeed(ctx context.Context) ([]string, bool) {
	if w.cursorErr != nil {
		return nil, true
	}
	var incoming []string
	for {
		chs, next, err := w.c.Changes(w.cursor, 0)
		if err != nil {
			return incoming, w.emit(ctx, Event{Kind: EventStoreError, Err: err})
		}
		w.cursor = next
		for _, ch := range chs {
			m := ch.Message
			if !w.watched(m.Contact) {
				continue
			}
			if m.Dir == Incoming {
				if !m.Seen && !slices.Contains(incoming, m.Contact) {
					incoming = append(incoming, m.Contact)
				}
				continue
			}
			kind := EventKind(0)
			switch m.State {
			case Delivered:
				kind = EventDelivered
			case ReadByContact:
				kind = EventReadByContact
			}
			if kind != 0 && !w.emit(ctx, Event{Kind: kind, Message: m, Contact: m.Contact}) {
				return nil, false
			}
		}
		if len(chs) < 1000 {
			return incoming, true
		}
	}
}

// emit hands e to the reader; false means ctx ended first.
func (w *watcher) emit(ctx context.Context, e Event) bool {
	select {
	case w.events <- e:
		return true
	case <-ctx.Done():
		return false
	}
}

func (w *watcher) watched(contact string) bool {
	return len(w.opts.Contacts) == 0 || slices.Contains(w.opts.Contacts, contact)
}

// pollOnce runs one Receive and reports what it found; false means ctx ended.
func (w *watcher) pollOnce(ctx context.Context) bool {
	res, err := w.c.Receive(ctx, nil)
	if ctx.Err() != nil {
		return false
	}
	if err != nil && !w.emit(ctx, Event{Kind: EventStoreError, Err: err}) {
		return false
	}
	if res == nil {
		return true
	}
	for _, name := range res.Joined {
		if !w.emit(ctx, Event{Kind: EventJoined, Contact: name}) {
			return false
		}
	}
	for _, p := range res.Problems {
		if !w.emit(ctx, Event{Kind: EventProblem, Err: p}) {
			return false
		}
	}
	for _, m := range res.Read {
		if w.cursorErr != nil && w.watched(m.Contact) && // else the change feed shows them
			!w.emit(ctx, Event{Kind: EventDelivered, Message: m, Contact: m.Contact}) {
			return false
		}
	}
	with, ok := w.followFeed(ctx) // the contacts to look at
	if !ok || !w.deviceEvents(ctx) {
		return false
	}
	if res.NewCount > len(res.New) {
		with = nil // the list was cut: look at all
	} else {
		for _, m := range res.New {
			if !slices.Contains(with, m.Contact) {
				with = append(with, m.Contact)
			}
		}
		if len(with) == 0 {
			return true
		}
	}
	return w.deliverUnseen(ctx, with)
}

// deliverUnseen emits the unseen incoming messages of the given contacts (nil:
// every watched contact) and marks them seen once emitted.
func (w *watcher) deliverUnseen(ctx context.Context, contacts []string) bool {
	if contacts == nil {
		all, err := w.c.Contacts()
		if err != nil {
			return w.emit(ctx, Event{Kind: EventStoreError, Err: err})
		}
		for _, ct := range all {
			contacts = append(contacts, ct.Name)
		}
	}
	for _, name := range contacts {
		if !w.watched(name) {
			continue
		}
		msgs, err := w.c.History(name, Query{UnseenOnly: true})
		if err != nil && !w.emit(ctx, Event{Kind: EventStoreError, Contact: name, Err: err}) {
			return false
		} // a damaged record: the readable messages still go out
		if !w.deliver(ctx, name, msgs) {
			return false
		}
	}
	return true
}

// deliver emits one contact's unseen messages, then marks those the reader
// took as seen, in one commit (also when ctx ended half-way: what was taken
// is not delivered again).
func (w *watcher) deliver(ctx context.Context, contact string, msgs []Message) bool {
	var taken []Message
	defer func() {
		if len(taken) == 0 {
			return
		}
		if err := w.c.MarkSeen(taken); err != nil && ctx.Err() == nil {
			w.emit(ctx, Event{Kind: EventStoreError, Contact: contact, Err: err})
		}
	}()
	for _, m := range msgs {
		if m.Dir != Incoming {
			continue
		}
		if !w.emit(ctx, Event{Kind: EventMessage, Message: m, Contact: contact}) {
			return false
		}
		taken = append(taken, m)
	}
	return true
}
