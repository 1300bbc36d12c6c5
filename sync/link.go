package sync

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/ratchet"
	"github.com/deaddrop/deaddrop/transport"
)

// Device linking (protocol version 4, docs/protocol.md §10.7).
//
// 'device link' on a device with the account key draws a one-time code: a
// 16-byte secret that names two rendezvous slots and keys them. Nothing is
// written yet. 'device join <code>' on the new device makes the device's own
// identity and an ephemeral X25519 key, and writes a join request, signed by
// that identity and sealed under a key from the code, to the request slot
// (write-once: a second join with the same code finds it taken). The linking
// device, which waits for the request while 'device link' runs (WaitLink;
// nothing picks a request up later), checks that the code has not expired
// by its own clock, shows the joiner's fingerprint, adds the joiner's own
// identity to the signed device list and answers with the account's secrets
// (HK and every epoch key) sealed to the ephemeral key, inside a chunk keyed
// by the code. So the code authenticates the exchange but opens nothing
// long-term: after the join the store holds, under the code, the joiner's
// public keys and a box that only the erased ephemeral key opens.

const (
	linkCodePrefix = "ddlink2-"
	// linkCodeV3 is the prefix of protocol version 3's codes, which handed
	// the new device its keys under the code; they are refused.
	linkCodeV3  = "ddlink1-"
	linkVersion = 4
)

// linkPollEvery is how often both sides look for the other's chunk.
var linkPollEvery = 200 * time.Millisecond

// ErrBadLinkCode reports a link code that is malformed, unknown or used.
var ErrBadLinkCode = errors.New("bad link code")

// ErrLinkExpired reports a link code whose time ran out on the linking
// device before a join request arrived.
var ErrLinkExpired = errors.New("the link code expired")

// Link is a device link waiting for its join: LinkDevice makes it, WaitLink
// completes it.
type Link struct {
	Code    string    // what 'device join' takes
	Device  Device    // the new device's ID and name (its identity comes with the join)
	Expires time.Time // by the linking device's clock
	secret  []byte
}

// linkRequest is what the joiner writes to the request slot.
type linkRequest struct {
	V         int    `json:"v"`
	Identity  []byte `json:"identity"`  // the joiner's public identity, 64 bytes
	Seal      []byte `json:"seal"`      // the joiner's public sealing key (deviceSealKey), 32 bytes
	Ephemeral []byte `json:"ephemeral"` // X25519 public key the answer is sealed to
	Sig       []byte `json:"sig"`       // by Identity over linkRequestSigned
}

// linkAnswer is what the linking device seals to the request's ephemeral key.
type linkAnswer struct {
	V       int    `json:"v"`
	Refused string `json:"refused,omitempty"` // why the join was refused; nothing else then
	Name    string `json:"name,omitempty"`    // the account's display name
	Device  string `json:"device,omitempty"`  // the joiner's device ID
	Account []byte `json:"account,omitempty"` // the account's public identity
	History []byte `json:"history,omitempty"` // HK
	Epochs  []byte `json:"epochs,omitempty"`  // every epoch key: u64 epoch ‖ key, repeated
}

func linkRequestSlot(secret []byte) feed.Slot { return secretSlot("link request", secret) }
func linkAnswerSlot(secret []byte) feed.Slot  { return secretSlot("link answer", secret) }

var (
	linkRequestAD = []byte("deaddrop link request")
	linkAnswerAD  = []byte("deaddrop link answer")
)

// linkRequestSigned is what a join request's signature covers: the request
// slot (binding it to this code), the identity, the ephemeral key and the
// sealing key.
func linkRequestSigned(secret, identity, eph, seal []byte) []byte {
	slot := linkRequestSlot(secret)
	m := append([]byte("deaddrop link request\x00"), slot[:]...)
	return append(append(append(m, identity...), eph...), seal...)
}

// LinkCode is a device link code that parsed (ParseLinkCode). Parse it
// where it enters (the CLI, the root package) so that a mistyped or version
// 3 code is reported before a store connection opens.
type LinkCode struct{ secret []byte }

