package sync

import (
	"errors"
	"fmt"
	gosync "sync"

	"github.com/deaddrop/deaddrop/ratchet"
	bolt "go.etcd.io/bbolt"
)

// PollResult reports what one Poll found. New and Read list at most
// MaxListed messages each (the latest), so that a catch-up of any size runs
// in bounded memory; NewCount and ReadCount count them all, and History has
// every one.
type PollResult struct {
	New       []Message // incoming messages delivered, in order per contact
	Read      []Message // our messages the peer newly acknowledged
	NewCount  int
	ReadCount int
	Joined    []string // contacts who used one of our invites (not devices of contacts we have)
	Problems  []error  // chunks that did not open, malformed messages: reported, skipped
	Fetched   int      // conversation and invite slots asked for
	Rounds    int      // waves of GETs (round trips when the store is remote): see Poll

	joinedSessions []string // every session an invite started, device sessions too: Poll reads them at once
	shared         *listing // where a Poll's readers list messages, if set
}

// listing holds the messages a Poll lists, shared by its readers, so that
// the last MaxListed are kept over all of them (each reader keeping its own
// MaxListed would hold a thousand per conversation during a catch-up).
type listing struct {
	mu         gosync.Mutex
	news, read []Message
}

// list records delivered and read messages in res, counted in full and
// listed up to MaxListed.
func (res *PollResult) list(news, read []Message) {
	res.NewCount += len(news)
	res.ReadCount += len(read)
	if l := res.shared; l != nil {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.news, l.read = keepLast(l.news, news), keepLast(l.read, read)
		return
	}
	res.New, res.Read = keepLast(res.New, news), keepLast(res.Read, read)
}

// Progress is called after each catch-up round with the contact and how many
// messages were delivered so far in this Poll.
type Progress func(contact string, delivered int)

// MaxListed bounds the messages a PollResult lists.
const MaxListed = 1000

// keepLast appends add to list and keeps the last MaxListed.
func keepLast(list, add []Message) []Message {
	list = append(list, add...)
	if extra := len(list) - MaxListed; extra > 0 {
		list = append(list[:0:0], list[extra:]...)
	}
	return list
}

// maxHeldAhead bounds how far ahead of the next expected sequence number a
// message may be held for in-order delivery.
const maxHeldAhead = 4096

// keysOf lists the keys of a bucket: the sessions, or the contacts.
func (a *Account) keysOf(bucket []byte) ([]string, error) {
	var names []string
	err := a.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(k, _ []byte) error {
			names = append(names, string(k))
			return nil
		})
	})
	return names, err
}

// catchUpRound is one write transaction of a catch-up (one round's chunks,
// fetched before it began) and what it will publish when it commits.
type catchUpRound struct {
	a         *Account
	name      string
	tx        *bolt.Tx
	conv      *convRecord
	sess      *ratchet.Session
	result    PollResult // published into the caller's result on commit
	delivered int        // messages delivered by earlier commits
}

func (r *catchUpRound) begin() error {
	tx, err := r.a.db.Begin(true)
	if err != nil {
		return err
	}
	r.tx, r.result = tx, PollResult{}
	if r.conv, err = loadConv(tx, r.name); err == nil {
		r.sess, err = loadSession(r.conv)
	}
	if err != nil {
		r.rollback()
	}
	return err
}

func (r *catchUpRound) rollback() {
	if r.tx != nil {
		r.tx.Rollback()
		r.tx = nil
	}
}

// commit saves the round; with withAck it also queues, in the same
// transaction, the ack the conversation owes, and returns it for upload.
func (r *catchUpRound) commit(res *PollResult, withAck bool) (*outboxRecord, error) {
	var ack *outboxRecord
	if withAck && r.conv.AckOwed {
		var err error
		if ack, err = r.a.queue(r.tx, r.conv, r.sess, KindAck, nil, nil); err != nil {
			return nil, err
		}
	}
	if err := saveConv(r.tx, r.conv, r.sess); err != nil {
		return nil, err
	}
	err := r.tx.Commit()
	r.tx = nil
	if err != nil {
		return nil, err
	}
	res.list(r.result.New, r.result.Read)
	res.Problems = append(res.Problems, r.result.Problems...)
	r.delivered += len(r.result.New)
	return ack, nil
}

