package sync

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/deaddrop/deaddrop/ratchet"
	bolt "go.etcd.io/bbolt"
)

// Device sessions. A session with another device of a contact (named
// contact~device) is started by a device invite on an announcement feed,
// which anyone holding the feed's secret can read: a device the contact (or
// we) removed, say. So a device session is trusted only as far as the
// contact's signed device list vouches for it:
//
//   - bound: the peer's ratchet identity must be the one the contact's
//     current signed list gives for the device the session is for, on both
//     sides (the inviter checks the joiner's identity when the first message
//     arrives, the joiner the inviter's before it accepts); anything else is
//     ErrDeviceImpostor and no session is made;
//   - gated: until the peer's meta message verifies (§10.4), the session
//     carries no data in either direction: data it brings is dropped and
//     reported, and data we send waits in bucketGated and goes out, in order,
//     in the transaction that verifies the meta.

// ErrDeviceImpostor reports a device session whose peer is not the device
// the contact's signed device list names: someone else (who could read the
// device invite) took it. No session is made; the invite is withdrawn and a
// new one is written.
var ErrDeviceImpostor = errors.New("a device invite was taken by someone who is not the device it was for " +
	"(whoever did it could read the contact's announcement feed: a removed device, say); no session was made, " +
	"nothing was sent to it, and a new invite is on its way")

// isDeviceSession tells a session with another device of a contact from the
// first session with them.
func isDeviceSession(name string) bool { return name != contactOfSession(name) }

// bindDevice checks that peer is the identity the contact's current signed
// device list gives for device.
func bindDevice(c *contactRecord, device string, peer ratchet.PublicIdentity) error {
	pa, ok := c.peerAccount()
	if !ok || len(c.PeerList) == 0 {
		return fmt.Errorf("%w: %s's device list is not known", ErrDeviceImpostor, c.Name)
	}
	l, err := verifyList(c.PeerList, pa)
	if err != nil {
		return err
	}
	d := l.find(device)
	if d == nil {
		return fmt.Errorf("%w: %s's device list has no device %s", ErrDeviceImpostor, c.Name, device)
	}
	if !bytes.Equal(d.Identity, peer.Bytes()) {
		listed, _ := ratchet.ParsePublicIdentity(d.Identity) // verifyList checked it
		return fmt.Errorf("%w: the session's peer is %s, %s's device list gives %s for device %s",
			ErrDeviceImpostor, peer.Fingerprint(), c.Name, listed.Fingerprint(), device)
	}
	return nil
}

// bindJoiner is bindDevice, as the inviter's side calls it (a test turns it
// off to show that the meta gate holds on its own).
var bindJoiner = bindDevice

// refuseImpostor withdraws a device invite whose first message came from an
// impostor, and lets maintainSessions write a new one for the device: its
// rendezvous slot is taken for good.
func (a *Account) refuseImpostor(id []byte, rec *inviteRecord) error {
	return a.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketInvites).Delete(id); err != nil {
			return err
		}
		c, err := loadContact(tx, rec.Contact)
		if errors.Is(err, ErrUnknownContact) {
			return nil
		}
		if err != nil {
			return err
		}
		c.Invited = slices.DeleteFunc(c.Invited, func(d string) bool { return d == rec.Device })
		return saveContact(tx, c)
	})
}

// gate keeps a data message from the unverified sessions among sessions: it
// records msg as waiting for each of them and returns the others. When none
// is left the message also waits for the contact (bucketWaiting), so that it
// is not lost if every unverified session turns out to be an impostor.
func gate(tx *bolt.Tx, contact string, sessions []*convRecord, msg *messageRecord) ([]*convRecord, error) {
	var open []*convRecord
	for _, s := range sessions {
		if !s.Unverified {
			open = append(open, s)
			continue
		}
		if err := tx.Bucket(bucketGated).Put(contactKey(s.Name, msg.Local), marker); err != nil {
			return nil, err
		}
	}
	if len(open) == 0 {
		if err := tx.Bucket(bucketWaiting).Put(contactKey(contact, msg.Local), marker); err != nil {
			return nil, err
		}
	}
	return open, nil
}