// ParseLinkCode checks a link code as 'device link' prints it. Errors wrap
// ErrBadLinkCode.
func ParseLinkCode(code string) (LinkCode, error) {
	secret, err := parseLinkCode(code)
	if err != nil {
		return LinkCode{}, err
	}
	return LinkCode{secret: secret}, nil
}

// String is the code in its canonical form.
func (c LinkCode) String() string {
	if len(c.secret) != 16 {
		return ""
	}
	return linkCodePrefix + phraseEncoding.EncodeToString(c.secret)
}

// parseLinkCode checks a link code as 'device link' prints it.
func parseLinkCode(code string) ([]byte, error) {
	code = strings.ToLower(strings.TrimSpace(code))
	if strings.HasPrefix(code, linkCodeV3) {
		return nil, fmt.Errorf("%w: %s… codes are from protocol version 3, which gave the new device its keys under the code; update deaddrop on the linking device and run 'deaddrop device link' again", ErrBadLinkCode, linkCodeV3)
	}
	rest, ok := strings.CutPrefix(code, linkCodePrefix)
	secret, err := phraseEncoding.DecodeString(rest)
	if !ok || err != nil || len(secret) != 16 {
		return nil, fmt.Errorf("%w: want %s followed by 26 letters and digits 2-7, as 'deaddrop device link' prints it", ErrBadLinkCode, linkCodePrefix)
	}
	return secret, nil
}

// LinkDevice starts linking a new device called name to the account: it
// returns the one-time code, valid for ttl, that 'device join' takes on the
// new device. Nothing is written until WaitLink sees the join.
func (a *Account) LinkDevice(ctx context.Context, name string, ttl time.Duration) (*Link, error) {
	if !a.historyOn {
		return nil, ErrNoHistory
	}
	if a.accountKey == nil {
		return nil, ErrNoAccountKey
	}
	if name == "" {
		name = "device"
	}
	if err := ValidName(name); err != nil {
		return nil, fmt.Errorf("device name: %w", err)
	}
	if err := a.syncDirectory(ctx); err != nil {
		return nil, err
	}
	l, err := a.deviceList()
	if err != nil {
		return nil, err
	}
	if len(l.Devices) >= MaxDevices {
		return nil, fmt.Errorf("the account already has %d devices, the most allowed: remove one first", len(l.Devices))
	}
	id, err := newDeviceID(a.opts.Rand)
	if err != nil {
		return nil, err
	}
	secret := make([]byte, 16)
	if _, err := io.ReadFull(a.opts.Rand, secret); err != nil {
		return nil, err
	}
	return &Link{Code: linkCodePrefix + phraseEncoding.EncodeToString(secret), Device: Device{ID: id, Name: name},
		Expires: a.opts.Now().Add(ttl), secret: secret}, nil
}