// apply decrypts the chunks of one round in slot order and applies them.
// The outer layers, which depend only on the slot, are opened in parallel
// first; the ratchet steps are sequential.
func (r *catchUpRound) apply(found []fetched) error {
	opened := openAll(found)
	for i, f := range found {
		pt, err := opened[i].inner, opened[i].err
		if err == nil {
			pt, err = r.sess.DecryptOpened(f.slot, opened[i].inner)
		}
		if errors.Is(err, ratchet.ErrDuplicate) || errors.Is(err, ratchet.ErrNotYet) {
			continue // read before, or readable once its chain's first message is
		}
		if err != nil {
			r.result.Problems = append(r.result.Problems, fmt.Errorf("%s: chunk at %v does not open: %w", r.name, f.slot, err))
			continue
		}
		env, err := parseEnvelope(pt)
		if err != nil {
			r.result.Problems = append(r.result.Problems, fmt.Errorf("%s: malformed message at %v: %w", r.name, f.slot, err))
			continue
		}
		in, read, err := r.a.apply(r.tx, r.conv, env)
		if err != nil {
			return err
		}
		if r.conv.metaOK {
			r.conv.metaOK = false
			if err := r.a.openGate(r.tx, r.conv, r.sess); err != nil {
				return err
			}
		}
		r.result.New = append(r.result.New, in...)
		r.result.Read = append(r.result.Read, read...)
	}
	return nil
}

// apply processes one authentic message of conversation c: its cumulative ack
// settles our outbox, and its content is delivered in sequence order (held
// until the gap below it fills).
func (a *Account) apply(tx *bolt.Tx, c *convRecord, env *envelope) (delivered, read []Message, err error) {
	if read, err = a.applyAck(tx, c, env.Ack); err != nil {
		return nil, nil, err
	}
	held := tx.Bucket(bucketHeld)
	switch {
	case env.Seq <= c.RecvContig:
		return nil, read, nil // a duplicate of something delivered
	case env.Seq > c.RecvContig+maxHeldAhead:
		return nil, read, nil // cannot be honest: we would never have skipped that far
	case env.Seq > c.RecvContig+1:
		return nil, read, held.Put(contactKey(c.Name, env.Seq), sealValue(env.marshal()))
	}
	for env != nil {
		m, err := a.deliver(tx, c, env)
		if err != nil {
			return nil, nil, err
		}
		if m != nil {
			delivered = append(delivered, *m)
		}
		env, err = takeHeld(held, c.Name, c.RecvContig+1)
		if err != nil {
			return nil, nil, err
		}
	}
	return delivered, read, nil
}

func takeHeld(held *bolt.Bucket, contact string, seq uint64) (*envelope, error) {
	key := contactKey(contact, seq)
	data := held.Get(key)
	if data == nil {
		return nil, nil
	}
	data, err := openValue("held message", data)
	if err != nil {
		return nil, err
	}
	env, err := parseEnvelope(data)
	if err != nil {
		return nil, fmt.Errorf("%w: held message: %v", ErrCorruptState, err)
	}
	return env, held.Delete(key)
}

