package sync

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/ratchet"
	bolt "go.etcd.io/bbolt"
)

// Announcement feeds. For each contact, an account keeps a feed only that
// contact can find and read (its secret travels in our meta messages). Our
// devices write our signed device list to it whenever it changes, and the
// device invites that start sessions between a new device of ours and each
// device of theirs. The contact's devices poll it, so that a device linked
// or restored while every other device is offline still reaches them.

// metaBody is the body of a KindMeta message.
type metaBody struct {
	Device  string    `json:"device"`  // the sending device's ID
	Account []byte    `json:"account"` // the sender's account identity
	Ann     []byte    `json:"ann"`     // the sender's announcement secret for us
	List    listBytes `json:"list"`    // the sender's signed device list
	// The epochs Ann is of (rotateAnn): the sender's, and ours as the
	// sender knew it.
	AnnEpoch     uint64 `json:"ann_epoch,omitempty"`
	AnnPeerEpoch uint64 `json:"ann_peer_epoch,omitempty"`
}

func (a *Account) metaBody(tx *bolt.Tx, c *contactRecord) ([]byte, error) {
	list, err := a.signedDeviceList(tx)
	if err != nil {
		return nil, err
	}
	return json.Marshal(metaBody{Device: a.device, Account: a.accountPub.Bytes(), Ann: c.myFeed(), List: list, AnnEpoch: c.AnnEpoch, AnnPeerEpoch: c.AnnPeerEpoch})
}

// handleMeta learns the peer device's ID, account and announcement feed from
// a meta message. It checks that the session's peer is the device the signed
// list says it is.
func (a *Account) handleMeta(tx *bolt.Tx, conv *convRecord, body []byte) error {
	m, l, err := parseMeta(body)
	if err != nil {
		return err
	}
	sess, err := loadSession(conv)
	if err != nil {
		return err
	}
	d := l.find(m.Device)
	if d == nil || !bytes.Equal(d.Identity, sess.Peer().Bytes()) {
		return fmt.Errorf("the device list of %s does not vouch for the device this session is with", conv.Contact)
	}
	c, err := conv.loadContact(tx) // the cached record: saveConv writes it back
	if err != nil {
		return err
	}
	if len(c.PeerAccount) != 0 && !bytes.Equal(c.PeerAccount, m.Account) {
		return errors.New("it names another account than the contact's")
	}
	if conv.PeerDevice != "" && conv.PeerDevice != m.Device {
		return fmt.Errorf("session is with device %s, message says %s", conv.PeerDevice, m.Device)
	}
	conv.PeerDevice = m.Device
	changed := len(c.PeerAccount) == 0
	if len(c.PeerAccount) == 0 {
		c.PeerAccount = m.Account
	}
	if adoptPeerAnn(c, m.Ann, annGen{m.AnnEpoch, m.AnnPeerEpoch}) {
		changed = true
	}
	if err := adoptPeerList(tx, c, m.List, l); err != nil {
		return err
	}
	if changed {
		if err := a.stage(tx, contactEntry(c)); err != nil {
			return err
		}
	}
	if conv.Unverified {
		// Verified from here on, for the messages held behind this one
		// too; the caller, which holds the live session, queues what
		// waited (openGate).
		conv.Unverified, conv.metaOK = false, true
	}
	return saveContact(tx, c)
}

// parseMeta decodes a meta message and verifies the device list it carries
// against the account it names.
func parseMeta(body []byte) (*metaBody, *DeviceList, error) {
	m := new(metaBody)
	if err := json.Unmarshal(body, m); err != nil {
		return nil, nil, fmt.Errorf("malformed: %v", err)
	}
	account, err := ratchet.ParsePublicIdentity(m.Account)
	if err != nil {
		return nil, nil, err
	}
	if err := validDeviceID(m.Device); err != nil {
		return nil, nil, err
	}
	if len(m.Ann) != 32 {
		return nil, nil, errors.New("announcement secret is not 32 bytes")
	}
	l, err := verifyList(m.List, account)
	if err != nil {
		return nil, nil, err
	}
	if m.AnnEpoch > l.Epoch {
		return nil, nil, fmt.Errorf("announcement secret of epoch %d with a device list of epoch %d", m.AnnEpoch, l.Epoch)
	}
	return m, l, nil
}