// openGate queues on session c, just verified, in the order they were
// written, the data messages that waited for it and those that waited for
// any session with the contact. The entries go out with the Poll's other
// writes (takeReleased).
func (a *Account) openGate(tx *bolt.Tx, c *convRecord, sess *ratchet.Session) error {
	c.Unverified = false
	var locals []uint64
	var keys [][]byte
	for _, src := range []struct {
		b      *bolt.Bucket
		prefix []byte
	}{{tx.Bucket(bucketGated), contactPrefix(c.Name)}, {tx.Bucket(bucketWaiting), contactPrefix(c.Contact)}} {
		cur := src.b.Cursor()
		for k, _ := cur.Seek(src.prefix); k != nil && hasPrefix(k, src.prefix); k, _ = cur.Next() {
			locals = append(locals, binary.BigEndian.Uint64(k[len(src.prefix):]))
			keys = append(keys, append([]byte(nil), k...))
		}
		for _, k := range keys {
			if err := src.b.Delete(k); err != nil {
				return err
			}
		}
		keys = keys[:0]
	}
	slices.Sort(locals)
	locals = slices.Compact(locals)
	for _, local := range locals {
		m, err := messageByLocal(tx, c.Contact, local)
		if err != nil {
			return err
		}
		out, err := a.queue(tx, c, sess, KindData, []byte(m.Body), m)
		if err != nil {
			return err
		}
		if err := tx.Bucket(bucketReleased).Put(contactKey(c.Name, out.Seq), marker); err != nil {
			return err
		}
	}
	return nil
}

// takeReleased lists the outbox entries openGate queued (inside a
// catch-up, which puts nothing), for writeAfterPoll to put with the acks, and
// forgets the list: an entry whose put fails stays in the outbox for
// Republish like any other.
func (a *Account) takeReleased() (names []string, outs []*outboxRecord, err error) {
	var none bool
	a.db.View(func(tx *bolt.Tx) error {
		none = isEmpty(tx.Bucket(bucketReleased))
		return nil
	})
	if none {
		return nil, nil, nil // the usual case: no write transaction
	}
	err = a.db.Update(func(tx *bolt.Tx) error {
		names, outs = nil, nil
		rel, ob := tx.Bucket(bucketReleased), tx.Bucket(bucketOutbox)
		var keys [][]byte
		err := rel.ForEach(func(k, _ []byte) error {
			keys = append(keys, append([]byte(nil), k...))
			data := ob.Get(k)
			if data == nil {
				return nil // acknowledged, or its session dropped, meanwhile
			}
			rec := new(outboxRecord)
			if err := decodeRecord("outbox entry", data, rec); err != nil {
				return err
			}
			names, outs = append(names, contactOf(k)), append(outs, rec)
			return nil
		})
		for _, k := range keys {
			if err == nil {
				err = rel.Delete(k)
			}
		}
		return err
	})
	return names, outs, err
}

// Announcement feed rotation. Device invites travel on announcement feeds,
// and a removed device keeps the secrets of the feeds it knew: its own
// account's feeds to each contact, and each contact's feed to its account.
// So the secret an account writes with moves on whenever either side
// removes a device, that is, whenever its own history epoch or the contact's
// (the epoch of the contact's newest signed list) moves on (§10.6):
//
//	secret(e, p) = MyAnn for e = p = 0, else
//	SHA-256("deaddrop announce secret v1" 0x00 ‖ MyAnn ‖ u64(e) ‖ HK_e ‖ u64(p))
//
// (e our epoch, p theirs). Every remaining device of ours computes the same
// secret on its own (MyAnn from the log, HK_e from the list that starts the
// epoch, p from the contact's list), so they agree without talking; a device
// we removed lacks HK_e, and the contact's devices never had any HK of ours.
// The contact's devices learn the secret from the meta message each of our
// devices sends on each of its sessions with them when it rotates
// (rotateAnn), after dropping the sessions with devices the contact
// removed: the removed device gets nothing. The meta's (ann_epoch,
// ann_peer_epoch) orders the secrets, and ann_epoch beyond the epoch of the
// signed list in the same meta is refused, so a device we removed (which
// holds only older lists) cannot point a contact at a feed of its own once
// our remaining devices told it the new one.

// annGen is the pair of epochs an announcement secret is of: the writer's,
// and its contact's as the writer knew it.
type annGen struct{ Own, Peer uint64 }

func (g annGen) after(h annGen) bool { return g.Own > h.Own || g.Own == h.Own && g.Peer > h.Peer }

func annFeedSecret(base []byte, g annGen, key [32]byte) []byte {
	if g == (annGen{}) {
		return nil // MyAnn itself
	}
	h := sha256.New()
	h.Write([]byte("deaddrop announce secret v1\x00"))
	h.Write(base)
	h.Write(u64(g.Own))
	h.Write(key[:])
	h.Write(u64(g.Peer))
	return h.Sum(nil)
}