// deliver records the next in-order message. Data messages enter the
// history (once, however many of our devices got a copy); meta messages
// update what we know of the peer's devices; every kind advances the received
// sequence.
func (a *Account) deliver(tx *bolt.Tx, c *convRecord, env *envelope) (*Message, error) {
	c.RecvContig = env.Seq
	if env.Kind.wantsAck() {
		c.AckOwed = true
	}
	switch env.Kind {
	case KindMeta:
		if err := a.handleMeta(tx, c, env.Body); err != nil {
			a.problem(fmt.Errorf("%s: device information: %w", c.Name, err))
		}
		return nil, nil
	case KindAck:
		if len(env.Body) > 0 {
			if err := a.handleReceipt(tx, c, env.Body); err != nil {
				a.problem(fmt.Errorf("%s: %w", c.Name, err))
			}
		}
		return nil, nil
	case KindData, KindFile, KindPart:
		if c.Unverified {
			// Nothing from a device session counts before its peer proved,
			// by a meta message the contact's list vouches for, that it is
			// the contact's device.
			a.problem(fmt.Errorf("%s: message #%d dropped: the session's device has not proven it is %s's (no valid meta message)", c.Name, env.Seq, c.Contact))
			return nil, nil
		}
	default:
		return nil, nil
	}
	ct, err := a.receiveContent(tx, c, env)
	if err != nil || ct == nil {
		return nil, err // a part of a message not complete yet, or a malformed one
	}
	contact, err := c.loadContact(tx)
	if err != nil {
		return nil, err
	}
	m := &messageRecord{Origin: append([]byte(nil), env.Origin[:]...), Dir: Incoming, Seq: env.Seq, Body: ct.Text, Attach: ct.Attach,
		Sent: env.Sent, Received: a.opts.Now(), State: Received}
	m, isNew, err := insertMessage(tx, contact, m)
	if err != nil || !isNew {
		return nil, err
	}
	if err := a.stageMessage(tx, contact.Name, m); err != nil {
		return nil, err
	}
	pub := m.public(contact.Name)
	return &pub, nil
}

func (a *Account) problem(err error) {
	a.problemsMu.Lock()
	a.problems = append(a.problems, err)
	a.problemsMu.Unlock()
}

func (a *Account) takeProblems() []error {
	a.problemsMu.Lock()
	defer a.problemsMu.Unlock()
	p := a.problems
	a.problems = nil
	return p
}

// applyAck removes everything up to ack from the outbox and marks our data
// messages read. Acks are cumulative, so order of arrival does not matter.
func (a *Account) applyAck(tx *bolt.Tx, c *convRecord, ack uint64) ([]Message, error) {
	if ack >= c.NextSeq {
		ack = c.NextSeq - 1 // never believe an ack for what we did not send
	}
	var read []Message
	ob := tx.Bucket(bucketOutbox)
	for seq := c.PeerAcked + 1; seq <= ack; seq++ {
		if err := ob.Delete(contactKey(c.Name, seq)); err != nil {
			return nil, err
		}
		m, err := a.advanceOutgoing(tx, c.Name, seq, Read)
		if err != nil {
			return nil, err
		}
		if m != nil {
			read = append(read, m.public(c.Contact))
		}
	}
	c.PeerAcked = max(c.PeerAcked, ack)
	return read, nil
}

// queueOwedAcks queues, in one transaction, an ack-only message to every
// conversation that received something wanting one that nothing we sent
// since carried. An idle account finds none and writes nothing.
func (a *Account) queueOwedAcks() (names []string, outs []*outboxRecord, err error) {
	var owed []string
	err = a.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketConvs).ForEach(func(k, _ []byte) error {
			c, err := loadConv(tx, string(k))
			if err == nil && c.AckOwed {
				owed = append(owed, c.Name)
			}
			return err
		})
	})
	if err != nil || len(owed) == 0 {
		return nil, nil, err
	}
	err = a.db.Update(func(tx *bolt.Tx) error {
		names, outs = nil, nil
		for _, name := range owed {
			c, err := loadConv(tx, name)
			if errors.Is(err, ErrUnknownContact) {
				continue // dropped meanwhile (its device was removed)
			}
			if err != nil {
				return err
			}
			if !c.AckOwed {
				continue // a send carried it meanwhile
			}
			s, err := loadSession(c)
			if err != nil {
				return err
			}
			out, err := a.queue(tx, c, s, KindAck, nil, nil)
			if err != nil {
				return err
			}
			if err := saveConv(tx, c, s); err != nil {
				return err
			}
			names, outs = append(names, name), append(outs, out)
		}
		return nil
	})
	return names, outs, err
}