// adoptPeerList takes a newer device list of a contact and drops our
// sessions with devices it no longer has: a removed device gets nothing new.
func adoptPeerList(tx *bolt.Tx, c *contactRecord, signed []byte, l *DeviceList) error {
	if len(c.PeerList) != 0 {
		pa, _ := c.peerAccount()
		if old, err := verifyList(c.PeerList, pa); err == nil && old.Version >= l.Version {
			return nil
		}
	}
	c.PeerList = signed
	sessions, err := sessionsOf(tx, c.Name)
	if err != nil {
		return err
	}
	for _, s := range sessions {
		if s.PeerDevice == "" {
			continue
		}
		d := l.find(s.PeerDevice)
		if d == nil || !boundTo(s, d) {
			// Removed, or never that device: a session from before device
			// sessions were bound (issue 12) whose peer took the invite.
			if err := dropSession(tx, s.Name); err != nil {
				return err
			}
		}
	}
	return nil
}

// boundTo reports whether session s is with device d's identity.
func boundTo(s *convRecord, d *Device) bool {
	sess, err := loadSession(s)
	return err != nil || bytes.Equal(sess.Peer().Bytes(), d.Identity) // a session that does not load is not ours to judge here
}

// annEntry is one record of an announcement feed.
type annEntry struct {
	List   listBytes `json:"list,omitempty"`   // the writer's account's signed device list; not in device invites
	From   string    `json:"from,omitempty"`   // device invites: the inviting device
	For    string    `json:"for,omitempty"`    // …and the contact's device it is for
	Invite string    `json:"invite,omitempty"` // …and the invite
}

func annSlot(secret []byte, i uint64) feed.Slot { return secretSlot("announce", secret, u64(i)) }
func annAD(i uint64) []byte                     { return append([]byte("deaddrop announce\x00"), u64(i)...) }

// announcements reads every contact's announcement feed and keeps our
// sessions with their devices complete.
func (a *Account) announcements(ctx context.Context) error {
	names, err := a.keysOf(bucketContacts)
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range names {
		errs = append(errs, a.announcementsOf(ctx, a.fetchAll, name))
	}
	return errors.Join(errs...)
}

// announcementsOf reads one contact's announcements and keeps our sessions
// with its devices.
func (a *Account) announcementsOf(ctx context.Context, get fetcher, name string) error {
	var errs []error
	if err := a.readPeerAnn(ctx, get, name); err != nil {
		errs = append(errs, fmt.Errorf("%s: announcements: %w", name, err))
	}
	if err := a.maintainSessions(ctx, name); err != nil {
		errs = append(errs, fmt.Errorf("%s: devices: %w", name, err))
	}
	return errors.Join(errs...)
}