// adoptPeerAnn takes the announcement secret of a verified meta message (or
// of our log) if it is the first we learn or of a greater pair of epochs
// than the one we read; it says whether anything changed. Reading starts
// over at index 0 of a new feed.
func adoptPeerAnn(c *contactRecord, ann []byte, g annGen) bool {
	cur := annGen{c.PeerAnnEpoch, c.PeerAnnPeerEpoch}
	switch {
	case len(c.PeerAnn) == 0:
		c.AnnRead = 0
	case !g.after(cur):
		return false
	case !bytes.Equal(c.PeerAnn, ann):
		c.AnnRead = 0
	}
	c.PeerAnn, c.PeerAnnEpoch, c.PeerAnnPeerEpoch = ann, g.Own, g.Peer
	return true
}

// rotateAnn moves our announcement feed to a contact on to our current
// history epoch and theirs, if it is behind: the new feed starts empty (our
// list is announced there again, and the device invites still unanswered
// are withdrawn and written there anew), and a meta message with the new
// secret goes on every session with the contact. It returns the metas to
// put.
func (a *Account) rotateAnn(name string) (sessions []string, outs []*outboxRecord, err error) {
	keys := a.epochKeys()
	err = a.db.Update(func(tx *bolt.Tx) error {
		sessions, outs = nil, nil
		c, err := loadContact(tx, name)
		if err != nil {
			return err
		}
		g := a.annGen(c)
		key, ok := keys[g.Own]
		if !ok || !g.after(annGen{c.AnnEpoch, c.AnnPeerEpoch}) {
			return nil // rotated meanwhile, or an epoch learnt meanwhile: the next poll
		}
		c.AnnEpoch, c.AnnPeerEpoch, c.MyAnnCur = g.Own, g.Peer, annFeedSecret(c.MyAnn, g, key)
		c.AnnWrite, c.AnnSent = 0, 0
		if err := deletePrefix(tx.Bucket(bucketAnnounced), contactPrefix(name)); err != nil {
			return err
		}
		convs, err := sessionsOf(tx, name)
		if err != nil {
			return err
		}
		// Invites on the old feed that nobody answered yet: the contact's
		// devices now read the new one.
		c.Invited = slices.DeleteFunc(c.Invited, func(d string) bool {
			return !slices.ContainsFunc(convs, func(s *convRecord) bool { return s.PeerDevice == d })
		})
		if err := dropDeviceInvites(tx, name, c.Invited); err != nil {
			return err
		}
		if err := saveContact(tx, c); err != nil {
			return err
		}
		for _, conv := range convs {
			conv.contact = c
			s, err := loadSession(conv)
			if err != nil {
				return err
			}
			meta, err := a.metaBody(tx, c)
			if err != nil {
				return err
			}
			out, err := a.queue(tx, conv, s, KindMeta, meta, nil)
			if err != nil {
				return err
			}
			if err := saveConv(tx, conv, s); err != nil {
				return err
			}
			sessions, outs = append(sessions, conv.Name), append(outs, out)
		}
		return nil
	})
	return sessions, outs, err
}

// annGen returns the pair of epochs our feed to contact c should be of: our
// current epoch and that of the newest list of theirs we hold (never less
// than the pair it is of now).
func (a *Account) annGen(c *contactRecord) annGen {
	e, _ := a.epochKeys().current()
	g := annGen{e, c.AnnPeerEpoch}
	if pa, ok := c.peerAccount(); ok && len(c.PeerList) != 0 {
		if l, err := verifyList(c.PeerList, pa); err == nil {
			g.Peer = max(g.Peer, l.Epoch)
		}
	}
	return g
}

// dropDeviceInvites withdraws our pending device invites to a contact's
// devices, except those for the devices in keep.
func dropDeviceInvites(tx *bolt.Tx, contact string, keep []string) error {
	b := tx.Bucket(bucketInvites)
	var ids [][]byte
	err := b.ForEach(func(k, v []byte) error {
		r := new(inviteRecord)
		if err := decodeRecord("invite", v, r); err != nil {
			return err
		}
		if r.Contact == contact && !slices.Contains(keep, r.Device) {
			ids = append(ids, append([]byte(nil), k...))
		}
		return nil
	})
	for _, id := range ids {
		if err == nil {
			err = b.Delete(id)
		}
	}
	return err
}

func isEmpty(b *bolt.Bucket) bool {
	k, _ := b.Cursor().First()
	return k == nil
}
