package sync

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/deaddrop/deaddrop/ratchet"
	bolt "go.etcd.io/bbolt"
)

// contactRecord is one person we talk to, over all of our devices' sessions
// with all of theirs. The history of the conversation hangs off it.
type contactRecord struct {
	Name        string    `json:"name"`
	NextLocal   uint64    `json:"next_local"` // next local history index
	Created     time.Time `json:"created"`
	MyAnn       []byte    `json:"my_ann"`                 // secret of our announcement feed to them
	PeerAnn     []byte    `json:"peer_ann,omitempty"`     // secret of theirs, once they told us
	PeerAccount []byte    `json:"peer_account,omitempty"` // their account identity, once known
	PeerList    []byte    `json:"peer_list,omitempty"`    // their newest signed device list
	AnnRead     uint64    `json:"ann_read"`               // next index of their feed to read
	AnnWrite    uint64    `json:"ann_write"`              // no index of ours below is free
	AnnSent     uint64    `json:"ann_sent"`               // version of our device list announced
	Invited     []string  `json:"invited,omitempty"`      // their devices we sent a device invite
	// AnnEpoch and AnnPeerEpoch are our history epoch and the contact's (the
	// epoch of their newest device list we hold) of the announcement feed
	// we write to them now (AnnWrite, AnnSent, Invited and the announced
	// chunks are of that feed), and MyAnnCur its secret (annFeedSecret;
	// empty while both are 0: the secret is MyAnn itself).
	AnnEpoch     uint64 `json:"ann_epoch,omitempty"`
	AnnPeerEpoch uint64 `json:"ann_peer_epoch,omitempty"`
	MyAnnCur     []byte `json:"my_ann_cur,omitempty"`
	// PeerAnnEpoch and PeerAnnPeerEpoch are the same pair for PeerAnn, as
	// the meta message that gave it said: only a meta with a greater pair
	// replaces it (they rotated the feed after a removal).
	PeerAnnEpoch     uint64 `json:"peer_ann_epoch,omitempty"`
	PeerAnnPeerEpoch uint64 `json:"peer_ann_peer_epoch,omitempty"`
}

// myFeed returns the secret of the announcement feed we write to this
// contact now.
func (c *contactRecord) myFeed() []byte {
	if len(c.MyAnnCur) != 0 {
		return c.MyAnnCur
	}
	return c.MyAnn
}

func (c *contactRecord) validate() error {
	switch {
	case ValidName(c.Name) != nil:
		return fmt.Errorf("bad contact name %q", c.Name)
	case c.NextLocal == 0:
		return errors.New("next history index is 0")
	case len(c.MyAnn) != 32:
		return fmt.Errorf("announcement secret of %d bytes", len(c.MyAnn))
	case len(c.PeerAnn) != 0 && len(c.PeerAnn) != 32:
		return fmt.Errorf("peer announcement secret of %d bytes", len(c.PeerAnn))
	case len(c.MyAnnCur) != 0 && len(c.MyAnnCur) != 32:
		return fmt.Errorf("current announcement secret of %d bytes", len(c.MyAnnCur))
	case len(c.PeerAccount) != 0 && len(c.PeerAccount) != 64:
		return fmt.Errorf("peer account identity of %d bytes", len(c.PeerAccount))
	}
	return nil
}

func (c *contactRecord) peerAccount() (ratchet.PublicIdentity, bool) {
	p, err := ratchet.ParsePublicIdentity(c.PeerAccount)
	return p, err == nil
}

func loadContact(tx *bolt.Tx, name string) (*contactRecord, error) {
	data := tx.Bucket(bucketContacts).Get([]byte(name))
	if data == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownContact, name)
	}
	c := new(contactRecord)
	if err := decodeRecord("contact "+name, data, c); err != nil {
		return nil, err
	}
	return c, nil
}

func saveContact(tx *bolt.Tx, c *contactRecord) error {
	return putRecord(tx.Bucket(bucketContacts), []byte(c.Name), c)
}

// newContact creates the record of a new contact, with a fresh secret for
// our announcement feed, and logs it.
func (a *Account) newContact(tx *bolt.Tx, name string, now time.Time) (*contactRecord, error) {
	if tx.Bucket(bucketContacts).Get([]byte(name)) != nil || tx.Bucket(bucketConvs).Get([]byte(name)) != nil {
		return nil, fmt.Errorf("a contact named %q already exists", name)
	}
	c := &contactRecord{Name: name, NextLocal: 1, Created: now, MyAnn: make([]byte, 32)}
	if _, err := rand.Read(c.MyAnn); err != nil {
		return nil, err
	}
	if err := saveContact(tx, c); err != nil {
		return nil, err
	}
	return c, a.stage(tx, contactEntry(c))
}

// Session names: the first session with a contact carries the contact's
// name; one with another of their devices is contact~deviceID.
const sessionSep = "~"