func (a *Account) readPeerAnn(ctx context.Context, get fetcher, name string) error {
	for {
		var c *contactRecord
		if err := a.db.View(func(tx *bolt.Tx) (err error) { c, err = loadContact(tx, name); return }); err != nil {
			return err
		}
		if len(c.PeerAnn) == 0 {
			return nil
		}
		chunk, err := one(get)(ctx, annSlot(c.PeerAnn, c.AnnRead))
		if errors.Is(err, feed.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := a.applyAnn(ctx, c, chunk); err != nil {
			a.problem(fmt.Errorf("%s: announcement %d: %w", name, c.AnnRead, err))
		}
		err = a.db.Update(func(tx *bolt.Tx) error {
			c, err := loadContact(tx, name)
			if err != nil {
				return err
			}
			c.AnnRead++
			return saveContact(tx, c)
		})
		if err != nil {
			return err
		}
	}
}

// applyAnn processes one announcement: a newer device list is adopted, and a
// device invite for this device from a device the list vouches for is
// accepted.
func (a *Account) applyAnn(ctx context.Context, c *contactRecord, chunk []byte) error {
	content, err := openContent(secretKey("announce", c.PeerAnn), annAD(c.AnnRead), chunk)
	if err != nil {
		return err
	}
	pa, ok := c.peerAccount()
	if !ok {
		return errors.New("contact's account identity unknown")
	}
	e, l, err := parseAnn(content, pa)
	if err != nil {
		return err
	}
	if l != nil {
		err = a.db.Update(func(tx *bolt.Tx) error {
			c, err := loadContact(tx, c.Name)
			if err != nil {
				return err
			}
			if err := adoptPeerList(tx, c, e.List, l); err != nil {
				return err
			}
			return saveContact(tx, c)
		})
	}
	if err != nil || e.For != a.device || e.Invite == "" {
		return err
	}
	return a.acceptDeviceInvite(ctx, c.Name, e.From, e.Invite)
}

// parseAnn decodes an announcement and verifies its device list. A device
// invite carries no list (nil): the one announced before it vouches for the
// inviting device.
func parseAnn(content []byte, account ratchet.PublicIdentity) (*annEntry, *DeviceList, error) {
	e := new(annEntry)
	if err := json.Unmarshal(content, e); err != nil {
		return nil, nil, fmt.Errorf("malformed: %v", err)
	}
	var l *DeviceList
	if len(e.List) > 0 || e.Invite == "" {
		var err error
		if l, err = verifyList(e.List, account); err != nil {
			return nil, nil, err
		}
	}
	if e.Invite != "" {
		if err := validDeviceID(e.From); err != nil {
			return nil, nil, fmt.Errorf("device invite: %v", err)
		}
		if err := validDeviceID(e.For); err != nil {
			return nil, nil, fmt.Errorf("device invite: %v", err)
		}
	}
	return e, l, nil
}

// acceptDeviceInvite starts a session with another device of a contact.
func (a *Account) acceptDeviceInvite(ctx context.Context, contact, from, text string) error {
	inv, err := ratchet.ParseInvite(text)
	if err != nil {
		return err
	}
	now := a.opts.Now()
	name := sessionName(contact, from)
	id := inv.ID()
	var outs []*outboxRecord
	err = a.db.Update(func(tx *bolt.Tx) error {
		c, err := loadContact(tx, contact)
		if err != nil {
			return err
		}
		if err := bindDevice(c, from, inv.Inviter); err != nil {
			return fmt.Errorf("device invite from %s: %w", from, err)
		}
		if tx.Bucket(bucketAccepted).Get(id[:]) != nil {
			return nil // accepted before
		}
		sessions, err := sessionsOf(tx, contact)
		if err != nil {
			return err
		}
		for _, s := range sessions {
			if s.PeerDevice != from {
				continue
			}
			if !s.Unverified {
				return nil
			}
			// A session whose inviter never answered (its invite was
			// withdrawn when the feed rotated): this invite replaces it.
			if err := dropSession(tx, s.Name); err != nil {
				return err
			}
		}
		sess, err := ratchet.Accept(a.id, inv, a.name, now, a.opts.Rand)
		if err != nil {
			return err
		}
		conv := &convRecord{Name: name, Contact: contact, PeerDevice: from, NextSeq: 1, Created: now, InviteID: id[:],
			Unverified: true, contact: c}
		if outs, err = a.startSession(tx, conv, sess, c, true); err != nil {
			return err
		}
		return tx.Bucket(bucketAccepted).Put(id[:], []byte(name))
	})
	for _, out := range outs {
		a.put(ctx, name, out)
	}
	return err
}

// deviceInviteTTL is how long a device invite waits for the contact's device.
const deviceInviteTTL = 90 * 24 * time.Hour

// maintainSessions announces our device list to a contact when it changed,
// and invites each of their devices that has no session with this device.
// Of two devices without a session, the one with the smaller ID invites, so
// that they do not start two.
func (a *Account) maintainSessions(ctx context.Context, name string) error {
	var c *contactRecord
	var mine *DeviceList
	var signed []byte
	var wanted []string
	err := a.db.View(func(tx *bolt.Tx) error {
		var err error
		if c, err = loadContact(tx, name); err != nil {
			return err
		}
		if signed, err = a.signedDeviceList(tx); err != nil {
			return err
		}
		if mine, err = verifyList(signed, a.accountPub); err != nil {
			return err
		}
		wanted, err = a.devicesToInvite(tx, c)
		return err
	})
	if err != nil {
		return err
	}
	// A removal (ours or theirs) moved an epoch on: move the feed on first,
	// so that what follows is written where a removed device cannot read it.
	if a.annGen(c).after(annGen{c.AnnEpoch, c.AnnPeerEpoch}) {
		names, outs, err := a.rotateAnn(name)
		if err != nil {
			return err
		}
		for i, out := range outs {
			a.put(ctx, names[i], out) // a failure leaves it queued
		}
		if err := a.db.View(func(tx *bolt.Tx) (err error) {
			if c, err = loadContact(tx, name); err == nil {
				wanted, err = a.devicesToInvite(tx, c)
			}
			return err
		}); err != nil {
			return err
		}
	}
	if c.AnnSent < mine.Version {
		if err := a.writeAnn(ctx, name, &annEntry{List: signed}, func(c *contactRecord) { c.AnnSent = mine.Version }); err != nil {
			return err
		}
	}
	for _, peer := range wanted {
		if err := a.inviteDevice(ctx, name, peer); err != nil {
			return err
		}
	}
	return nil
}

// devicesToInvite lists the contact's devices this device should invite.
func (a *Account) devicesToInvite(tx *bolt.Tx, c *contactRecord) ([]string, error) {
	pa, ok := c.peerAccount()
	if !ok || len(c.PeerList) == 0 {
		return nil, nil
	}
	l, err := verifyList(c.PeerList, pa)
	if err != nil {
		return nil, err
	}
	sessions, err := sessionsOf(tx, c.Name)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, d := range l.Devices {
		has := slices.ContainsFunc(sessions, func(s *convRecord) bool { return s.PeerDevice == d.ID || s.PeerDevice == "" })
		if !has && a.device < d.ID && !slices.Contains(c.Invited, d.ID) {
			out = append(out, d.ID)
		}
	}
	return out, nil
}

// inviteDevice writes a device invite for one of the contact's devices to
// our announcement feed; its pending half waits among our invites. It carries
// no device list: maintainSessions wrote ours to the feed before it, and a
// list and an invite together may not fit one chunk.
func (a *Account) inviteDevice(ctx context.Context, name, peer string) error {
	inv, pending, err := ratchet.NewInvite(a.id, a.name, deviceInviteTTL, a.opts.Now(), a.opts.Rand)
	if err != nil {
		return err
	}
	pb, err := pending.MarshalBinary()
	if err != nil {
		return err
	}
	id := inv.ID()
	e := &annEntry{From: a.device, For: peer, Invite: inv.String()}
	return a.writeAnn(ctx, name, e, func(c *contactRecord) { c.Invited = append(c.Invited, peer) },
		func(tx *bolt.Tx) error {
			rec := &inviteRecord{Pending: pb, Label: sessionName(name, peer), Contact: name, Device: peer,
				Created: a.opts.Now(), Expires: inv.Expires}
			return putRecord(tx.Bucket(bucketInvites), id[:], rec)
		})
}

// writeAnn appends an entry to our announcement feed for a contact, at the
// first free index (another of our devices may have taken ours), and then
// records the change in the same transaction as the index. Two of our
// devices writing the same index at the same instant could lose one entry;
// device changes are rare and made by a person, and the entry is written
// again on the next change.
func (a *Account) writeAnn(ctx context.Context, name string, e *annEntry, update func(*contactRecord), more ...func(*bolt.Tx) error) error {
	content, err := json.Marshal(e)
	if err != nil {
		return err
	}
	var c *contactRecord
	if err := a.db.View(func(tx *bolt.Tx) (err error) { c, err = loadContact(tx, name); return }); err != nil {
		return err
	}
	// Find the first free index: not every store refuses a second,
	// different chunk in a used slot (Swarm may keep either), so look first.
	i := c.AnnWrite
	for ; ; i++ {
		_, err := a.tr.Get(ctx, annSlot(c.myFeed(), i))
		if errors.Is(err, feed.ErrNotFound) {
			break
		}
		if err != nil {
			return err
		}
	}
	chunk, err := sealContent(secretKey("announce", c.myFeed()), annAD(i), content, a.opts.Rand)
	if err != nil {
		return err
	}
	if err := a.tr.Put(ctx, annSlot(c.myFeed(), i), chunk); err != nil {
		return err
	}
	return a.db.Update(func(tx *bolt.Tx) error {
		c, err := loadContact(tx, name)
		if err != nil {
			return err
		}
		// Kept so that 'republish' can put it back after a store lost it.
		if err := tx.Bucket(bucketAnnounced).Put(contactKey(name, i), sealValue(chunk)); err != nil {
			return err
		}
		c.AnnWrite = i + 1
		update(c)
		for _, f := range more {
			if err := f(tx); err != nil {
				return err
			}
		}
		return saveContact(tx, c)
	})
}

// republishAnnouncements puts every announcement this device wrote again.
func (a *Account) republishAnnouncements(ctx context.Context) error {
	return a.putListed(ctx, "announcement", announcementChunks)
}
