package ratchet

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/deaddrop/deaddrop/feed"
)

// InviteVersion is the invite format version this package writes and reads.
// Version 1 (X25519 only) is refused: it cannot start a post-quantum session.
const InviteVersion = 2

// invitePrefix starts the text form of every invite.
const invitePrefix = "dd1"

// MaxNameLen bounds display names carried in invites and first messages.
const MaxNameLen = 64

const inviteFixedLen = 1 + 32 + 32 + 32 + 32 + pqEKSize + 32 + 8 + 1 + 64 // without the name

var (
	// ErrInviteExpired reports an invite past its expiry time.
	ErrInviteExpired = errors.New("invite has expired")
	errInvite        = errors.New("invite")
)

// Invite is what an inviter hands out. Whoever holds it can start a
// conversation with the inviter; it is single use and expires.
type Invite struct {
	Version       byte
	Inviter       PublicIdentity
	SignedPrekey  [32]byte // X25519, signed by the inviter's identity
	OneTimePrekey [32]byte // X25519
	PQPrekey      []byte   // ML-KEM-768 encapsulation key, 1184 bytes
	Secret        [32]byte // derives the rendezvous slot and salts the key agreement
	Expires       time.Time
	Name          string // the inviter's display name
	PrekeySig     [64]byte
}

// PendingInvite is the inviter's private half of an invite.
type PendingInvite struct {
	signedPrekey  [32]byte // private
	oneTimePrekey [32]byte // private
	pqSeed        [pqSeedSize]byte
	secret        [32]byte
	id            [32]byte
	expires       time.Time
}

// NewInvite creates an invite valid for ttl from now.
func NewInvite(id *Identity, name string, ttl time.Duration, now time.Time, rand io.Reader) (*Invite, *PendingInvite, error) {
	if err := checkName(name); err != nil {
		return nil, nil, err
	}
	spk, spkPub, err := newKeyPair(rand)
	if err != nil {
		return nil, nil, err
	}
	opk, opkPub, err := newKeyPair(rand)
	if err != nil {
		return nil, nil, err
	}
	pqSeed, pqPub, err := newPQKey(rand)
	if err != nil {
		return nil, nil, err
	}
	inv := &Invite{Version: InviteVersion, Inviter: id.Public(), SignedPrekey: spkPub, OneTimePrekey: opkPub,
		PQPrekey: pqPub, Expires: now.Add(ttl).Truncate(time.Second), Name: name}
	if _, err := io.ReadFull(rand, inv.Secret[:]); err != nil {
		return nil, nil, err
	}
	copy(inv.PrekeySig[:], ed25519.Sign(id.sign, inv.signedBytes()))
	p := &PendingInvite{signedPrekey: spk, oneTimePrekey: opk, pqSeed: pqSeed, secret: inv.Secret, id: inv.ID(), expires: inv.Expires}
	return inv, p, nil
}

func checkName(name string) error {
	if len(name) > MaxNameLen || !utf8.ValidString(name) {
		return fmt.Errorf("name must be valid UTF-8 of at most %d bytes", MaxNameLen)
	}
	return nil
}

// signedBytes is what the prekey signature covers: a domain label and every
// field but the signature, so that no field can be altered.
func (inv *Invite) signedBytes() []byte {
	b := []byte("deaddrop v1 invite")
	return append(b, inv.marshalUnsigned()...)
}

func (inv *Invite) marshalUnsigned() []byte {
	b := make([]byte, 0, inviteFixedLen+len(inv.Name))
	b = append(b, inv.Version)
	b = append(b, inv.Inviter.Sign[:]...)
	b = append(b, inv.Inviter.DH[:]...)
	b = append(b, inv.SignedPrekey[:]...)
	b = append(b, inv.OneTimePrekey[:]...)
	b = append(b, inv.PQPrekey...)
	b = append(b, inv.Secret[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(inv.Expires.Unix()))
	b = append(b, byte(len(inv.Name)))
	return append(b, inv.Name...)
}

// MarshalBinary encodes the invite (docs/protocol.md §2).
func (inv *Invite) MarshalBinary() []byte {
	return append(inv.marshalUnsigned(), inv.PrekeySig[:]...)
}

// String is the invite's text form: "dd1" and the unpadded base64url of its
// binary form.
func (inv *Invite) String() string {
	return invitePrefix + base64.RawURLEncoding.EncodeToString(inv.MarshalBinary())
}

// ID identifies the invite, for single-use bookkeeping.
func (inv *Invite) ID() [32]byte {
	return sha256.Sum256(append([]byte("deaddrop v1 invite id"), inv.MarshalBinary()...))
}

// Rendezvous is the slot the joiner's first message goes to.
func (inv *Invite) Rendezvous() feed.Slot { return rendezvous(inv.Secret) }

// CheckExpiry returns ErrInviteExpired if the invite has expired at now.
func (inv *Invite) CheckExpiry(now time.Time) error {
	if !now.Before(inv.Expires) {
		return fmt.Errorf("%w (at %s)", ErrInviteExpired, inv.Expires.UTC().Format(time.RFC3339))
	}
	return nil
}

// ParseInvite decodes and verifies an invite's text form. It checks the
// format and the inviter's signature, not the expiry (see CheckExpiry).
func ParseInvite(s string) (*Invite, error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, invitePrefix) {
		return nil, fmt.Errorf("%w: not a deaddrop invite (the text starts with %q)", errInvite, invitePrefix)
	}
	b, err := base64.RawURLEncoding.DecodeString(s[len(invitePrefix):])
	if err != nil {
		return nil, fmt.Errorf("%w: damaged text (%v); copy the whole invite", errInvite, err)
	}
	return parseInviteBinary(b)
}

