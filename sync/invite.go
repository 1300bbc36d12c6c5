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

// Invite issues a single-use invite for the contact to be called label and
// returns its text form. The invite alone lets the other side start writing;
// Poll picks up their first message and creates the conversation.
func (a *Account) Invite(label string) (string, error) {
	if err := ValidName(label); err != nil {
		return "", err
	}
	now := a.opts.Now()
	inv, pending, err := ratchet.NewInvite(a.id, a.name, a.opts.InviteTTL, now, a.opts.Rand)
	if err != nil {
		return "", err
	}
	pb, err := pending.MarshalBinary()
	if err != nil {
		return "", err
	}
	id := inv.ID()
	err = a.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketContacts).Get([]byte(label)) != nil || tx.Bucket(bucketConvs).Get([]byte(label)) != nil {
			return fmt.Errorf("a contact named %q already exists", label)
		}
		rec := &inviteRecord{Pending: pb, Label: label, Created: now, Expires: inv.Expires}
		return putRecord(tx.Bucket(bucketInvites), id[:], rec)
	})
	if err != nil {
		return "", err
	}
	return inv.String(), nil
}

// Accept accepts an invite and starts the conversation with the inviter, who
// will be called name (empty: the name the invite carries). It writes the
// first message to the invite's rendezvous slot right away; the inviter need
// not be online.
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
	if name == "" {
		name = inv.Name
	}
	if err := ValidName(name); err != nil {
		return "", fmt.Errorf("the invite's name cannot be used as a contact name (choose one with --as): %w", err)
	}
	sess, err := ratchet.Accept(a.id, inv, a.name, now, a.opts.Rand)
	if err != nil {
		return "", err
	}
	id := inv.ID()
	var outs []*outboxRecord
	err = a.db.Update(func(tx *bolt.Tx) error {
		if prev := tx.Bucket(bucketAccepted).Get(id[:]); prev != nil {
			return fmt.Errorf("%w (contact %q)", ErrInviteUsed, prev)
		}
		contact, err := a.newContact(tx, name, now)
		if err != nil {
			return fmt.Errorf("%w (choose another name with --as)", err)
		}
		c := &convRecord{Name: name, Contact: name, NextSeq: 1, Created: now, InviteID: id[:], contact: contact}
		if outs, err = a.startSession(tx, c, sess, contact, true); err != nil {
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
		out, err := a.queue(tx, c, sess, KindData, []byte(m.Body), m)
		if err != nil {
			return nil, err
		}
		outs, keys = append(outs, out), append(keys, append([]byte(nil), k...))
	}
	for _, k := range keys {
		if err := waiting.Delete(k); err != nil {
			return nil, err
		}
	}
	return outs, nil
}

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
		name, err := a.join(ctx, list[i].id, list[i].rec, list[i].p, r.chunk)
		if err != nil {
			res.Problems = append(res.Problems, fmt.Errorf("invite for %s: %w", list[i].rec.Label, err))
			continue
		}
		res.Joined = append(res.Joined, name)
	}
	return nil
}

// join turns a pending invite whose rendezvous slot holds the joiner's first
// message into a conversation, and consumes the invite, in one transaction.
func (a *Account) join(ctx context.Context, id []byte, rec *inviteRecord, p *ratchet.PendingInvite, chunk []byte) (string, error) {
	now := a.opts.Now()
	sess, _, peerName, pt, err := ratchet.AcceptInit(a.id, p, chunk, now)
	if err != nil {
		return "", err
	}
	env, err := parseEnvelope(pt)
	if err != nil {
		return "", err
	}
	if env.Kind != KindHello || env.Seq != 1 {
		return "", fmt.Errorf("first message is %v #%d, want hello #1", env.Kind, env.Seq)
	}
	name := rec.Label
	if name == "" {
		name = peerName
	}
	var outs []*outboxRecord
	err = a.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketInvites).Get(id) == nil {
			return errors.New("invite already used")
		}
		if tx.Bucket(bucketConvs).Get([]byte(name)) != nil {
			return fmt.Errorf("a contact named %q already exists", name)
		}
		var contact *contactRecord
		var err error
		if rec.Contact == "" {
			contact, err = a.newContact(tx, name, now)
		} else {
			contact, err = loadContact(tx, rec.Contact) // a device invite
		}
		if err != nil {
			return err
		}
		c := &convRecord{Name: name, Contact: contact.Name, PeerDevice: rec.Device, NextSeq: 1, Created: now, InviteID: id, contact: contact}
		if _, _, err := a.apply(tx, c, env); err != nil {
			return err
		}
		if outs, err = a.startSession(tx, c, sess, contact, false); err != nil {
			return err
		}
		return tx.Bucket(bucketInvites).Delete(id)
	})
	if err != nil {
		return "", err
	}
	for _, out := range outs {
		a.put(ctx, name, out) // a failure leaves it queued
	}
	return name, nil
}
