package ratchet

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/deaddrop/deaddrop/feed"
	"golang.org/x/crypto/chacha20poly1305"
)

const (
	// MaxSkip is the most message keys one message may make the reader skip.
	MaxSkip = 1000
	// MaxSkippedKeys bounds the skipped-key cache; the oldest are evicted.
	MaxSkippedKeys = 1000
)

var (
	// ErrDuplicate reports a message this session already decrypted.
	ErrDuplicate = errors.New("message already decrypted")
	// ErrTooManySkipped reports a message too far ahead of the chain.
	ErrTooManySkipped = fmt.Errorf("message skips more than %d keys", MaxSkip)
	// ErrNotYet reports a message of the peer's new chain found before the
	// chain's first message, whose PQ field its keys depend on; it opens once
	// that message has been read.
	ErrNotYet = errors.New("message cannot be opened before the first message of its chain")
)

// Sealed is an encrypted message ready for the store.
type Sealed struct {
	Slot  feed.Slot
	Chunk []byte // exactly feed.ChunkSize bytes
}

type skippedKey struct {
	hk   [32]byte
	n    uint32
	mk   [32]byte
	slot feed.Slot
}

// Session is one side of a conversation: the Double Ratchet state with header
// encryption (Signal's DR-HE, field names as in its specification) plus the
// topic keys locating the next slot of each chain.
type Session struct {
	dhsPriv, dhsPub [32]byte
	dhr             [32]byte
	rk              [32]byte
	cks, ckr        [32]byte
	ns, nr, pn      uint32
	hks, hkr        [32]byte
	nhks, nhkr      [32]byte
	tks, tkr        [32]byte // topic keys at index ns of the sending chain, nr of the receiving chain
	hasDHr          bool
	hasCKs, hasCKr  bool
	hasHKs, hasHKr  bool
	skipped         []skippedKey // oldest first
	ad              [128]byte    // inviter identity ‖ joiner identity
	peer            PublicIdentity

	// The KEM ratchet (pq.go): our outstanding offer's decapsulation key
	// seed, and the peer's offer we have yet to answer.
	pqDK        [pqSeedSize]byte
	pqPeerEK    [pqEKSize]byte
	hasPQDK     bool
	hasPQPeerEK bool

	// init, on the joiner's side until its first message is written, holds
	// the preamble of that message, which goes to the invite's rendezvous.
	init     *initFields
	initSlot feed.Slot

	rand io.Reader // for new ratchet keys; not serialised
}

// Peer returns the other party's identity.
func (s *Session) Peer() PublicIdentity { return s.peer }

func associatedData(inviter, joiner PublicIdentity) (ad [128]byte) {
	copy(ad[:], append(inviter.bytes(), joiner.bytes()...))
	return ad
}

// x3dh derives the initial root key and the two shared header keys.
func x3dh(secret [32]byte, dhs ...[32]byte) (sk, hka, nhkb [32]byte) {
	ikm := make([]byte, 32, 32*5)
	for i := range ikm {
		ikm[i] = 0xFF
	}
	for _, dh := range dhs {
		ikm = append(ikm, dh[:]...)
	}
	b := hkdfSHA256(ikm, secret[:], infoX3DH, 96)
	copy(sk[:], b[:32])
	copy(hka[:], b[32:64])
	copy(nhkb[:], b[64:])
	return
}

func agree(pairs ...[2][32]byte) ([][32]byte, error) {
	out := make([][32]byte, len(pairs))
	for i, p := range pairs {
		var err error
		if out[i], err = x25519(p[0], p[1]); err != nil {
			return nil, fmt.Errorf("key agreement %d: %w", i+1, err)
		}
	}
	return out, nil
}

// Accept starts a session from an invite, on the joiner's side. The joiner can
// write at once: its first message goes to the invite's rendezvous slot.
func Accept(id *Identity, inv *Invite, name string, now time.Time, rnd io.Reader) (*Session, error) {
	if err := inv.CheckExpiry(now); err != nil {
		return nil, err
	}
	if err := checkName(name); err != nil {
		return nil, err
	}
	ek, ekPub, err := newKeyPair(rnd)
	if err != nil {
		return nil, err
	}
	dh, err := agree([2][32]byte{id.dh, inv.SignedPrekey}, [2][32]byte{ek, inv.Inviter.DH},
		[2][32]byte{ek, inv.SignedPrekey}, [2][32]byte{ek, inv.OneTimePrekey})
	if err != nil {
		return nil, fmt.Errorf("invite: %w", err)
	}
	ss, ct, err := encapsulateTo(inv.PQPrekey, rnd)
	if err != nil {
		return nil, fmt.Errorf("invite: %w", err)
	}
	sk, hka, nhkb := x3dh(inv.Secret, append(dh, [32]byte(ss))...)
	s := &Session{peer: inv.Inviter, ad: associatedData(inv.Inviter, id.pub), rand: rand.Reader}
	// RatchetInitAliceHE.
	if s.dhsPriv, s.dhsPub, err = newKeyPair(rnd); err != nil {
		return nil, err
	}
	s.dhr, s.hasDHr = inv.SignedPrekey, true
	out, err := x25519(s.dhsPriv, s.dhr)
	if err != nil {
		return nil, err
	}
	s.rk, s.cks, s.nhks = kdfRK(sk, out)
	s.hasCKs = true
	s.hks, s.hasHKs, s.nhkr = hka, true, nhkb
	s.tks = topicStart(s.hks)
	s.init = &initFields{joiner: id.pub, ephem: ekPub, inviteID: inv.ID(), kemCT: [pqCTSize]byte(ct), name: name}
	s.initSlot = inv.Rendezvous()
	return s, nil
}

