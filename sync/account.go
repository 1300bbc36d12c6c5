// Package sync is deaddrop's conversation and account layer: it owns all
// durable state and drives the lower layers. It keeps a ratchet session with
// each device of each contact, an outbox that republishes every message until
// the peer acknowledges it, per-message state (queued, stored, read by peer),
// windowed catch-up of missed messages, and pending invites; and, per account,
// the recovery phrase's keys, the signed device list, and each device's
// encrypted merkle history log on the store, from which other devices sync
// and a new device restores everything. Every state change is one bbolt
// transaction, so a crash at any instant leaves the old state or the new one;
// a message is acknowledged only after it is durably stored.
package sync

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"time"

	gosync "sync"

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

func (d Direction) String() string {
	switch d {
	case Outgoing:
		return "outgoing"
	case Incoming:
		return "incoming"
	}
	return fmt.Sprintf("direction(%d)", uint8(d))
}

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
		return "delivered" // acknowledged by a device, not necessarily read by a person
	case Received:
		return "received"
	case PeerRead:
		return "read"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Message is one entry of a conversation's history.
type Message struct {
	// ID names the message the same way on every device of both parties,
	// for ever: the sending device's ID and 8 random bytes, in hex. Unlike
	// Local and Seq it is globally unique.
	ID      string
	Contact string
	Local   uint64 // position in this account's history of the conversation
	Dir     Direction
	Seq     uint64 // the sender's sequence number
	Body    string
	// Attachment is a file message's manifest, encoded by package attach
	// (the root package decodes it); nil for a text message.
	Attachment []byte
	Sent       time.Time // sender's clock
	Received   time.Time // our clock, incoming messages only
	State      MessageState
	Seen       bool // shown to the user by MarkSeen
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
	// conversation chain during catch-up (default 64, at most 1024).
	Window int
	// MaxInFlight is the most Gets a poll has in flight at once, over every
	// conversation, log and feed of its wave (default 256, at most 4096).
	MaxInFlight int
	// SkippedKeyTTL is how long a skipped message key (of a message that
	// did not arrive in order) is kept and its slot polled (default 30 days).
	SkippedKeyTTL time.Duration
	// InviteTTL is how long a new invite stays valid (default 7 days).
	InviteTTL time.Duration
	// Now is the clock (default time.Now); tests set it.
	Now func() time.Time
	// Rand is the randomness source (default crypto/rand).
	Rand io.Reader
	// NoHistory turns the history log off (Create only; it is on by
	// default). History is a trade against forward secrecy: with it on,
	// every message is also kept, encrypted under a key derived from the
	// recovery phrase, in the account's log on the store, so whoever gets
	// the phrase can read the whole history. With it off there is no
	// recovery phrase, no restore and no second device.
	NoHistory bool
	// NoSync skips fsync on every commit: for setting up tests and
	// benchmarks only, where a crash does not matter. Never in use.
	NoSync bool
}

// Largest values the options accept; larger ones are capped, so that a
// mistyped flag cannot start a hundred thousand Gets at once.
const (
	maxWindow      = 1024
	maxMaxInFlight = 4096
)

func (o *Options) fill() {
	if o.Window <= 0 {
		o.Window = 64
	}
	o.Window = min(o.Window, maxWindow)
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 256
	}
	o.MaxInFlight = min(o.MaxInFlight, maxMaxInFlight)
	if o.SkippedKeyTTL <= 0 {
		o.SkippedKeyTTL = 30 * 24 * time.Hour
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
	db     *bolt.DB
	blocks *blockFile // this device's own history blocks
	tr     transport.Transport
	opts   Options
	id     *ratchet.Identity // this device's identity: its sessions' key
	name   string

	device     string                 // this device's ID, hex
	accountPub ratchet.PublicIdentity // the account identity
	accountKey *ratchet.Identity      // nil on linked devices
	history    [32]byte               // the history key
	historyOn  bool
	phrase     string // set by Create only: shown once, never stored

	problemsMu gosync.Mutex
	problems   []error // found while applying messages, reported by Poll

	epochMu gosync.RWMutex
	epochs  epochKeys // history epoch keys; epoch 0's is the history key

	writers writerCache // who wrote which history log, from the device lists
	junkMu  gosync.Mutex
	junk    map[string]bool // history slots reported as junk (once each)

	fin *finisher // records put outcomes and uploads blocks after Send returned
}

const stateFile = "state.db"

