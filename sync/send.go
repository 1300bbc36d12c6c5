package sync

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	gosync "sync"
	"time"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/ratchet"
	bolt "go.etcd.io/bbolt"
)

// Republish timing: a stored message is put again (the same bytes, so the
// store keeps or regains it) after 30 s, doubling up to an hour; a failed put is
// retried after 1 s, doubling up to 5 minutes. Retries never stop while the
// message is unacknowledged, but they never spin.
const (
	republishFirst = 30 * time.Second
	republishMax   = time.Hour
	retryFirst     = time.Second
	retryMax       = 5 * time.Minute
)

func backoff(first, max time.Duration, n int) time.Duration {
	d := first
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}

// Send queues body for contact and tries to store it at once: one copy for
// each of the contact's devices we have a session with. The message is
// durably in the outbox before Send touches the store, so a crash or a store
// failure loses nothing: Republish retries it. The returned message's State
// says whether the store accepted a copy (Stored) or all are still Queued.
//
// A ctx that is done before Send commits anything makes it return ctx.Err()
// with nothing queued. Once the message is committed (before any network
// round), it will be sent: a ctx ending during the put returns the message
// and an error wrapping ErrNotStored, and Republish stores it later. Use
// SendWith and a ClientID to retry safely after any error.
func (a *Account) Send(ctx context.Context, contact, body string) (Message, error) {
	return a.SendWith(ctx, contact, body, SendOptions{})
}

// SendWith is Send with options (an idempotency ClientID).
func (a *Account) SendWith(ctx context.Context, contact, body string, opts SendOptions) (Message, error) {
	return a.send(ctx, contact, &content{Text: body}, opts)
}

// send queues content for every device of contact and tries to store it
// (Send, SendWith, SendFile).
func (a *Account) send(ctx context.Context, contact string, ct *content, opts SendOptions) (Message, error) {
	if err := ct.check(); err != nil {
		return Message{}, err
	}
	if err := checkClientID(opts.ClientID); err != nil {
		return Message{}, err
	}
	if err := ctx.Err(); err != nil {
		return Message{}, err
	}
	var outs []*outboxRecord
	var names []string
	var last []int // index in outs of each session's last envelope
	var msg, earlier *messageRecord
	err := a.db.Update(func(tx *bolt.Tx) error {
		c, err := loadContact(tx, contact)
		if err != nil {
			return err
		}
		if opts.ClientID != "" {
			if earlier, err = sentWithClientID(tx, contact, opts.ClientID, ct.Text); earlier != nil || err != nil {
				return err
			}
		}
		sessions, err := sessionsOf(tx, contact)
		if err != nil {
			return err
		}
		// Seq is the first session's; each copy has its session's own.
		msg = &messageRecord{Origin: a.newOrigin(), Dir: Outgoing, Seq: 1, Body: ct.Text, Attach: ct.Attach, Sent: a.opts.Now(), State: Queued, Seen: true}
		if len(sessions) > 0 {
			msg.Seq = sessions[0].NextSeq
		}
		if _, _, err := insertMessage(tx, c, msg); err != nil {
			return err
		}
		if opts.ClientID != "" {
			if err := rememberClientID(tx, contact, opts.ClientID, msg.Local); err != nil {
				return err
			}
		}
		if err := saveContact(tx, c); err != nil {
			return err
		}
		// A device just restored or linked has no session yet, or only
		// unverified ones: the message waits for the first (gate).
		if sessions, err = gate(tx, contact, sessions, msg); err != nil {
			return err
		}
		for _, conv := range sessions {
			s, err := loadSession(conv)
			if err != nil {
				return err
			}
			queued, err := a.queueContent(tx, conv, s, msg)
			if err != nil {
				return err
			}
			if err := saveConv(tx, conv, s); err != nil {
				return err
			}
			for _, out := range queued {
				outs, names = append(outs, out), append(names, conv.Name)
			}
			last = append(last, len(outs)-1)
		}
		// The history entry is staged with the message; the finisher packs
		// it into a block (with those of other sends meanwhile) after the
		// put, off the critical path.
		return a.stageMessage(tx, contact, msg)
	})
	if err != nil {
		return Message{}, err
	}
	if earlier != nil {
		return a.resend(contact, earlier.Local)
	}
	m := msg.public(contact)
	perrs := a.putCopies(ctx, names, outs, true)
	if len(outs) == 0 {
		return m, fmt.Errorf("%w: no verified session with any of %s's devices yet (a new device: it goes out when one of theirs answers, at a later 'deaddrop read')", ErrNotStored, contact)
	}
	for _, i := range last {
		if perrs[i] == nil {
			m.State = Stored
		}
	}
	if m.State != Stored {
		return m, fmt.Errorf("%w: %w", ErrNotStored, errors.Join(perrs...))
	}
	return m, nil
}

