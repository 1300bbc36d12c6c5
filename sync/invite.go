package sync

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/ratchet"
	bolt "go.etcd.io/bbolt"
)

// ErrInviteUsed reports an invite this account has already accepted: invites
// are single use.
var ErrInviteUsed = errors.New("invite already accepted")

// ErrInviteTaken reports an invite whose rendezvous slot already holds
// somebody else's first message: the invite was used before, by its
// recipient on another device or by whoever else saw it.
var ErrInviteTaken = errors.New("this invite was already used: ask for a new one, and compare fingerprints with its sender " +
	"(if you did not use it yourself, someone else had it)")

// ErrNameInUse reports a contact name already taken by a contact or by a
// pending invite.
var ErrNameInUse = errors.New("name already in use")

// Invite issues a single-use invite for the contact to be called label and
// returns its text form. The invite alone lets the other side start writing;
// Poll picks up their first message and creates the conversation. A label
// already used by a contact or a pending invite is refused: two invites under
// one name could not both become conversations.
func (a *Account) Invite(label string) (string, error) {
	return a.InviteFor(label, 0)
}

// InviteFor is Invite with the invite valid for ttl (0: Options.InviteTTL).
func (a *Account) InviteFor(label string, ttl time.Duration) (string, error) {
	if err := ValidName(label); err != nil {
		return "", err
	}
	if ttl < 0 {
		return "", fmt.Errorf("invite lifetime %v is negative", ttl)
	}
	if ttl == 0 {
		ttl = a.opts.InviteTTL
	}
	now := a.opts.Now()
	inv, pending, err := ratchet.NewInvite(a.id, a.name, ttl, now, a.opts.Rand)
	if err != nil {
		return "", err
	}
	pb, err := pending.MarshalBinary()
	if err != nil {
		return "", err
	}
	id := inv.ID()
	err = a.db.Update(func(tx *bolt.Tx) error {
		if err := nameFree(tx, label); err != nil {
			return err
		}
		rec := &inviteRecord{Pending: pb, Label: label, Created: now, Expires: inv.Expires}
		return putRecord(tx.Bucket(bucketInvites), id[:], rec)
	})
	if err != nil {
		return "", err
	}
	return inv.String(), nil
}

// CancelInvite withdraws the pending invite for label: its first message, if
// it ever comes, is no longer picked up.
func (a *Account) CancelInvite(label string) error {
	return a.db.Update(func(tx *bolt.Tx) error {
		id, _, err := pendingByLabel(tx, label)
		if err != nil {
			return err
		}
		if id == nil {
			return fmt.Errorf("no pending invite for %q ('deaddrop invite list' shows them)", label)
		}
		return tx.Bucket(bucketInvites).Delete(id)
	})
}

// pendingByLabel finds the pending invite (ours to a person, not a device
// invite) whose conversation will be called label.
func pendingByLabel(tx *bolt.Tx, label string) (id []byte, rec *inviteRecord, err error) {
	c := tx.Bucket(bucketInvites).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		r := new(inviteRecord)
		if err := decodeRecord("invite", v, r); err != nil {
			return nil, nil, err
		}
		if r.Contact == "" && r.Label == label {
			return append([]byte(nil), k...), r, nil
		}
	}
	return nil, nil, nil
}

// nameFree reports whether name can be given to a new contact: no contact,
// session or pending invite has it.
func nameFree(tx *bolt.Tx, name string) error {
	if tx.Bucket(bucketContacts).Get([]byte(name)) != nil || tx.Bucket(bucketConvs).Get([]byte(name)) != nil {
		return fmt.Errorf("%w: a contact named %q already exists", ErrNameInUse, name)
	}
	id, _, err := pendingByLabel(tx, name)
	if err != nil {
		return err
	}
	if id != nil {
		return fmt.Errorf("%w: an invite for %q is pending (cancel it with 'deaddrop invite cancel %s')", ErrNameInUse, name, name)
	}
	return nil
}