// Create makes a new account with the given display name in dir. With
// history on (the default) its recovery phrase is RecoveryPhrase: shown
// once, never stored.
func Create(dir, name string, tr transport.Transport, opts Options) (*Account, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	opts.fill()
	seed := make([]byte, seedSize)
	if _, err := io.ReadFull(opts.Rand, seed); err != nil {
		return nil, err
	}
	keys, err := deriveKeys(seed)
	if err != nil {
		return nil, err
	}
	// Key separation (protocol version 4): the first device's ratchet
	// identity is random, like every other device's, so the phrase (which
	// yields the account identity) is no session credential.
	id, err := ratchet.NewIdentity(opts.Rand)
	if err != nil {
		return nil, err
	}
	st := &accountState{Name: name, Device: keys.firstDev, History: !opts.NoHistory, Key: keys.history}
	st.Identity, st.AccountKey = id, keys.identity
	l := &DeviceList{Account: keys.identity.Public().Bytes(), Name: name, Version: 1, Recovery: keys.recovery.Public().Bytes(),
		Devices: []Device{{ID: keys.firstDev, Name: "first", Identity: id.Public().Bytes(), Seal: sealPub(id), Added: opts.Now().UTC()}}}
	if st.List, err = signList(keys.identity, l); err != nil {
		return nil, err
	}
	a, err := createAccount(dir, tr, opts, st)
	if err != nil {
		return nil, err
	}
	if a.historyOn {
		a.phrase = encodePhrase(seed)
		if err := a.markDirectoryPending(); err != nil {
			a.Close()
			return nil, err
		}
	}
	return a, nil
}

// RecoveryPhrase returns the phrase of an account just made by Create, or ""
// (it is never stored: write it down when it is shown).
func (a *Account) RecoveryPhrase() string { return a.phrase }

// accountState is what a new account, device or restore starts from.
type accountState struct {
	Name       string
	Device     string
	Identity   *ratchet.Identity // this device's
	AccountKey *ratchet.Identity // nil on linked devices
	AccountPub ratchet.PublicIdentity
	Key        [32]byte
	History    bool
	List       []byte            // signed device list
	Directory  map[uint64][]byte // directory chunks read so far
	Epochs     epochKeys         // history epoch keys beyond epoch 0
}

func createAccount(dir string, tr transport.Transport, opts Options, st *accountState) (*Account, error) {
	if st.AccountKey != nil {
		st.AccountPub = st.AccountKey.Public()
	}
	db, err := openDB(dir, opts.NoSync)
	if err != nil {
		return nil, err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAccount)
		if b.Get([]byte("identity")) != nil {
			return ErrAccountExists
		}
		idb, _ := st.Identity.MarshalBinary()
		history := "on"
		if !st.History {
			history = "off"
		}
		vals := map[string][]byte{"identity": idb, "name": []byte(st.Name), "device": []byte(st.Device),
			"account": st.AccountPub.Bytes(), "history_key": st.Key[:], "history": []byte(history), "devices": st.List}
		if st.AccountKey != nil {
			vals["account_key"], _ = st.AccountKey.MarshalBinary()
		}
		for k, v := range vals {
			if err := b.Put([]byte(k), sealValue(v)); err != nil {
				return err
			}
		}
		if err := saveEpochKeys(tx, st.epochKeys()); err != nil {
			return err
		}
		return keepDirectory(tx, st.Directory, nil)
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	a := &Account{db: db, blocks: newBlockFile(db), tr: tr, opts: opts, id: st.Identity, name: st.Name, device: st.Device,
		accountPub: st.AccountPub, accountKey: st.AccountKey, history: st.Key, historyOn: st.History,
		epochs: st.epochKeys()}
	a.startFinisher()
	return a, nil
}

func (st *accountState) epochKeys() epochKeys {
	k := maps.Clone(st.Epochs)
	if k == nil {
		k = epochKeys{}
	}
	k[0] = st.Key
	return k
}

// Open opens the existing account in dir.
func Open(dir string, tr transport.Transport, opts Options) (*Account, error) {
	opts.fill()
	if _, err := os.Stat(filepath.Join(dir, stateFile)); errors.Is(err, os.ErrNotExist) {
		return nil, ErrNoAccount
	}
	db, err := openDB(dir, opts.NoSync)
	if err != nil {
		return nil, err
	}
	a := &Account{db: db, blocks: newBlockFile(db), tr: tr, opts: opts}
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAccount)
		if b.Get([]byte("identity")) == nil {
			return ErrNoAccount
		}
		return a.load(b)
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	if a.LegacyFirstDevice() {
		a.problem(ErrLegacyFirstDevice) // reported by the first Poll
	}
	a.startFinisher()
	return a, nil
}

// ErrLegacyFirstDevice is reported (as a Poll problem, once per Open) by the
// first device of an account made before protocol version 4, whose session
// identity is the account identity that the recovery phrase yields.
var ErrLegacyFirstDevice = errors.New("this device's session identity is the account identity, derived from the recovery phrase (an account made before protocol version 4): whoever has the phrase can act as this device in new sessions. To move to a device with its own keys, restore the phrase into a new home ('deaddrop restore'), then remove this device from there ('deaddrop device remove <this device's ID>')")

// LegacyFirstDevice reports whether this device is the first device of an
// account made before protocol version 4 (docs/protocol.md §10.9): its
// ratchet identity is the account identity, so the phrase is a session
// credential for it, and its list entry has no sealing key, so the account
// keeps writing version 3 lists until it is removed.
func (a *Account) LegacyFirstDevice() bool {
	return a.historyOn && a.accountKey != nil && a.id.Public() == a.accountPub
}