func sessionName(contact, device string) string { return contact + sessionSep + device }

func contactOfSession(name string) string {
	c, _, _ := strings.Cut(name, sessionSep)
	return c
}

func validSessionName(s string) error {
	contact, dev, found := strings.Cut(s, sessionSep)
	if err := ValidName(contact); err != nil {
		return err
	}
	if found {
		return validDeviceID(dev)
	}
	return nil
}

// sessionsOf lists the sessions with a contact.
func sessionsOf(tx *bolt.Tx, contact string) ([]*convRecord, error) {
	var out []*convRecord
	// Keys with the contact's name as a prefix: the contact's sessions, and
	// other contacts whose names start with it ("bob" and "bobby").
	p := []byte(contact)
	c := tx.Bucket(bucketConvs).Cursor()
	for k, v := c.Seek(p); k != nil && hasPrefix(k, p); k, v = c.Next() {
		if string(k) != contact && !hasPrefix(k, []byte(contact+sessionSep)) {
			continue
		}
		r := new(convRecord)
		if err := decodeRecord("session "+string(k), v, r); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// dropSession forgets a session and everything queued on it: used when the
// peer device it leads to is removed from their account.
func dropSession(tx *bolt.Tx, name string) error {
	for _, b := range [][]byte{bucketOutbox, bucketOutIndex, bucketHeld, bucketGated, bucketReleased} {
		bk := tx.Bucket(b)
		p := contactPrefix(name)
		c := bk.Cursor()
		var keys [][]byte
		for k, _ := c.Seek(p); k != nil && hasPrefix(k, p); k, _ = c.Next() {
			keys = append(keys, append([]byte(nil), k...))
		}
		for _, k := range keys {
			if err := bk.Delete(k); err != nil {
				return err
			}
		}
	}
	return tx.Bucket(bucketConvs).Delete([]byte(name))
}

// newOrigin names a message the same way in every copy: our device ID and
// eight random bytes.
func (a *Account) newOrigin() []byte {
	o, _ := hex.DecodeString(a.device)
	o = append(o, make([]byte, 8)...)
	rand.Read(o[deviceIDSize:])
	return o
}

// insertMessage adds a message to a contact's history unless a copy with the
// same origin is there already, in which case it only raises its state. It
// returns the stored record and whether it was new. A new message advances
// c.NextLocal: the caller saves c.
func insertMessage(tx *bolt.Tx, c *contactRecord, m *messageRecord) (*messageRecord, bool, error) {
	origins := tx.Bucket(bucketOrigins)
	okey := append(contactPrefix(c.Name), m.Origin...)
	if local := origins.Get(okey); local != nil {
		key := append(contactPrefix(c.Name), local...)
		old := new(messageRecord)
		if err := decodeRecord("message", tx.Bucket(bucketMessages).Get(key), old); err != nil {
			return nil, false, err
		}
		_, err := raiseMessage(tx, c.Name, old, m.State, m.Seen)
		return old, false, err
	}
	m.Local = c.NextLocal
	c.NextLocal++
	key := contactKey(c.Name, m.Local)
	messages := tx.Bucket(bucketMessages)
	messages.FillPercent = 0.9 // each contact's keys only grow: fill pages, leave room for state changes
	if err := putRecord(messages, key, m); err != nil {
		return nil, false, err
	}
	if err := recordChange(tx, key); err != nil {
		return nil, false, err
	}
	if err := origins.Put(okey, key[len(key)-8:]); err != nil {
		return nil, false, err
	}
	if m.Dir == Incoming && !m.Seen {
		if err := tx.Bucket(bucketUnseen).Put(key, nil); err != nil {
			return nil, false, err
		}
	}
	return m, true, nil
}

// raiseMessage moves an outgoing message's state forward (never back) and
// marks a message seen if seen. It reports whether anything changed.
func raiseMessage(tx *bolt.Tx, contact string, m *messageRecord, state MessageState, seen bool) (bool, error) {
	changed := false
	if state > m.State && m.Dir == Outgoing {
		m.State, changed = state, true
	}
	key := contactKey(contact, m.Local)
	if seen && !m.Seen {
		m.Seen, changed = true, true
		if err := tx.Bucket(bucketUnseen).Delete(key); err != nil {
			return false, err
		}
	}
	if !changed {
		return false, nil
	}
	if err := recordChange(tx, key); err != nil {
		return false, err
	}
	return true, putRecord(tx.Bucket(bucketMessages), key, m)
}

// messageByOrigin finds a message of a contact by its origin.
func messageByOrigin(tx *bolt.Tx, contact string, origin []byte) (*messageRecord, error) {
	local := tx.Bucket(bucketOrigins).Get(append(contactPrefix(contact), origin...))
	if local == nil {
		return nil, nil
	}
	m := new(messageRecord)
	err := decodeRecord("message", tx.Bucket(bucketMessages).Get(append(contactPrefix(contact), local...)), m)
	return m, err
}