// freshName returns name if it is free, else the first free of name-2,
// name-3, …: a person is never refused, or merged into another, because of
// what we call them.
func freshName(tx *bolt.Tx, name string) (string, error) {
	err := nameFree(tx, name)
	if !errors.Is(err, ErrNameInUse) {
		return name, err
	}
	for i := 2; i < 1000; i++ {
		suffix := fmt.Sprintf("-%d", i)
		cand := name[:min(len(name), maxNameLen-len(suffix))] + suffix
		err := nameFree(tx, cand)
		if err == nil {
			return cand, nil
		}
		if !errors.Is(err, ErrNameInUse) {
			return "", err
		}
	}
	return "", fmt.Errorf("%w: no free name like %q", ErrNameInUse, name)
}

// maxNameLen is the longest name ValidName accepts.
const maxNameLen = 32

// Accept accepts an invite and starts the conversation with the inviter, who
// will be called name (empty: the name the invite carries, or a fresh
// variant of it, like bob-2, if a contact already has it; the returned name
// is the one given).
//
// The first message goes to the invite's rendezvous slot before anything is
// committed: the slot is written once, so finding it taken means somebody
// used the invite first, and then nothing is kept (a conversation nobody
// would ever read). A crash between that put and the commit costs the
// invite, never a message. If the store cannot be reached, the conversation
// is committed with the first message queued, as for any send; should the
// slot turn out taken when it is republished, the dead conversation is
// dropped then (see dropTakenInvite).
func (a *Account) Accept(ctx context.Context, invite, name string) (string, error) {
	inv, err := ratchet.ParseInvite(invite)
	if err != nil {
		return "", err
	}
	now := a.opts.Now()
	if err := inv.CheckExpiry(now); err != nil {
		return "", err
	}
	if inv.Inviter == a.id.Public() {
		return "", errors.New("this is your own invite: give it to the person you want to talk to")
	}
	chosen := name != ""
	if !chosen {
		name = inv.Name
	}
	if err := ValidName(name); err != nil {
		return "", fmt.Errorf("the invite's name cannot be used as a contact name (choose one with --as): %w", err)
	}
	id := inv.ID()
	if err := a.checkNotAccepted(id[:]); err != nil {
		return "", err
	}
	if name, err = a.pickName(name, chosen); err != nil {
		return "", err
	}
	if err := a.checkRendezvousFree(ctx, inv.Rendezvous()); err != nil {
		return "", err
	}
	sess, err := ratchet.Accept(a.id, inv, a.name, now, a.opts.Rand)
	if err != nil {
		return "", err
	}
	hello, err := a.sealHello(sess, now)
	if err != nil {
		return "", err
	}
	perr := a.tr.Put(ctx, hello.slot(), hello.Chunk)
	if errors.Is(perr, feed.ErrSlotUsed) {
		return "", ErrInviteTaken
	}
	var outs []*outboxRecord
	err = a.db.Update(func(tx *bolt.Tx) error {
		if prev := tx.Bucket(bucketAccepted).Get(id[:]); prev != nil {
			return fmt.Errorf("%w (contact %q)", ErrInviteUsed, prev)
		}
		// Taken since pickName (by a concurrent join): the first message
		// is out, so take a fresh name rather than lose the invite.
		name, err := freshName(tx, name)
		if err != nil {
			return err
		}
		contact, err := a.newContact(tx, name, now)
		if err != nil {
			return err
		}
		c := &convRecord{Name: name, Contact: name, NextSeq: 2, Created: now, InviteID: id[:], contact: contact}
		if err := putRecord(tx.Bucket(bucketOutbox), contactKey(name, hello.Seq), hello); err != nil {
			return err
		}
		if err := a.recordPut(tx, name, hello, perr, now); err != nil {
			return err
		}
		if outs, err = a.startSession(tx, c, sess, contact, false); err != nil {
			return err
		}
		return tx.Bucket(bucketAccepted).Put(id[:], []byte(name))
	})
	if err != nil {
		return "", err
	}
	for _, out := range outs {
		a.put(ctx, name, out) // a failure leaves it queued for Republish
	}
	a.flushLog(ctx)
	return name, nil
}