// WaitLink waits (until the code expires or ctx ends) for the join request
// of lk, then adds the joiner's identity to the device list and answers it
// with the account's keys. confirm, if not nil, sees the device (with the
// joiner's identity: compare its fingerprint with the one the joiner shows)
// before anything is published; an error from it refuses the join. A code
// answers one request: a request arriving after the expiry is refused, and
// lk must not be waited on again.
func (a *Account) WaitLink(ctx context.Context, lk *Link, confirm func(*Device) error) (*Device, error) {
	if lk == nil || lk.secret == nil {
		return nil, errors.New("no link to wait for")
	}
	secret := lk.secret
	lk.secret = nil // one request per code, whatever happens
	var chunk []byte
	for {
		c, err := a.tr.Get(ctx, linkRequestSlot(secret))
		if err == nil {
			chunk = c
			break
		}
		if !errors.Is(err, feed.ErrNotFound) {
			return nil, fmt.Errorf("reading the join request: %w", err)
		}
		left := lk.Expires.Sub(a.opts.Now())
		if left <= 0 {
			return nil, fmt.Errorf("%w at %s before any device joined: run 'deaddrop device link' again", ErrLinkExpired, lk.Expires.Local().Format(time.DateTime))
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(min(left, linkPollEvery)):
		}
	}
	req, err := openLinkRequest(secret, chunk)
	if err != nil {
		// Someone with the code wrote junk: the code is spent and leaked.
		return nil, fmt.Errorf("%w: the join request %v; someone else may have the code: make a new one", ErrBadLinkCode, err)
	}
	eph := ratchet.PublicIdentity{DH: [32]byte(req.Ephemeral)}
	refuse := func(why string, err error) (*Device, error) {
		// Best effort: the joiner learns why instead of waiting.
		if ans, e := sealLinkAnswer(secret, eph, &linkAnswer{V: linkVersion, Refused: why}, a.opts.Rand); e == nil {
			a.tr.Put(ctx, linkAnswerSlot(secret), ans)
		}
		return nil, err
	}
	if a.opts.Now().After(lk.Expires) {
		return refuse("the code expired", fmt.Errorf("%w at %s: a join request came too late and was refused; run 'deaddrop device link' again", ErrLinkExpired, lk.Expires.Local().Format(time.DateTime)))
	}
	dev := lk.Device
	dev.Identity, dev.Seal, dev.Added = req.Identity, req.Seal, a.opts.Now().UTC().Truncate(time.Second)
	if confirm != nil {
		if err := confirm(&dev); err != nil {
			return refuse("the linking device declined", err)
		}
	}
	if err := a.syncDirectory(ctx); err != nil {
		return nil, err
	}
	l, err := a.deviceList()
	if err != nil {
		return nil, err
	}
	if len(l.Devices) >= MaxDevices {
		return refuse("the account has the most devices allowed", fmt.Errorf("the account already has %d devices, the most allowed: remove one first", len(l.Devices)))
	}
	for _, d := range l.Devices {
		if bytes.Equal(d.Identity, dev.Identity) || d.ID == dev.ID {
			return refuse("the identity is already a device of the account", fmt.Errorf("%w: the joiner's identity or ID is already device %s", ErrBadLinkCode, d.ID))
		}
	}
	// Sealed before the list is published: an ephemeral key that cannot be
	// sealed to (a low-order point) must not leave a device behind. Adding a
	// device starts no epoch, so these are the keys after it too.
	ans, err := sealLinkAnswer(secret, eph, &linkAnswer{V: linkVersion, Name: a.name, Device: dev.ID, Account: a.accountPub.Bytes(),
		History: a.history[:], Epochs: linkEpochs(a.epochKeys())}, a.opts.Rand)
	if err != nil {
		return nil, fmt.Errorf("%w: the join request's ephemeral key: %v", ErrBadLinkCode, err)
	}
	next := l.successor()
	next.Devices = append(next.Devices, dev)
	if err := a.publishList(ctx, l, next); err != nil {
		return nil, err
	}
	if err := a.tr.Put(ctx, linkAnswerSlot(secret), ans); err != nil {
		return nil, fmt.Errorf("device %s is in the device list but its keys could not be sent (remove it and link again): %w", dev.ID, err)
	}
	a.announcements(ctx) // a failure is retried by the next Poll
	return &dev, nil
}

func openLinkRequest(secret, chunk []byte) (*linkRequest, error) {
	content, err := openContent(secretKey("link request", secret), linkRequestAD, chunk)
	if err != nil {
		return nil, err
	}
	return parseLinkRequest(secret, content)
}

// parseLinkRequest checks an opened join request: version 4, well-formed
// keys, signed by the identity it names for this code.
func parseLinkRequest(secret, content []byte) (*linkRequest, error) {
	var req linkRequest
	if err := json.Unmarshal(content, &req); err != nil {
		return nil, fmt.Errorf("is malformed: %v", err)
	}
	if req.V != linkVersion {
		return nil, fmt.Errorf("has version %d, want %d", req.V, linkVersion)
	}
	id, err := ratchet.ParsePublicIdentity(req.Identity)
	if err != nil || len(req.Ephemeral) != 32 || len(req.Seal) != 32 {
		return nil, errors.New("has malformed keys")
	}
	if !id.Verify(linkRequestSigned(secret, req.Identity, req.Ephemeral, req.Seal), req.Sig) {
		return nil, errors.New("is not signed by the identity it names")
	}
	return &req, nil
}