// putCopies puts a message's copies (one per device of the contact)
// concurrently and hands the outcomes to the finisher, which records them,
// and uploads the history block that committed with the message, after Send
// returned (finish.go). It returns each copy's put error.
//
// withBlocks asks the finisher to upload this device's unstored history
// blocks too (Send's); Poll flushes its own.
func (a *Account) putCopies(ctx context.Context, names []string, outs []*outboxRecord, withBlocks bool) []error {
	perrs := make([]error, len(outs))
	var wg gosync.WaitGroup
	for i, out := range outs {
		wg.Go(func() { perrs[i] = a.tr.Put(ctx, out.slot(), out.Chunk) })
	}
	wg.Wait()
	now := a.opts.Now()
	outcomes := make([]putOutcome, len(outs))
	for i, out := range outs {
		outcomes[i] = putOutcome{names[i], out, perrs[i], now}
	}
	a.finishLater(outcomes, withBlocks)
	return perrs
}

// ErrNotStored is returned by Send when the message is safely queued but the
// store did not accept it yet; Republish will retry it.
var ErrNotStored = errors.New("not stored yet (it stays in the outbox: the next read, chat or republish sends it)")

// queue encrypts the next message of session c into the outbox, inside tx.
// It carries our current acknowledgement, so it settles any ack we owe. A
// data message's copy is indexed to its history entry msg, so that the
// session's ack marks it read.
func (a *Account) queue(tx *bolt.Tx, c *convRecord, s *ratchet.Session, kind Kind, body []byte, msg *messageRecord) (*outboxRecord, error) {
	now := a.opts.Now()
	env := &envelope{Kind: kind, Seq: c.NextSeq, Ack: c.RecvContig, Sent: now, Body: body}
	if msg != nil {
		copy(env.Origin[:], msg.Origin)
		env.Sent = msg.Sent
	}
	sealed, err := s.Encrypt(env.marshal(), a.opts.Rand)
	if err != nil {
		return nil, err
	}
	out := &outboxRecord{Seq: env.Seq, Kind: kind, Slot: sealed.Slot[:], Chunk: sealed.Chunk, Created: now, NextTry: now}
	if err := putRecord(tx.Bucket(bucketOutbox), contactKey(c.Name, env.Seq), out); err != nil {
		return nil, err
	}
	c.NextSeq++
	c.AckOwed = false
	if msg == nil {
		return out, nil
	}
	return out, tx.Bucket(bucketOutIndex).Put(contactKey(c.Name, env.Seq), u64(msg.Local))
}

// put stores one outbox entry and records the outcome. It returns the store's
// error; the entry stays in the outbox either way until the peer acks it.
func (a *Account) put(ctx context.Context, contact string, out *outboxRecord) error {
	perr := a.tr.Put(ctx, out.slot(), out.Chunk)
	now := a.opts.Now()
	err := a.db.Update(func(tx *bolt.Tx) error { return a.recordPut(tx, contact, out, perr, now) })
	if out.Kind == KindHello && errors.Is(perr, feed.ErrSlotUsed) {
		perr = fmt.Errorf("%s: %w; the conversation that invite would have started is dropped", contact, ErrInviteTaken)
	}
	return errors.Join(perr, err)
}

// recordPut records the outcome of one put of an outbox entry.
func (a *Account) recordPut(tx *bolt.Tx, contact string, out *outboxRecord, perr error, now time.Time) error {
	ob := tx.Bucket(bucketOutbox)
	key := contactKey(contact, out.Seq)
	data := ob.Get(key)
	if data == nil {
		return nil // acknowledged meanwhile
	}
	rec := new(outboxRecord)
	if err := decodeRecord("outbox entry", data, rec); err != nil {
		return err
	}
	rec.Attempts++
	rec.LastPut = now
	if rec.Kind == KindHello && errors.Is(perr, feed.ErrSlotUsed) {
		return a.dropTakenInvite(tx, contact) // see Accept
	}
	if perr != nil {
		rec.Failures++
		rec.LastError = perr.Error()
		rec.NextTry = now.Add(backoff(retryFirst, retryMax, rec.Failures))
		return putRecord(ob, key, rec)
	}
	rec.Failures, rec.LastError = 0, ""
	rec.NextTry = now.Add(backoff(republishFirst, republishMax, rec.Attempts))
	if !rec.Stored {
		rec.Stored = true
		if _, err := a.advanceOutgoing(tx, contact, rec.Seq, Stored); err != nil {
			return err
		}
	}
	return putRecord(ob, key, rec)
}