func (a *Account) load(b *bolt.Bucket) error {
	get := func(k string) ([]byte, error) { return openValue(k, b.Get([]byte(k))) }
	idb, err := get("identity")
	if err != nil {
		return err
	}
	if a.id, err = ratchet.UnmarshalIdentity(idb); err != nil {
		return fmt.Errorf("%w: identity: %v", ErrCorruptState, err)
	}
	name, err := get("name")
	if err != nil {
		return err
	}
	dev, err := get("device")
	if err != nil {
		return err
	}
	pub, err := get("account")
	if err != nil {
		return err
	}
	key, err := get("history_key")
	if err != nil {
		return err
	}
	hist, err := get("history")
	if err != nil {
		return err
	}
	if a.accountPub, err = ratchet.ParsePublicIdentity(pub); err != nil || len(key) != 32 || validDeviceID(string(dev)) != nil {
		return fmt.Errorf("%w: account keys", ErrCorruptState)
	}
	if b.Get([]byte("account_key")) != nil {
		kb, err := get("account_key")
		if err != nil {
			return err
		}
		if a.accountKey, err = ratchet.UnmarshalIdentity(kb); err != nil || a.accountKey.Public() != a.accountPub {
			return fmt.Errorf("%w: account key", ErrCorruptState)
		}
	}
	a.name, a.device, a.historyOn = string(name), string(dev), string(hist) == "on"
	copy(a.history[:], key)
	eb, err := get("epochs")
	if err != nil {
		return err
	}
	if a.epochs, err = parseEpochKeys(eb); err != nil {
		return err
	}
	if a.epochs[0] != a.history {
		return fmt.Errorf("%w: epoch keys", ErrCorruptState)
	}
	return nil
}

func openDB(dir string, noSync bool) (*bolt.DB, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, stateFile)
	db, err := openBolt(path, &bolt.Options{Timeout: 300 * time.Millisecond, NoSync: noSync})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("%w (%s)", ErrHomeLocked, dir)
	}
	if errors.Is(err, os.ErrPermission) {
		// Not damage: a read-only file or directory (restore is not the fix).
		return nil, fmt.Errorf("state file %s: %w (it must be readable and writable by this user)", path, err)
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
	a.stopFinisher()
	return errors.Join(a.db.Close(), a.blocks.close(), a.tr.Close())
}

// Name returns the account's display name.
func (a *Account) Name() string { return a.name }

// Fingerprint returns the account identity's fingerprint, for comparing out of
// band. It is the same on every device of the account.
func (a *Account) Fingerprint() string { return a.accountPub.Fingerprint() }

// Contact summarises one conversation, over all sessions with the
// contact's devices.
type Contact struct {
	Name string
	// Fingerprint is the contact's account identity's, once a meta message
	// with the contact's signed device list vouched for a session's peer
	// (docs/protocol.md §10.9); empty before: "not yet verified". It is
	// never the fingerprint of a session's identity, which since protocol
	// version 4 is no account's.
	Fingerprint string
	Sessions    int // verified sessions: one per device of theirs we talk to (an unverified device session carries nothing yet)
	// Sent, PeerAcked and Received count protocol messages over all
	// sessions (data, acks, hellos, meta): what the sessions' sequence
	// numbers say, for diagnostics. Show users Messages.
	Sent      uint64
	PeerAcked uint64
	Received  uint64
	Outbox    int // protocol messages not yet acknowledged (one per copy for each device of theirs)
	Created   time.Time
	// Messages counts the user's messages only (text, long text, files),
	// as the history holds them.
	Messages MessageCounts
}

// Contacts lists the conversations, sorted by name.
func (a *Account) Contacts() ([]Contact, error) {
	a.settle() // what Send returned is what this shows
	var out []Contact
	err := a.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketContacts).ForEach(func(k, v []byte) error {
			c := new(contactRecord)
			if err := decodeRecord("contact "+string(k), v, c); err != nil {
				return err
			}
			sessions, err := sessionsOf(tx, c.Name)
			if err != nil {
				return err
			}
			ct := Contact{Name: c.Name, Created: c.Created, Messages: countMessages(tx, c.Name)}
			for _, s := range sessions {
				if !s.Unverified {
					ct.Sessions++
				}
			}
			if pa, ok := c.peerAccount(); ok {
				ct.Fingerprint = pa.Fingerprint()
			}
			for _, s := range sessions {
				ct.Sent += s.NextSeq - 1
				ct.PeerAcked += s.PeerAcked
				ct.Received += s.RecvContig
				ct.Outbox += countPrefix(tx.Bucket(bucketOutbox), s.Name)
			}
			out = append(out, ct)
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

// PendingInvites lists invites to people issued and not yet used.
func (a *Account) PendingInvites() ([]PendingInvite, error) {
	var out []PendingInvite
	err := a.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketInvites).ForEach(func(k, v []byte) error {
			r := new(inviteRecord)
			if err := decodeRecord("invite", v, r); err != nil {
				return err
			}
			if r.Contact != "" {
				return nil // an invite to another device of a contact: kept by Poll, not the user's
			}
			out = append(out, PendingInvite{Label: r.Label, Created: r.Created, Expires: r.Expires})
			return nil
		})
	})
	return out, err
}