// AcceptInit opens the joiner's first message, found at the rendezvous slot
// of a pending invite, and starts the inviter's session.
func AcceptInit(id *Identity, p *PendingInvite, chunk []byte, now time.Time) (s *Session, peer PublicIdentity, peerName string, plaintext []byte, err error) {
	inner, err := openChunk(p.Rendezvous(), chunk)
	if err != nil {
		return nil, peer, "", nil, err
	}
	f, rest, err := parseInit(inner)
	if err != nil {
		return nil, peer, "", nil, err
	}
	if f.inviteID != p.id {
		return nil, peer, "", nil, fmt.Errorf("%w: first message names another invite", ErrDecrypt)
	}
	dh, err := agree([2][32]byte{p.signedPrekey, f.joiner.DH}, [2][32]byte{id.dh, f.ephem},
		[2][32]byte{p.signedPrekey, f.ephem}, [2][32]byte{p.oneTimePrekey, f.ephem})
	if err != nil {
		return nil, peer, "", nil, fmt.Errorf("%w: %v", ErrDecrypt, err)
	}
	ss, err := decapsulate(p.pqSeed, f.kemCT[:])
	if err != nil {
		return nil, peer, "", nil, fmt.Errorf("%w: ML-KEM: %v", ErrDecrypt, err)
	}
	sk, hka, nhkb := x3dh(p.secret, append(dh, [32]byte(ss))...)
	s = &Session{peer: f.joiner, ad: associatedData(id.pub, f.joiner), rand: acceptInitRand}
	// RatchetInitBobHE: our signed prekey is the first ratchet key.
	s.dhsPriv = p.signedPrekey
	s.dhsPub = publicKey(p.signedPrekey)
	s.rk, s.nhks, s.nhkr = sk, nhkb, hka
	m, err := parseMessage(rest)
	if err != nil {
		return nil, peer, "", nil, err
	}
	plaintext, err = s.decrypt(feed.Slot{}, m, inner[:initFieldsSize])
	if err != nil {
		return nil, peer, "", nil, err
	}
	return s, f.joiner, f.name, plaintext, nil
}

// acceptInitRand is where AcceptInit's session draws its ratchet keys, the
// first one while it opens the first message; the transcript vectors
// replace it to be reproducible (ratchet/transcript_test.go).
var acceptInitRand io.Reader = rand.Reader

func publicKey(priv [32]byte) [32]byte {
	_, pub, _ := newKeyPair(bytesReader(priv[:]))
	return pub
}

type bytesReader []byte

func (b bytesReader) Read(p []byte) (int, error) { return copy(p, b), nil }

// Encrypt seals plaintext as the next message of the sending chain and
// returns the chunk with the slot it must be written to.
func (s *Session) Encrypt(plaintext []byte, rnd io.Reader) (Sealed, error) {
	if len(plaintext) > MaxPlaintext || (s.init != nil && len(plaintext) > MaxFirstPlaintext) {
		return Sealed{}, ErrTooLarge
	}
	if !s.hasCKs || !s.hasHKs {
		return Sealed{}, errors.New("ratchet: session cannot send yet")
	}
	c := s.clone()
	pq := pqField{kind: pqNone}
	if c.ns == 0 {
		var err error
		if pq, err = c.pqSend(rnd); err != nil {
			return Sealed{}, err
		}
	}
	var mk [32]byte
	c.cks, mk = kdfCK(c.cks)
	encHeader, err := sealHeader(c.hks, header{dh: c.dhsPub, pn: c.pn, n: c.ns}, rnd)
	if err != nil {
		return Sealed{}, err
	}
	slot := topicSlot(c.tks)
	c.tks = topicNext(c.tks)
	preamble := []byte{typeMessage}
	if c.init != nil {
		slot, preamble = c.initSlot, c.init.marshal()
		c.init = nil
	}
	key, nonce := messageKeys(mk)
	aead, _ := chacha20poly1305.NewX(key)
	m := message{encHeader: encHeader, pq: pq}
	m.body = aead.Seal(nil, nonce, plaintext, c.messageAD(preamble, m))
	inner := pad(appendMessage(preamble, m))
	chunk, err := sealChunk(slot, inner, rnd)
	if err != nil {
		return Sealed{}, err
	}
	c.ns++
	*s = *c
	return Sealed{Slot: slot, Chunk: chunk}, nil
}

