package sync

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/ratchet"
	bolt "go.etcd.io/bbolt"
)

// FeedSecretsForTest lists every announcement-feed secret r can derive for
// contact from what it holds: the contact's feed to it, and its own
// account's feed to the contact in every epoch whose key it knows. A removed
// device holds exactly this.
func FeedSecretsForTest(r *Account, contact string) ([][]byte, error) {
	var c *contactRecord
	if err := r.db.View(func(tx *bolt.Tx) (err error) { c, err = loadContact(tx, contact); return }); err != nil {
		return nil, err
	}
	out := [][]byte{c.MyAnn}
	if len(c.PeerAnn) != 0 {
		out = append(out, c.PeerAnn)
	}
	if len(c.MyAnnCur) != 0 {
		out = append(out, c.MyAnnCur)
	}
	// Every pair of epochs it could guess: its own epochs' keys, and the
	// contact's epochs up to well past the newest it saw.
	for e, key := range r.epochKeys() {
		for p := range uint64(c.AnnPeerEpoch + 4) {
			if s := annFeedSecret(c.MyAnn, annGen{e, p}, key); s != nil {
				out = append(out, s)
			}
		}
	}
	return out, nil
}

// StolenInvite is a device invite an attacker read off an announcement feed.
type StolenInvite struct {
	From, For string
	Invite    string
}

// ReadDeviceInvitesForTest reads, as an attacker holding secrets would, every
// device invite on the feeds those secrets open (from index 0 until a slot is
// empty).
func ReadDeviceInvitesForTest(r *Account, secrets [][]byte) ([]StolenInvite, error) {
	ctx := context.Background()
	var out []StolenInvite
	for _, secret := range secrets {
		for i := uint64(0); ; i++ {
			chunk, err := r.tr.Get(ctx, annSlot(secret, i))
			if errors.Is(err, feed.ErrNotFound) {
				break
			}
			if err != nil {
				return nil, err
			}
			content, err := openContent(secretKey("announce", secret), annAD(i), chunk)
			if err != nil {
				continue
			}
			var e annEntry
			if json.Unmarshal(content, &e) == nil && e.Invite != "" {
				out = append(out, StolenInvite{e.From, e.For, e.Invite})
			}
		}
	}
	return out, nil
}

// TakeDeviceInviteForTest accepts a stolen device invite with r's own
// identity, as a client would, and writes on the new session the hello, a
// meta message claiming to be the device the invite was for (with r's
// account and the newest list r holds), and a data message for each body.
func TakeDeviceInviteForTest(r *Account, s StolenInvite, bodies ...string) error {
	ctx := context.Background()
	inv, err := ratchet.ParseInvite(s.Invite)
	if err != nil {
		return err
	}
	now := r.opts.Now()
	sess, err := ratchet.Accept(r.id, inv, r.name, now, r.opts.Rand)
	if err != nil {
		return err
	}
	hello, err := r.sealHello(sess, now)
	if err != nil {
		return err
	}
	if err := r.tr.Put(ctx, hello.slot(), hello.Chunk); err != nil {
		return err
	}
	var list []byte
	if err := r.db.View(func(tx *bolt.Tx) (err error) { list, err = r.signedDeviceList(tx); return }); err != nil {
		return err
	}
	meta, err := json.Marshal(metaBody{Device: s.For, Account: r.accountPub.Bytes(), Ann: make([]byte, 32), List: list})
	if err != nil {
		return err
	}
	envs := []*envelope{{Kind: KindMeta, Seq: 2, Sent: now, Body: meta}}
	for i, b := range bodies {
		env := &envelope{Kind: KindData, Seq: uint64(3 + i), Sent: now, Body: []byte(b)}
		copy(env.Origin[:], r.newOrigin())
		envs = append(envs, env)
	}
	for _, env := range envs {
		sealed, err := sess.Encrypt(env.marshal(), r.opts.Rand)
		if err != nil {
			return err
		}
		if err := r.tr.Put(ctx, sealed.Slot, sealed.Chunk); err != nil {
			return err
		}
	}
	return nil
}

// SkipDeviceBindingForTest turns off the inviter's check of the joiner's
// identity against the contact's device list, as a client without it
// would, until the returned function is called.
func SkipDeviceBindingForTest() (restore func()) {
	bindJoiner = func(*contactRecord, string, ratchet.PublicIdentity) error { return nil }
	return func() { bindJoiner = bindDevice }
}

// SessionForTest describes one of a's sessions: its peer's identity
// fingerprint, whether it is still unverified, and how many data messages
// wait for it (gated) and are in its outbox.
func SessionForTest(a *Account, name string) (peer string, unverified bool, gated, outbox int, ok bool) {
	a.db.View(func(tx *bolt.Tx) error {
		c, err := loadConv(tx, name)
		if err != nil {
			return nil
		}
		s, err := loadSession(c)
		if err != nil {
			return nil
		}
		peer, unverified, ok = s.Peer().Fingerprint(), c.Unverified, true
		p := contactPrefix(name)
		cur := tx.Bucket(bucketGated).Cursor()
		for k, _ := cur.Seek(p); k != nil && hasPrefix(k, p); k, _ = cur.Next() {
			gated++
		}
		cur = tx.Bucket(bucketOutbox).Cursor()
		for k, v := cur.Seek(p); k != nil && hasPrefix(k, p); k, v = cur.Next() {
			rec := new(outboxRecord)
			if decodeRecord("outbox", v, rec) == nil && rec.Kind == KindData {
				outbox++
			}
		}
		return nil
	})
	return
}

// DeviceFingerprintForTest returns the fingerprint of a's device identity
// (the one its sessions use).
func DeviceFingerprintForTest(a *Account) string { return a.id.Public().Fingerprint() }

// MarkVerifiedForTest clears a session's unverified mark, as a session
// record written before device sessions were gated has none.
func MarkVerifiedForTest(a *Account, name string) error {
	return a.db.Update(func(tx *bolt.Tx) error {
		c, err := loadConv(tx, name)
		if err != nil {
			return err
		}
		c.Unverified = false
		return saveConv(tx, c, nil)
	})
}