func sealLinkAnswer(secret []byte, eph ratchet.PublicIdentity, ans *linkAnswer, rand io.Reader) ([]byte, error) {
	b, err := json.Marshal(ans)
	if err != nil {
		return nil, err
	}
	box, err := ratchet.SealTo(eph, b, rand)
	if err != nil {
		return nil, err
	}
	return sealContent(secretKey("link answer", secret), linkAnswerAD, box, rand)
}

// JoinDevice makes dir a new device of the account whose 'device link'
// printed code: it makes the device's identity, writes the join request and
// waits (until ctx ends) for the linking device's answer; then reads the
// account's whole history and starts sessions with the contacts' devices.
// On any error dir is left without an account.
func JoinDevice(ctx context.Context, dir, code string, tr transport.Transport, opts Options) (*Account, *RestoreStats, error) {
	opts.fill()
	secret, err := parseLinkCode(code)
	if err != nil {
		return nil, nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, stateFile)); err == nil {
		return nil, nil, fmt.Errorf("%w (%s)", ErrAccountExists, dir)
	}
	id, err := ratchet.NewIdentity(opts.Rand)
	if err != nil {
		return nil, nil, err
	}
	eph, err := ratchet.NewIdentity(opts.Rand) // only its X25519 key is used, then dropped
	if err != nil {
		return nil, nil, err
	}
	ephPub := eph.Public().DH
	chunk, err := sealLinkRequest(secret, id, ephPub[:], opts.Rand)
	if err != nil {
		return nil, nil, err
	}
	err = tr.Put(ctx, linkRequestSlot(secret), chunk)
	if errors.Is(err, feed.ErrSlotUsed) {
		return nil, nil, fmt.Errorf("%w: this code was used already (codes work once; if not by you, someone else has it: check 'deaddrop device list' on the linking device and remove what you do not know)", ErrBadLinkCode)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("writing the join request: %w", err)
	}
	for {
		chunk, err = tr.Get(ctx, linkAnswerSlot(secret))
		if err == nil {
			break
		}
		if !errors.Is(err, feed.ErrNotFound) {
			return nil, nil, fmt.Errorf("reading the linking device's answer: %w", err)
		}
		select {
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("no answer from the linking device (is 'deaddrop device link' still running there?); the code is spent, make a new one: %w", ctx.Err())
		case <-time.After(linkPollEvery):
		}
	}
	start := time.Now()
	ans, err := openLinkAnswer(secret, eph, chunk)
	if err != nil {
		return nil, nil, err
	}
	st := &accountState{Name: ans.Name, Device: ans.Device, Identity: id, History: true}
	if st.AccountPub, err = ratchet.ParsePublicIdentity(ans.Account); err != nil || len(ans.History) != 32 || validDeviceID(ans.Device) != nil {
		return nil, nil, fmt.Errorf("%w: the answer has malformed account keys", ErrBadLinkCode)
	}
	copy(st.Key[:], ans.History)
	if st.Epochs, err = parseEpochKeys(ans.Epochs); err != nil || st.Epochs[0] != st.Key {
		return nil, nil, fmt.Errorf("%w: the answer has malformed history keys", ErrBadLinkCode)
	}
	// The answer has the epoch keys up to the link; versions after it (a
	// device removed meanwhile) carry later ones sealed to us.
	r := &dirReader{get: tr.Get, account: st.AccountPub, keys: st.Epochs, id: st.Identity, as: st.Device}
	d, err := r.read(ctx, 0, 0, 0)
	if err != nil {
		return nil, nil, err
	}
	l := d.list
	if l == nil {
		return nil, nil, fmt.Errorf("%w: the account's device list is not on this store", ErrBadLinkCode)
	}
	if me := l.find(ans.Device); me == nil || !bytes.Equal(me.Identity, id.Public().Bytes()) || !bytes.Equal(me.Seal, sealPub(id)) {
		return nil, nil, fmt.Errorf("%w: the account's signed device list does not name this device with this identity (removed meanwhile?)", ErrBadLinkCode)
	}
	st.List, st.Directory, st.Epochs = d.signed, d.chunks, r.keys
	a, stats, err := bootstrap(ctx, dir, tr, opts, st, d.lists, func(*Account, *RestoreStats) error { return nil })
	if err != nil {
		return nil, nil, err
	}
	a.announcements(ctx) // a failure is retried by the next Poll
	stats.Problems = d.junk
	stats.Duration = time.Since(start)
	return a, stats, nil
}

