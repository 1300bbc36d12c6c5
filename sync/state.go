package sync

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"regexp"
	"time"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/ratchet"
	bolt "go.etcd.io/bbolt"
)

// Bucket names of the state database. Keys in per-contact buckets start with
// the contact's (or, for outbox, outindex and held, the session's) name and a
// zero byte; names cannot contain zero bytes.
var (
	bucketAccount   = []byte("account")   // "identity", "name"
	bucketInvites   = []byte("invites")   // invite ID → inviteRecord (inviter side, pending)
	bucketAccepted  = []byte("accepted")  // invite ID → contact name (joiner side, single use)
	bucketConvs     = []byte("convs")     // contact → convRecord
	bucketOutbox    = []byte("outbox")    // contact\0seq → outboxRecord
	bucketMessages  = []byte("messages")  // contact\0local → messageRecord
	bucketOutIndex  = []byte("outindex")  // contact\0seq → local (our sent messages)
	bucketHeld      = []byte("held")      // contact\0seq → envelope received out of order
	bucketUnseen    = []byte("unseen")    // contact\0local → nothing: incoming messages not yet shown
	bucketContacts  = []byte("contacts")  // contact → contactRecord (one per person, over all sessions)
	bucketOrigins   = []byte("origins")   // contact\0origin → local: every message once, however many copies
	bucketStage     = []byte("logstage")  // seq → logEntry not yet packed into a history block
	bucketBlocks    = []byte("logblocks") // index → blockRecord: this device's history log
	bucketLogs      = []byte("logs")      // device ID → logCursor: history logs read, ours included
	bucketLeaves    = []byte("leaves")    // device ID ‖ index → merkle leaf hash of that block
	bucketWhere     = []byte("where")     // contact\0origin → device ID ‖ index: a block logging it
	bucketDirectory = []byte("directory") // version → the directory chunk of that device list version
	bucketUnstored  = []byte("unstored")  // index → nothing: our history blocks the store has not accepted yet
	bucketWaiting   = []byte("waiting")   // contact\0local → nothing: sent while no session existed
	bucketAnnounced = []byte("announced") // contact\0index → the chunk we wrote to our announcement feed
	bucketParts     = []byte("parts")     // session → partialRecord: the parts of a long message received so far
	bucketLogParts  = []byte("logparts")  // contact\0origin → partialRecord: a long message's history entries read so far
	bucketGated     = []byte("gated")     // session\0local → nothing: sent while that device session was unverified
	bucketReleased  = []byte("released")  // session\0seq → nothing: outbox entries openGate queued, not yet put
	allBuckets      = [][]byte{bucketAccount, bucketInvites, bucketAccepted, bucketConvs,
		bucketOutbox, bucketMessages, bucketOutIndex, bucketHeld, bucketUnseen,
		bucketContacts, bucketOrigins, bucketStage, bucketBlocks, bucketLogs, bucketLeaves, bucketWhere, bucketDirectory, bucketUnstored, bucketWaiting, bucketAnnounced,
		bucketParts, bucketLogParts, bucketGated, bucketReleased}
)

// marker is the value of keys whose presence is what counts: not empty,
// because bbolt's Get returns nil for an empty value written in the same
// transaction, as if the key were absent.
var marker = []byte{1}

// ErrCorruptState reports a state record that does not decode or is
// inconsistent. deaddrop never overwrites such a record on its own.
var ErrCorruptState = errors.New("corrupt state")