// messageAD binds the message to both identities, to the first message's
// preamble (for the first message), to the encrypted header and to the PQ
// field.
func (s *Session) messageAD(preamble []byte, m message) []byte {
	ad := append([]byte(nil), s.ad[:]...)
	if len(preamble) > 1 {
		ad = append(ad, preamble...)
	}
	ad = append(ad, m.encHeader...)
	return append(ad, m.pq.bytes()...)
}

// Decrypt opens the chunk found at slot. It is transactional: on any error
// the session is unchanged.
func (s *Session) Decrypt(slot feed.Slot, chunk []byte) ([]byte, error) {
	inner, err := OpenChunk(slot, chunk)
	if err != nil {
		return nil, err
	}
	return s.DecryptOpened(slot, inner)
}

// OpenChunk removes a chunk's outer layer (§6), which needs only the slot.
// It is pure, so a reader may open a window of chunks in parallel and then
// pass each result to DecryptOpened in order.
func OpenChunk(slot feed.Slot, chunk []byte) (Opened, error) {
	inner, err := openChunk(slot, chunk)
	return Opened(inner), err
}

// Opened is a chunk with its outer layer removed.
type Opened []byte

// DecryptOpened is Decrypt for a chunk already opened by OpenChunk.
func (s *Session) DecryptOpened(slot feed.Slot, inner Opened) ([]byte, error) {
	if len(inner) != innerSize {
		return nil, fmt.Errorf("%w: opened chunk of %d bytes", ErrDecrypt, len(inner))
	}
	if inner[0] != typeMessage {
		return nil, fmt.Errorf("%w: unexpected chunk type %d", ErrDecrypt, inner[0])
	}
	m, err := parseMessage(inner[1:])
	if err != nil {
		return nil, err
	}
	c := s.clone()
	pt, err := c.decrypt(slot, m, nil)
	if err != nil {
		return nil, err
	}
	*s = *c
	return pt, nil
}

// decrypt is RatchetDecryptHE. A zero slot (the first message, at the
// rendezvous) skips the check that the message sits at its own topic slot.
func (c *Session) decrypt(slot feed.Slot, m message, preamble []byte) ([]byte, error) {
	ad := c.messageAD(preamble, m)
	if i := c.findSkipped(slot); i >= 0 {
		if m.pq.kind != pqNone {
			return nil, fmt.Errorf("%w: PQ field in a skipped message", ErrDecrypt)
		}
		return c.decryptSkipped(i, m, ad)
	}
	h, ok := header{}, false
	if c.hasHKr {
		h, ok = openHeader(c.hkr, m.encHeader)
	}
	dhStep := false
	if !ok {
		if h, ok = openHeader(c.nhkr, m.encHeader); !ok {
			return nil, fmt.Errorf("%w: header does not open", ErrDecrypt)
		}
		dhStep = true
	}
	if !dhStep && h.n < c.nr {
		return nil, ErrDuplicate
	}
	if !dhStep && m.pq.kind != pqNone {
		return nil, fmt.Errorf("%w: PQ field inside a chain", ErrDecrypt)
	}
	if dhStep {
		if h.n != 0 {
			return nil, ErrNotYet
		}
		if err := c.skip(h.pn); err != nil {
			return nil, err
		}
		if err := c.dhRatchet(h, m.pq); err != nil {
			return nil, err
		}
	}
	if err := c.skip(h.n); err != nil {
		return nil, err
	}
	if slot != (feed.Slot{}) && topicSlot(c.tkr) != slot {
		return nil, fmt.Errorf("%w: message is not at its own slot", ErrDecrypt)
	}
	var mk [32]byte
	c.ckr, mk = kdfCK(c.ckr)
	c.nr++
	c.tkr = topicNext(c.tkr)
	return openBody(mk, m.body, ad)
}

func (c *Session) findSkipped(slot feed.Slot) int {
	if slot == (feed.Slot{}) {
		return -1
	}
	return slices.IndexFunc(c.skipped, func(k skippedKey) bool { return k.slot == slot })
}