func parseInviteBinary(b []byte) (*Invite, error) {
	if len(b) < inviteFixedLen {
		return nil, fmt.Errorf("%w: truncated (got %d bytes, want at least %d)", errInvite, len(b), inviteFixedLen)
	}
	if b[0] == 1 {
		return nil, fmt.Errorf("%w: version 1 (made by an older deaddrop, without post-quantum keys) is no longer accepted; ask for a new invite", errInvite)
	}
	if b[0] != InviteVersion {
		return nil, fmt.Errorf("%w: unsupported version %d (this program reads version %d)", errInvite, b[0], InviteVersion)
	}
	inv := &Invite{Version: b[0]}
	r := reader{b: b[1:]}
	r.read(inv.Inviter.Sign[:])
	r.read(inv.Inviter.DH[:])
	r.read(inv.SignedPrekey[:])
	r.read(inv.OneTimePrekey[:])
	inv.PQPrekey = append([]byte(nil), r.take(pqEKSize)...)
	r.read(inv.Secret[:])
	inv.Expires = time.Unix(int64(r.u64()), 0)
	nameLen := int(r.u8())
	if want := inviteFixedLen + nameLen; len(b) != want {
		return nil, fmt.Errorf("%w: %d bytes, but its name length says %d", errInvite, len(b), want)
	}
	inv.Name = string(r.take(nameLen))
	r.read(inv.PrekeySig[:])
	if err := checkName(inv.Name); err != nil {
		return nil, fmt.Errorf("%w: %v", errInvite, err)
	}
	if !ed25519.Verify(ed25519.PublicKey(inv.Inviter.Sign[:]), inv.signedBytes(), inv.PrekeySig[:]) {
		return nil, fmt.Errorf("%w: bad signature (altered or damaged)", errInvite)
	}
	return inv, nil
}

const pendingVersion = 2
const pendingLen = 1 + 32*2 + pqSeedSize + 32*2 + 8

// Rendezvous is the slot the joiner's first message goes to.
func (p *PendingInvite) Rendezvous() feed.Slot { return rendezvous(p.secret) }

// Expires is the invite's expiry.
func (p *PendingInvite) Expires() time.Time { return p.expires }

// ID is the invite's ID.
func (p *PendingInvite) ID() [32]byte { return p.id }

// MarshalBinary encodes the pending invite: version 2 ‖ signed prekey private
// ‖ one-time prekey private ‖ ML-KEM seed 64 ‖ secret ‖ invite ID ‖ expiry u64.
func (p *PendingInvite) MarshalBinary() ([]byte, error) {
	b := []byte{pendingVersion}
	b = append(b, p.signedPrekey[:]...)
	b = append(b, p.oneTimePrekey[:]...)
	b = append(b, p.pqSeed[:]...)
	b = append(b, p.secret[:]...)
	b = append(b, p.id[:]...)
	return binary.BigEndian.AppendUint64(b, uint64(p.expires.Unix())), nil
}

// UnmarshalPendingInvite decodes a pending invite.
func UnmarshalPendingInvite(b []byte) (*PendingInvite, error) {
	if len(b) != pendingLen {
		return nil, fmt.Errorf("pending invite: %d bytes, want %d", len(b), pendingLen)
	}
	if b[0] != pendingVersion {
		return nil, fmt.Errorf("pending invite: unsupported version %d", b[0])
	}
	p := &PendingInvite{}
	r := reader{b: b[1:]}
	r.read(p.signedPrekey[:])
	r.read(p.oneTimePrekey[:])
	r.read(p.pqSeed[:])
	r.read(p.secret[:])
	r.read(p.id[:])
	p.expires = time.Unix(int64(r.u64()), 0)
	return p, nil
}

// reader decodes fixed fields from a buffer whose length the caller checked;
// short reads leave zeros and set short, which callers check where lengths
// vary.
type reader struct {
	b     []byte
	short bool
}

func (r *reader) take(n int) []byte {
	if n > len(r.b) {
		r.short = true
		out := make([]byte, n)
		copy(out, r.b)
		r.b = nil
		return out
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) read(dst []byte) { copy(dst, r.take(len(dst))) }
func (r *reader) u8() byte        { return r.take(1)[0] }
func (r *reader) u16() uint16     { return binary.BigEndian.Uint16(r.take(2)) }
func (r *reader) u32() uint32     { return binary.BigEndian.Uint32(r.take(4)) }
func (r *reader) u64() uint64     { return binary.BigEndian.Uint64(r.take(8)) }
