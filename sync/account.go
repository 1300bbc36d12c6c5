// Package sync is deaddrop's conversation layer: it owns all durable state and
// drives the lower layers. It keeps each conversation's ratchet session, an
// outbox that republishes every message until the peer acknowledges it,
// per-message state (queued, stored, read by peer), windowed catch-up of missed
// messages, and pending invites. Every state change is one bbolt transaction,
// so a crash at any instant leaves the old state or the new one; a message is
// acknowledged only after it is durably stored.
package sync

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/deaddrop/deaddrop/ratchet"
	"github.com/deaddrop/deaddrop/transport"
	bolt "go.etcd.io/bbolt"
)

// Direction of a message relative to this account.
type Direction uint8

const (
	Outgoing Direction = 1
	Incoming Direction = 2
)

// MessageState is where a message stands.
type MessageState uint8

const (
	// Queued: committed to the outbox, not yet accepted by the store.
	Queued MessageState = 1
	// Stored: the store accepted it at least once; republished until read.
	Stored MessageState = 2
	// Read: the peer acknowledged it (it is durably in the peer's state).
	Read MessageState = 3
	// Received: an incoming message, delivered in order.
	Received MessageState = 4
)

func (s MessageState) String() string {
	switch s {
	case Queued:
		return "queued"
	case Stored:
		return "stored"
	case Read:
		return "read"
	case Received:
		return "received"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Message is one entry of a conversation's history.
type Message struct {
	Contact  string
	Local    uint64 // position in this account's history of the conversation
	Dir      Direction
	Seq      uint64 // the sender's sequence number
	Body     string
	Sent     time.Time // sender's clock
	Received time.Time // our clock, incoming messages only
	State    MessageState
	Seen     bool // shown to the user by MarkSeen
}

var (
	// ErrUnknownContact reports a contact name with no conversation.
	ErrUnknownContact = errors.New("unknown contact")
	// ErrHomeLocked reports a home directory in use by another process.
	ErrHomeLocked = errors.New("home is in use by another deaddrop process")
	// ErrNoAccount reports a home without an account (run init first).
	ErrNoAccount = errors.New("no account in this home (run 'deaddrop init' first)")
	// ErrAccountExists reports init on a home that already has an account.
	ErrAccountExists = errors.New("an account already exists in this home")
)

// Options tunes an Account. Zero values pick the defaults.
type Options struct {
	// Window is the largest number of slots fetched in parallel per
	// conversation chain during catch-up (default 64).
	Window int
	// InviteTTL is how long a new invite stays valid (default 7 days).
	InviteTTL time.Duration
	// Now is the clock (default time.Now); tests set it.
	Now func() time.Time
	// Rand is the randomness source (default crypto/rand).
	Rand io.Reader
}

func (o *Options) fill() {
	if o.Window <= 0 {
		o.Window = 64
	}
	if o.InviteTTL <= 0 {
		o.InviteTTL = 7 * 24 * time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
}

// Account is one user's deaddrop state on one device. Its methods are safe for
// concurrent use: every state change is a read-modify-write inside one bbolt
// write transaction, and bbolt admits one writer at a time.
type Account struct {
	db   *bolt.DB
	tr   transport.Transport
	opts Options
	id   *ratchet.Identity
	name string
}

const stateFile = "state.db"

// Create makes a new account with the given display name in dir.
func Create(dir, name string, tr transport.Transport, opts Options) (*Account, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	opts.fill()
	db, err := openDB(dir)
	if err != nil {
		return nil, err
	}
	id, err := ratchet.NewIdentity(opts.Rand)
	if err != nil {
		db.Close()
		return nil, err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAccount)
		if b.Get([]byte("identity")) != nil {
			return ErrAccountExists
		}
		idb, err := id.MarshalBinary()
		if err != nil {
			return err
		}
		if err := b.Put([]byte("identity"), sealValue(idb)); err != nil {
			return err
		}
		return b.Put([]byte("name"), sealValue([]byte(name)))
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &Account{db: db, tr: tr, opts: opts, id: id, name: name}, nil
}

// Open opens the existing account in dir.
func Open(dir string, tr transport.Transport, opts Options) (*Account, error) {
	opts.fill()
	if _, err := os.Stat(filepath.Join(dir, stateFile)); errors.Is(err, os.ErrNotExist) {
		return nil, ErrNoAccount
	}
	db, err := openDB(dir)
	if err != nil {
		return nil, err
	}
	a := &Account{db: db, tr: tr, opts: opts}
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAccount)
		if b.Get([]byte("identity")) == nil {
			return ErrNoAccount
		}
		idb, err := openValue("identity", b.Get([]byte("identity")))
		if err != nil {
			return err
		}
		name, err := openValue("account name", b.Get([]byte("name")))
		if err != nil {
			return err
		}
		id, err := ratchet.UnmarshalIdentity(idb)
		if err != nil {
			return fmt.Errorf("%w: identity: %v", ErrCorruptState, err)
		}
		a.id, a.name = id, string(name)
		return nil
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return a, nil
}

func openDB(dir string) (*bolt.DB, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, stateFile)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 300 * time.Millisecond})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("%w (%s)", ErrHomeLocked, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: state file %s cannot be opened: %v", ErrCorruptState, path, err)
	}
	// Create missing buckets, in a write transaction only when needed, so
	// that opening never rewrites a file it need not (a damaged one, say).
	missing := false
	db.View(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			missing = missing || tx.Bucket(name) == nil
		}
		return nil
	})
	if missing {
		err = db.Update(func(tx *bolt.Tx) error {
			for _, name := range allBuckets {
				if _, err := tx.CreateBucketIfNotExists(name); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("%w: state file %s: %v", ErrCorruptState, path, err)
	}
	return db, nil
}

// Close closes the state database and the transport.
func (a *Account) Close() error {
	return errors.Join(a.db.Close(), a.tr.Close())
}

// Name returns the account's display name.
func (a *Account) Name() string { return a.name }

// Fingerprint returns the account identity's fingerprint, for comparing out of
// band.
func (a *Account) Fingerprint() string { return a.id.Public().Fingerprint() }

// Contact summarises one conversation.
type Contact struct {
	Name        string
	Fingerprint string
	Sent        uint64 // messages we sent (including acks)
	PeerAcked   uint64
	Received    uint64
	Outbox      int // messages not yet acknowledged
	Created     time.Time
}

// Contacts lists the conversations, sorted by name.
func (a *Account) Contacts() ([]Contact, error) {
	var out []Contact
	err := a.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketConvs).ForEach(func(k, v []byte) error {
			c := new(convRecord)
			if err := decodeRecord("contact "+string(k), v, c); err != nil {
				return err
			}
			s, err := loadSession(c)
			if err != nil {
				return err
			}
			out = append(out, Contact{
				Name: c.Name, Fingerprint: s.Peer().Fingerprint(),
				Sent: c.NextSeq - 1, PeerAcked: c.PeerAcked, Received: c.RecvContig,
				Outbox: countPrefix(tx.Bucket(bucketOutbox), c.Name), Created: c.Created,
			})
			return nil
		})
	})
	return out, err
}

func countPrefix(b *bolt.Bucket, contact string) int {
	n := 0
	p := contactPrefix(contact)
	c := b.Cursor()
	for k, _ := c.Seek(p); k != nil && hasPrefix(k, p); k, _ = c.Next() {
		n++
	}
	return n
}

func hasPrefix(k, p []byte) bool { return len(k) >= len(p) && string(k[:len(p)]) == string(p) }

// PendingInvite describes an invite we issued that nobody has used yet.
type PendingInvite struct {
	Label   string
	Created time.Time
	Expires time.Time
}

// PendingInvites lists invites issued and not yet used.
func (a *Account) PendingInvites() ([]PendingInvite, error) {
	var out []PendingInvite
	err := a.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketInvites).ForEach(func(k, v []byte) error {
			r := new(inviteRecord)
			if err := decodeRecord("invite", v, r); err != nil {
				return err
			}
			out = append(out, PendingInvite{Label: r.Label, Created: r.Created, Expires: r.Expires})
			return nil
		})
	})
	return out, err
}
