package sync

import (
	"context"
	"errors"
	"fmt"

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
		if tx.Bucket(bucketConvs).Get([]byte(label)) != nil {
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
	var out *outboxRecord
	id := inv.ID()
	err = a.db.Update(func(tx *bolt.Tx) error {
		if prev := tx.Bucket(bucketAccepted).Get(id[:]); prev != nil {
			return fmt.Errorf("%w (contact %q)", ErrInviteUsed, prev)
		}
		if tx.Bucket(bucketConvs).Get([]byte(name)) != nil {
			return fmt.Errorf("a contact named %q already exists (choose another with --as)", name)
		}
		c := &convRecord{Name: name, NextSeq: 1, NextLocal: 1, Created: now, InviteID: id[:]}
		var err error
		if out, _, err = a.queue(tx, c, sess, KindHello, []byte(a.name)); err != nil {
			return err
		}
		if err := saveConv(tx, c, sess); err != nil {
			return err
		}
		return tx.Bucket(bucketAccepted).Put(id[:], []byte(name))
	})
	if err != nil {
		return "", err
	}
	a.put(ctx, name, out) // a failure leaves it queued for Republish
	return name, nil
}