func sealLinkRequest(secret []byte, id *ratchet.Identity, eph []byte, rand io.Reader) ([]byte, error) {
	pub, seal := id.Public().Bytes(), sealPub(id)
	req, err := json.Marshal(&linkRequest{V: linkVersion, Identity: pub, Seal: seal, Ephemeral: eph, Sig: id.Sign(linkRequestSigned(secret, pub, eph, seal))})
	if err != nil {
		return nil, err
	}
	return sealContent(secretKey("link request", secret), linkRequestAD, req, rand)
}

func openLinkAnswer(secret []byte, eph *ratchet.Identity, chunk []byte) (*linkAnswer, error) {
	box, err := openContent(secretKey("link answer", secret), linkAnswerAD, chunk)
	if err != nil {
		return nil, fmt.Errorf("%w: the answer %v", ErrBadLinkCode, err)
	}
	content, err := eph.OpenSealed(box)
	if err != nil {
		return nil, fmt.Errorf("%w: this code was used already by another join (codes work once; if not by you, someone else has it: check 'deaddrop device list' on the linking device)", ErrBadLinkCode)
	}
	return parseLinkAnswer(content)
}

// parseLinkAnswer checks an opened answer: a refusal is an error with its
// reason; anything else must carry well-formed account keys, a device ID and
// every epoch key from epoch 0 = HK.
func parseLinkAnswer(content []byte) (*linkAnswer, error) {
	var ans linkAnswer
	if err := json.Unmarshal(content, &ans); err != nil || ans.V != linkVersion {
		return nil, fmt.Errorf("%w: malformed answer", ErrBadLinkCode)
	}
	if ans.Refused != "" {
		return nil, fmt.Errorf("%w: the linking device refused the join: %s", ErrBadLinkCode, ans.Refused)
	}
	if _, err := ratchet.ParsePublicIdentity(ans.Account); err != nil || len(ans.History) != 32 || validDeviceID(ans.Device) != nil || ValidName(ans.Name) != nil {
		return nil, fmt.Errorf("%w: the answer has malformed account keys", ErrBadLinkCode)
	}
	if k, err := parseEpochKeys(ans.Epochs); err != nil || k[0] != [32]byte(ans.History) {
		return nil, fmt.Errorf("%w: the answer has malformed history keys", ErrBadLinkCode)
	}
	return &ans, nil
}

// DeviceFingerprint is the fingerprint of this device's own identity, which
// 'device join' shows and 'device link' shows for the joiner: the two must
// match (a leaked code lets someone else race the join).
func (a *Account) DeviceFingerprint() string { return a.id.Public().Fingerprint() }

// Fingerprint is the fingerprint of the device's identity (empty before the
// device joined).
func (d *Device) Fingerprint() string {
	p, err := ratchet.ParsePublicIdentity(d.Identity)
	if err != nil {
		return ""
	}
	return p.Fingerprint()
}

// linkEpochs encodes epoch keys for a link answer: u64 epoch ‖ key, in
// ascending epoch order.
func linkEpochs(k epochKeys) []byte {
	var b []byte
	for _, e := range slices.Sorted(maps.Keys(k)) {
		key := k[e]
		b = append(binary.BigEndian.AppendUint64(b, e), key[:]...)
	}
	return b
}