// DropSkipped forgets the skipped message key of slot and reports whether
// there was one: the message at that slot, if it ever comes, is not read. A
// reader expires keys it has waited for too long, so that a header claiming
// a long gap does not make it poll those slots forever.
func (c *Session) DropSkipped(slot feed.Slot) bool {
	i := c.findSkipped(slot)
	if i < 0 {
		return false
	}
	c.skipped = slices.Delete(c.skipped, i, i+1)
	return true
}

func (c *Session) decryptSkipped(i int, m message, ad []byte) ([]byte, error) {
	k := c.skipped[i]
	h, ok := openHeader(k.hk, m.encHeader)
	if !ok || h.n != k.n {
		return nil, fmt.Errorf("%w: header does not match the skipped key of its slot", ErrDecrypt)
	}
	pt, err := openBody(k.mk, m.body, ad)
	if err != nil {
		return nil, err
	}
	c.skipped = slices.Delete(c.skipped, i, i+1)
	return pt, nil
}

func openBody(mk [32]byte, body, ad []byte) ([]byte, error) {
	key, nonce := messageKeys(mk)
	aead, _ := chacha20poly1305.NewX(key)
	pt, err := aead.Open(nil, nonce, body, ad)
	if err != nil {
		return nil, fmt.Errorf("%w: body fails authentication", ErrDecrypt)
	}
	return pt, nil
}

// skip is SkipMessageKeysHE; each skipped key remembers its slot, which the
// reader keeps polling.
func (c *Session) skip(until uint32) error {
	if !c.hasCKr {
		return nil
	}
	if until > c.nr+MaxSkip {
		return ErrTooManySkipped
	}
	for c.nr < until {
		var mk [32]byte
		c.ckr, mk = kdfCK(c.ckr)
		c.skipped = append(c.skipped, skippedKey{hk: c.hkr, n: c.nr, mk: mk, slot: topicSlot(c.tkr)})
		c.tkr = topicNext(c.tkr)
		c.nr++
	}
	if extra := len(c.skipped) - MaxSkippedKeys; extra > 0 {
		c.skipped = slices.Delete(c.skipped, 0, extra)
	}
	return nil
}

// dhRatchet is DHRatchetHE, with the KEM ratchet's step between its two
// halves (pq.go).
func (c *Session) dhRatchet(h header, pq pqField) error {
	c.pn, c.ns, c.nr = c.ns, 0, 0
	c.hks, c.hasHKs, c.tks = c.nhks, true, topicStart(c.nhks)
	c.hkr, c.hasHKr, c.tkr = c.nhkr, true, topicStart(c.nhkr)
	c.dhr, c.hasDHr = h.dh, true
	out, err := x25519(c.dhsPriv, c.dhr)
	if err != nil {
		return fmt.Errorf("%w: ratchet key: %v", ErrDecrypt, err)
	}
	c.rk, c.ckr, c.nhkr = kdfRK(c.rk, out)
	c.hasCKr = true
	if err := c.pqReceive(pq); err != nil {
		return err
	}
	if c.dhsPriv, c.dhsPub, err = newKeyPair(c.rand); err != nil {
		return err
	}
	if out, err = x25519(c.dhsPriv, c.dhr); err != nil {
		return err
	}
	c.rk, c.cks, c.nhks = kdfRK(c.rk, out)
	c.hasCKs = true
	return nil
}

func (s *Session) clone() *Session {
	c := *s
	c.skipped = slices.Clone(s.skipped)
	if s.init != nil {
		f := *s.init
		c.init = &f
	}
	if c.rand == nil {
		c.rand = rand.Reader
	}
	return &c
}

type header struct {
	dh    [32]byte
	pn, n uint32
}

func sealHeader(hk [32]byte, h header, rnd io.Reader) ([]byte, error) {
	b := make([]byte, chacha20poly1305.NonceSizeX, encHdrSize)
	if _, err := io.ReadFull(rnd, b); err != nil {
		return nil, err
	}
	pt := append(h.dh[:], 0, 0, 0, 0, 0, 0, 0, 0)
	binary.BigEndian.PutUint32(pt[32:], h.pn)
	binary.BigEndian.PutUint32(pt[36:], h.n)
	aead, _ := chacha20poly1305.NewX(hk[:])
	return aead.Seal(b, b, pt, nil), nil
}

func openHeader(hk [32]byte, enc []byte) (header, bool) {
	aead, _ := chacha20poly1305.NewX(hk[:])
	n := chacha20poly1305.NonceSizeX
	pt, err := aead.Open(nil, enc[:n], enc[n:], nil)
	if err != nil || len(pt) != headerSize {
		return header{}, false
	}
	var h header
	copy(h.dh[:], pt)
	h.pn = binary.BigEndian.Uint32(pt[32:])
	h.n = binary.BigEndian.Uint32(pt[36:])
	return h, true
}