var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,31}$`)

// ValidName reports whether s is a usable contact or account name: 1 to 32
// characters from a-z, 0-9, '.', '_' and '-', starting with a letter or digit.
func ValidName(s string) error {
	if !namePattern.MatchString(s) {
		return fmt.Errorf("invalid name %q: use 1-32 characters a-z, 0-9, '.', '_' or '-', starting with a letter or digit", s)
	}
	return nil
}

// convRecord is one ratchet session: ours with one device of a contact. The
// first session with a contact is named like the contact; sessions with the
// contact's other devices are named contact~device.
type convRecord struct {
	Name       string    `json:"name"`
	Contact    string    `json:"contact"`
	PeerDevice string    `json:"peer_device,omitempty"` // hex device ID, once known
	Session    []byte    `json:"session"`
	NextSeq    uint64    `json:"next_seq"`    // seq of our next message, from 1
	PeerAcked  uint64    `json:"peer_acked"`  // highest seq of ours the peer acknowledged
	RecvContig uint64    `json:"recv_contig"` // highest peer seq received with no gap below
	AckOwed    bool      `json:"ack_owed"`    // we received something that wants an ack
	Created    time.Time `json:"created"`
	InviteID   []byte    `json:"invite_id"`
	// Unverified marks a device session (contact~device) whose peer has not
	// yet sent a meta message that verifies against the contact's signed
	// device list: it carries no data in either direction until then (data
	// from it is dropped, data to it waits in bucketGated). Sessions from
	// before this field, and first sessions with a person, are never gated.
	Unverified bool `json:"unverified,omitempty"`
	// SkippedSeen is when (Unix seconds) each skipped key of the session was
	// first seen, by its slot's fingerprint: keys older than SkippedKeyTTL
	// are dropped.
	SkippedSeen map[string]int64 `json:"skipped_seen,omitempty"`

	// metaOK says that a meta message verified this session in this
	// transaction: the catch-up queues what waited for it (openGate).
	metaOK bool

	// contact caches the contact's record while a transaction delivers
	// many messages (decoding it per message was most of a catch-up's
	// CPU); saveConv writes it back.
	contact *contactRecord
}

// loadContact returns the session's contact record, cached for the rest of
// the transaction.
func (c *convRecord) loadContact(tx *bolt.Tx) (*contactRecord, error) {
	if c.contact == nil {
		var err error
		if c.contact, err = loadContact(tx, c.Contact); err != nil {
			return nil, err
		}
	}
	return c.contact, nil
}

func (c *convRecord) validate() error {
	switch {
	case validSessionName(c.Name) != nil:
		return fmt.Errorf("bad session name %q", c.Name)
	case ValidName(c.Contact) != nil:
		return fmt.Errorf("bad contact name %q", c.Contact)
	case len(c.Session) == 0:
		return errors.New("no ratchet session")
	case c.NextSeq == 0:
		return errors.New("next sequence number is 0")
	case c.PeerAcked >= c.NextSeq:
		return fmt.Errorf("peer acknowledged %d but only %d sent", c.PeerAcked, c.NextSeq-1)
	}
	return nil
}

type outboxRecord struct {
	Seq       uint64    `json:"seq"`
	Kind      Kind      `json:"kind"`
	Slot      []byte    `json:"slot"`
	Chunk     []byte    `json:"chunk"`
	Created   time.Time `json:"created"`
	Stored    bool      `json:"stored"` // at least one Put succeeded
	LastPut   time.Time `json:"last_put"`
	Attempts  int       `json:"attempts"` // Puts tried
	Failures  int       `json:"failures"` // consecutive failed Puts
	NextTry   time.Time `json:"next_try"`
	LastError string    `json:"last_error,omitempty"`
}

func (o *outboxRecord) validate() error {
	switch {
	case o.Seq == 0:
		return errors.New("sequence number 0")
	case len(o.Slot) != len(feed.Slot{}):
		return fmt.Errorf("slot of %d bytes", len(o.Slot))
	case len(o.Chunk) != feed.ChunkSize:
		return fmt.Errorf("chunk of %d bytes", len(o.Chunk))
	}
	return nil
}

func (o *outboxRecord) slot() (s feed.Slot) {
	copy(s[:], o.Slot)
	return s
}

type messageRecord struct {
	Local    uint64       `json:"local"`
	Origin   []byte       `json:"origin"` // sending device ‖ random: the same for every copy
	Dir      Direction    `json:"dir"`
	Seq      uint64       `json:"seq"`
	Body     string       `json:"body"`
	Attach   []byte       `json:"attach,omitempty"` // a file message's manifest (package attach)
	Sent     time.Time    `json:"sent"`
	Received time.Time    `json:"received,omitzero"`
	State    MessageState `json:"state"`
	Seen     bool         `json:"seen"`
}

func (m *messageRecord) validate() error {
	if m.Dir != Outgoing && m.Dir != Incoming {
		return fmt.Errorf("bad direction %d", m.Dir)
	}
	if m.Seq == 0 {
		return errors.New("sequence number 0")
	}
	return nil
}

type inviteRecord struct {
	Pending []byte    `json:"pending"`
	Label   string    `json:"label"`            // the session name the conversation will get
	Contact string    `json:"contact"`          // empty: Label; else a device invite for this contact
	Device  string    `json:"device,omitempty"` // device invites: the peer device it is for
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
}

func (r *inviteRecord) validate() error {
	if len(r.Pending) == 0 {
		return errors.New("no invite keys")
	}
	return nil
}

// validator is implemented by every state record.
type validator interface{ validate() error }

// decodeRecord decodes a JSON state record and validates it; what names the
// record in the error.
func decodeRecord(what string, b []byte, v validator) error {
	b, err := openValue(what, b)
	if err != nil {
		return err
	}
	if br, ok := v.(binaryRecord); ok && len(b) > 0 && b[0] != '{' {
		err = br.unmarshalRecord(b)
	} else {
		err = json.Unmarshal(b, v)
	}
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrCorruptState, what, err)
	}
	if err := v.validate(); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrCorruptState, what, err)
	}
	return nil
}

func putRecord(b *bolt.Bucket, key []byte, v any) error {
	if br, ok := v.(binaryRecord); ok {
		return b.Put(key, sealValue(br.marshalRecord()))
	}
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, sealValue(data))
}

// Every stored value ends with a CRC-32C of the rest: bbolt checksums only its
// meta pages, and a bit flipped on disk inside a value must be an error, not
// a changed message or key.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func sealValue(b []byte) []byte {
	return binary.BigEndian.AppendUint32(append([]byte(nil), b...), crc32.Checksum(b, castagnoli))
}

func openValue(what string, b []byte) ([]byte, error) {
	if len(b) < 4 {
		return nil, fmt.Errorf("%w: %s: missing or truncated", ErrCorruptState, what)
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, fmt.Errorf("%w: %s: checksum mismatch (damaged on disk)", ErrCorruptState, what)
	}
	// A copy: b is bbolt's memory map, valid only inside the transaction
	// (using it later faults once the file is remapped).
	return append([]byte(nil), body...), nil
}

// contactKey returns contact\0n, ordering a contact's records by n.
func contactKey(contact string, n uint64) []byte {
	k := make([]byte, 0, len(contact)+9)
	k = append(k, contact...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, n)
}

func contactPrefix(contact string) []byte {
	return append([]byte(contact), 0)
}

func loadConv(tx *bolt.Tx, name string) (*convRecord, error) {
	data := tx.Bucket(bucketConvs).Get([]byte(name))
	if data == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownContact, name)
	}
	c := new(convRecord)
	if err := decodeRecord("contact "+name, data, c); err != nil {
		return nil, err
	}
	return c, nil
}

func loadSession(c *convRecord) (*ratchet.Session, error) {
	s, err := ratchet.UnmarshalSession(c.Session)
	if err != nil {
		return nil, fmt.Errorf("%w: contact %s: session: %v", ErrCorruptState, c.Name, err)
	}
	return s, nil
}

func saveConv(tx *bolt.Tx, c *convRecord, s *ratchet.Session) error {
	if c.contact != nil {
		if err := saveContact(tx, c.contact); err != nil {
			return err
		}
	}
	if s != nil {
		b, err := s.MarshalBinary()
		if err != nil {
			return err
		}
		c.Session = b
	}
	return putRecord(tx.Bucket(bucketConvs), []byte(c.Name), c)
}
