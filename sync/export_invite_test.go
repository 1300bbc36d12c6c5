package sync

import (
	"context"
	"time"

	"github.com/deaddrop/deaddrop/ratchet"
	bolt "go.etcd.io/bbolt"
)

// InviteUncheckedForTest issues an invite without checking that its label is
// free, as older versions did.
func InviteUncheckedForTest(a *Account, label string) (string, error) {
	now := a.opts.Now()
	inv, pending, err := ratchet.NewInvite(a.id, a.name, a.opts.InviteTTL, now, a.opts.Rand)
	if err != nil {
		return "", err
	}
	pb, _ := pending.MarshalBinary()
	id := inv.ID()
	err = a.db.Update(func(tx *bolt.Tx) error {
		rec := &inviteRecord{Pending: pb, Label: label, Created: now, Expires: inv.Expires}
		return putRecord(tx.Bucket(bucketInvites), id[:], rec)
	})
	return inv.String(), err
}

// AcceptLateForTest writes the first message of an invite as a client that
// ignores the expiry would: dated sent, which may be after it expired.
func AcceptLateForTest(a *Account, invite string, sent time.Time) error {
	inv, err := ratchet.ParseInvite(invite)
	if err != nil {
		return err
	}
	sess, err := ratchet.Accept(a.id, inv, a.name, inv.Expires.Add(-time.Second), a.opts.Rand)
	if err != nil {
		return err
	}
	hello, err := a.sealHello(sess, sent)
	if err != nil {
		return err
	}
	return a.tr.Put(context.Background(), hello.slot(), hello.Chunk)
}