// advanceOutgoing moves our message with sequence number seq forward to
// state (never backwards) and returns the updated message, or nil when nothing
// changed or the message is not in the history (acks, hello).
func (a *Account) advanceOutgoing(tx *bolt.Tx, session string, seq uint64, state MessageState) (*messageRecord, error) {
	local := tx.Bucket(bucketOutIndex).Get(contactKey(session, seq))
	if local == nil {
		return nil, nil
	}
	contact := contactOfSession(session)
	m, err := messageByLocal(tx, contact, binary.BigEndian.Uint64(local))
	if err != nil {
		return nil, err
	}
	if changed, err := raiseMessage(tx, contact, m, state, false); err != nil || !changed {
		return nil, err
	}
	if state == Read {
		return m, a.stage(tx, stateEntry(contact, m))
	}
	return m, nil
}

// Republish puts every outbox entry that is due again: messages the store has
// not accepted yet, and stored messages the peer has not acknowledged (stores
// lose chunks: a Bee dev node restarts empty, IPNS records expire). It returns
// how many entries it tried and the errors of those that failed.
func (a *Account) Republish(ctx context.Context) (tried int, err error) {
	return a.republish(ctx, false)
}

// RepublishAll puts every outbox entry again now, due or not: after a store
// lost data (a restart, an outage) there is no need to wait for the back-off.
func (a *Account) RepublishAll(ctx context.Context) (tried int, err error) {
	return a.republish(ctx, true)
}

func (a *Account) republish(ctx context.Context, all bool) (tried int, err error) {
	a.settle() // a message Send just stored is not due again
	type due struct {
		contact string
		rec     *outboxRecord
	}
	var list []due
	now := a.opts.Now()
	err = a.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketOutbox).ForEach(func(k, v []byte) error {
			rec := new(outboxRecord)
			if err := decodeRecord("outbox entry", v, rec); err != nil {
				return err
			}
			if all || !rec.NextTry.After(now) {
				list = append(list, due{contactOf(k), rec})
			}
			return nil
		})
	})
	if err != nil {
		return 0, err
	}
	var errs []error
	for _, d := range list {
		if ctx.Err() != nil {
			break
		}
		if perr := a.put(ctx, d.contact, d.rec); perr != nil {
			errs = append(errs, fmt.Errorf("%s #%d: %w", d.contact, d.rec.Seq, perr))
		}
	}
	errs = append(errs, a.flushDirectory(ctx), a.flushLog(ctx))
	if all {
		errs = append(errs, a.republishAnnouncements(ctx))
	}
	if all && a.historyOn {
		errs = append(errs, a.republishDirectory(ctx), a.republishLog(ctx))
	}
	return len(list), errors.Join(errs...)
}

func contactOf(key []byte) string {
	for i, b := range key {
		if b == 0 {
			return string(key[:i])
		}
	}
	return string(key)
}

// OutboxEntry describes one unacknowledged message.
type OutboxEntry struct {
	Contact   string
	Session   string // the contact's name, or contact~device for another of their devices
	Seq       uint64
	Kind      Kind
	Stored    bool
	Attempts  int
	NextTry   time.Time
	LastError string
}

// Outbox lists the unacknowledged messages.
func (a *Account) Outbox() ([]OutboxEntry, error) {
	a.settle() // what Send returned is what this shows
	var out []OutboxEntry
	err := a.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketOutbox).ForEach(func(k, v []byte) error {
			r := new(outboxRecord)
			if err := decodeRecord("outbox entry", v, r); err != nil {
				return err
			}
			session := contactOf(k)
			out = append(out, OutboxEntry{contactOfSession(session), session, r.Seq, r.Kind, r.Stored, r.Attempts, r.NextTry, r.LastError})
			return nil
		})
	})
	return out, err
}