// pickName returns the name a new contact will get: name itself if the user
// chose it (refused if in use), else name or a fresh variant of it.
func (a *Account) pickName(name string, chosen bool) (string, error) {
	err := a.db.View(func(tx *bolt.Tx) (err error) {
		if chosen {
			return nameFree(tx, name)
		}
		name, err = freshName(tx, name)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("%w (choose another name with --as)", err)
	}
	return name, nil
}

func (a *Account) checkNotAccepted(id []byte) error {
	return a.db.View(func(tx *bolt.Tx) error {
		if prev := tx.Bucket(bucketAccepted).Get(id); prev != nil {
			return fmt.Errorf("%w (contact %q)", ErrInviteUsed, prev)
		}
		return nil
	})
}

// checkRendezvousFree looks at the invite's rendezvous slot before writing
// to it: not every store refuses different bytes in a used slot (Swarm may
// keep either), so the put alone would not always tell. A store that cannot
// be reached is not an error here: the put will be queued.
func (a *Account) checkRendezvousFree(ctx context.Context, slot feed.Slot) error {
	_, err := a.tr.Get(ctx, slot)
	if err == nil {
		return ErrInviteTaken
	}
	return nil
}

// sealHello encrypts the joiner's first message (sequence number 1, to the
// rendezvous slot) as an outbox entry, without storing it anywhere.
func (a *Account) sealHello(sess *ratchet.Session, now time.Time) (*outboxRecord, error) {
	env := &envelope{Kind: KindHello, Seq: 1, Sent: now, Body: []byte(a.name)}
	sealed, err := sess.Encrypt(env.marshal(), a.opts.Rand)
	if err != nil {
		return nil, err
	}
	return &outboxRecord{Seq: 1, Kind: KindHello, Slot: sealed.Slot[:], Chunk: sealed.Chunk, Created: now, NextTry: now}, nil
}

// dropTakenInvite forgets a session whose first message could never be
// stored because its invite's rendezvous slot holds another joiner's: nobody
// will ever read it. The contact goes too if nothing was written to them;
// otherwise their history stays, without the dead session.
func (a *Account) dropTakenInvite(tx *bolt.Tx, session string) error {
	if err := dropSession(tx, session); err != nil {
		return err
	}
	name := contactOfSession(session)
	c, err := loadContact(tx, name)
	if err != nil || c.NextLocal > 1 || name != session {
		return err
	}
	if err := deletePrefix(tx.Bucket(bucketAnnounced), contactPrefix(name)); err != nil {
		return err
	}
	return tx.Bucket(bucketContacts).Delete([]byte(name))
}

func deletePrefix(b *bolt.Bucket, p []byte) error {
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(p); k != nil && hasPrefix(k, p); k, _ = c.Next() {
		keys = append(keys, append([]byte(nil), k...))
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// startSession saves a new session and queues its first messages: the hello
// (joiner side) and our meta message, which tells the peer device ours.
func (a *Account) startSession(tx *bolt.Tx, c *convRecord, sess *ratchet.Session, contact *contactRecord, hello bool) ([]*outboxRecord, error) {
	var outs []*outboxRecord
	if hello {
		out, err := a.queue(tx, c, sess, KindHello, []byte(a.name), nil)
		if err != nil {
			return nil, err
		}
		outs = append(outs, out)
	}
	meta, err := a.metaBody(tx, contact)
	if err != nil {
		return nil, err
	}
	out, err := a.queue(tx, c, sess, KindMeta, meta, nil)
	if err != nil {
		return nil, err
	}
	outs = append(outs, out)
	if c.Unverified {
		return outs, saveConv(tx, c, sess) // what waits goes out when its meta verifies (openGate)
	}
	waiting, err := a.queueWaiting(tx, c, sess)
	if err != nil {
		return nil, err
	}
	return append(outs, waiting...), saveConv(tx, c, sess)
}

// queueWaiting puts on a new session the messages written to its contact
// while we had no session with any of the contact's devices (a device just
// restored or linked), in the order they were written.
func (a *Account) queueWaiting(tx *bolt.Tx, c *convRecord, sess *ratchet.Session) ([]*outboxRecord, error) {
	waiting := tx.Bucket(bucketWaiting)
	p := contactPrefix(c.Contact)
	var keys [][]byte
	var outs []*outboxRecord
	cur := waiting.Cursor()
	for k, _ := cur.Seek(p); k != nil && hasPrefix(k, p); k, _ = cur.Next() {
		m, err := messageByLocal(tx, c.Contact, binary.BigEndian.Uint64(k[len(p):]))
		if err != nil {
			return nil, err
		}
		queued, err := a.queueContent(tx, c, sess, m)
		if err != nil {
			return nil, err
		}
		outs, keys = append(outs, queued...), append(keys, append([]byte(nil), k...))
	}
	for _, k := range keys {
		if err := waiting.Delete(k); err != nil {
			return nil, err
		}
	}
	return outs, nil
}

// errInviteGone reports an invite used or withdrawn while its first
// message was being read.
var errInviteGone = errors.New("invite already used")

// inviteGrace is how long after its expiry an invite's rendezvous slot is
// still polled, for a joiner who accepted just before the deadline.
const inviteGrace = 7 * 24 * time.Hour

func (a *Account) pollInvites(ctx context.Context, get fetcher, res *PollResult) error {
	type pending struct {
		id  []byte
		rec *inviteRecord
		p   *ratchet.PendingInvite
	}
	var list []pending
	now := a.opts.Now()
	var expired [][]byte
	err := a.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketInvites).ForEach(func(k, v []byte) error {
			r := new(inviteRecord)
			if err := decodeRecord("invite", v, r); err != nil {
				return err
			}
			if now.After(r.Expires.Add(inviteGrace)) {
				expired = append(expired, append([]byte(nil), k...))
				return nil
			}
			p, err := ratchet.UnmarshalPendingInvite(r.Pending)
			if err != nil {
				return fmt.Errorf("%w: invite for %s: %v", ErrCorruptState, r.Label, err)
			}
			list = append(list, pending{append([]byte(nil), k...), r, p})
			return nil
		})
	})
	if err == nil && len(expired) > 0 {
		err = a.db.Update(func(tx *bolt.Tx) error {
			for _, k := range expired {
				if err := tx.Bucket(bucketInvites).Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err != nil || len(list) == 0 {
		return err
	}
	slots := make([]feed.Slot, len(list))
	for i, p := range list {
		slots[i] = p.p.Rendezvous()
	}
	results := get(ctx, slots)
	res.Fetched += len(slots)
	res.Rounds++
	for i, r := range results {
		if r.err != nil {
			continue // not yet used, or the store is down: try next Poll
		}
		rec := list[i].rec
		name, renamed, err := a.join(ctx, list[i].id, rec, list[i].p, r.chunk)
		if errors.Is(err, errInviteGone) && rec.Contact != "" {
			continue // a device invite withdrawn meanwhile (rotateAnn): its device gets a new one
		}
		if err != nil {
			res.Problems = append(res.Problems, fmt.Errorf("invite for %s: %w", rec.Label, err))
			continue
		}
		res.joinedSessions = append(res.joinedSessions, name)
		if rec.Contact != "" {
			continue // another device of a contact we have: not news to the user
		}
		res.Joined = append(res.Joined, name)
		if renamed {
			res.Problems = append(res.Problems, fmt.Errorf("the person invited as %s is called %s: a contact named %s already existed", rec.Label, name, rec.Label))
		}
	}
	return nil
}

// join turns a pending invite whose rendezvous slot holds the joiner's first
// message into a conversation, and consumes the invite, in one transaction.
// It returns the session's name, which for an invite to a person is also the
// contact's: the invite's label, or a fresh variant of it if a contact took
// that name meanwhile (renamed says so).
func (a *Account) join(ctx context.Context, id []byte, rec *inviteRecord, p *ratchet.PendingInvite, chunk []byte) (name string, renamed bool, err error) {
	now := a.opts.Now()
	sess, peer, peerName, pt, err := ratchet.AcceptInit(a.id, p, chunk, now)
	if err != nil {
		return "", false, err
	}
	if rec.Contact != "" {
		// A device invite: whoever could read the announcement feed could
		// have taken it. The joiner must be the device the contact's signed
		// list names, or nothing is made of it.
		var berr error
		if err := a.db.View(func(tx *bolt.Tx) error {
			c, err := loadContact(tx, rec.Contact)
			if err == nil {
				berr = bindJoiner(c, rec.Device, peer)
			}
			return err
		}); err != nil {
			return "", false, err
		}
		if berr != nil {
			if errors.Is(berr, ErrDeviceImpostor) {
				berr = errors.Join(berr, a.refuseImpostor(id, rec))
			}
			return "", false, berr
		}
	}
	env, err := parseEnvelope(pt)
	if err != nil {
		return "", false, err
	}
	if env.Kind != KindHello || env.Seq != 1 {
		return "", false, fmt.Errorf("first message is %v #%d, want hello #1", env.Kind, env.Seq)
	}
	if err := checkWrittenInTime(env, rec); err != nil {
		a.cancelExpired(id)
		return "", false, err
	}
	name = rec.Label
	if name == "" {
		name = peerName
	}
	var outs []*outboxRecord
	err = a.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketInvites).Get(id) == nil {
			return errInviteGone
		}
		// Our own pending invite holds the label: free it first.
		if err := tx.Bucket(bucketInvites).Delete(id); err != nil {
			return err
		}
		var contact *contactRecord
		var err error
		if rec.Contact == "" {
			if name, err = freshName(tx, name); err != nil {
				return err
			}
			renamed = name != rec.Label && rec.Label != ""
			contact, err = a.newContact(tx, name, now)
		} else {
			if old, err := loadConv(tx, name); err == nil {
				if !old.Unverified {
					return fmt.Errorf("a session named %q already exists", name)
				}
				// Never verified (its peer accepted an invite of ours that
				// a feed rotation withdrew): this one replaces it.
				if err := dropSession(tx, name); err != nil {
					return err
				}
			} else if !errors.Is(err, ErrUnknownContact) {
				return err
			}
			contact, err = loadContact(tx, rec.Contact) // a device invite
			if err == nil {
				err = bindJoiner(contact, rec.Device, peer) // the list may have changed since
			}
		}
		if err != nil {
			return err
		}
		c := &convRecord{Name: name, Contact: contact.Name, PeerDevice: rec.Device, NextSeq: 1, Created: now, InviteID: id,
			Unverified: rec.Contact != "", contact: contact}
		if _, _, err := a.apply(tx, c, env); err != nil {
			return err
		}
		outs, err = a.startSession(tx, c, sess, contact, false)
		return err
	})
	if err != nil {
		return "", false, err
	}
	for _, out := range outs {
		a.put(ctx, name, out) // a failure leaves it queued
	}
	return name, renamed, nil
}

// checkWrittenInTime refuses a first message written after its invite
// expired. The store gives no trusted time of writing, so this is the
// joiner's own clock, authenticated by the session: an honest joiner's
// client refuses an expired invite before writing, so only a tampered
// client, or a clock far off, gets here. Polling goes on for inviteGrace
// after the expiry so that a joiner who accepted in time is not refused
// because we were offline.
func checkWrittenInTime(env *envelope, rec *inviteRecord) error {
	if env.Sent.Before(rec.Expires) {
		return nil
	}
	return fmt.Errorf("%w: its first message was written at %s, after the invite expired at %s; the invite is withdrawn (send a new one)",
		ratchet.ErrInviteExpired, env.Sent.UTC().Format(time.RFC3339), rec.Expires.UTC().Format(time.RFC3339))
}

// cancelExpired withdraws an invite whose first message came too late, so
// that it is reported once, not on every Poll.
func (a *Account) cancelExpired(id []byte) {
	err := a.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketInvites).Delete(id) })
	if err != nil {
		a.problem(fmt.Errorf("withdrawing an expired invite: %w", err))
	}
}
