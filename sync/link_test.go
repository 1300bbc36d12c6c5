package sync

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	gosync "sync"
	"testing"
	"time"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/ratchet"
	"github.com/deaddrop/deaddrop/transport"
)

// storeLog is a transport that remembers every chunk written through it:
// the attacker's view of the whole store.
type storeLog struct {
	transport.Transport
	mu     gosync.Mutex
	chunks map[feed.Slot][]byte
}

func (s *storeLog) Put(ctx context.Context, slot feed.Slot, chunk []byte) error {
	err := s.Transport.Put(ctx, slot, chunk)
	if err == nil {
		s.mu.Lock()
		s.chunks[slot] = bytes.Clone(chunk)
		s.mu.Unlock()
	}
	return err
}

func (s *storeLog) all() map[feed.Slot][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[feed.Slot][]byte{}
	for k, v := range s.chunks {
		m[k] = v
	}
	return m
}

func linkFixture(t *testing.T) (context.Context, *storeLog, *Account) {
	ctx := context.Background()
	tr := &storeLog{Transport: nopCloser{transport.NewDirect(feed.NewMemory())}, chunks: map[feed.Slot][]byte{}}
	a, err := Create(t.TempDir(), "alice", tr, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return ctx, tr, a
}

// codeSecret is what an attacker who reads the code learns.
func codeSecret(t *testing.T, code string) []byte {
	s, err := parseLinkCode(code)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Issue 12, item 4: an attacker who learns the code after it was used
// opens every chunk on the store that any key derived from the code opens
// (every label a link ever used, version 3's included) and finds no
// long-term key: not HK, no epoch key, no private identity. The joiner's
// secrets are in a box sealed to an ephemeral key the joiner dropped. A
// join with the code is refused, and a device removed later stays removed.
func TestLinkCodeAfterUseOpensNothing(t *testing.T) {
	ctx, tr, alice := linkFixture(t)
	lk, err := alice.LinkDevice(ctx, "laptop", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	code := lk.Code
	laptop, _, dev, err := joinLink(ctx, alice, lk, t.TempDir(), tr, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer laptop.Close()
	if !bytes.Equal(dev.Identity, laptop.id.Public().Bytes()) {
		t.Fatal("the list does not name the identity the joiner made")
	}
	if _, err := alice.RemoveDevice(ctx, "laptop"); err != nil { // and a new epoch
		t.Fatal(err)
	}

	// What must never be readable with the code alone.
	var secrets [][]byte
	for _, k := range alice.epochKeys() {
		secrets = append(secrets, bytes.Clone(k[:]))
	}
	for _, id := range []*ratchet.Identity{laptop.id, alice.id, alice.accountKey} {
		b, _ := id.MarshalBinary()
		secrets = append(secrets, b[len(b)-64:len(b)-32], b[len(b)-32:]) // Ed25519 seed, X25519 key
	}

	secret := codeSecret(t, code)
	labels := []string{"link", "link claimed", "link request", "link answer"}
	ads := [][]byte{[]byte("deaddrop link"), []byte("deaddrop link claimed"), linkRequestAD, linkAnswerAD}
	opened := 0
	for slot, chunk := range tr.all() {
		for _, label := range labels {
			for _, ad := range ads {
				pt, err := openContent(secretKey(label, secret), ad, chunk)
				if err != nil {
					continue
				}
				opened++
				for _, b := range decodings(pt) {
					for _, s := range secrets {
						if bytes.Contains(b, s) {
							t.Fatalf("slot %x opened with the code (%s) holds a long-term secret", slot[:4], label)
						}
					}
				}
				if slot == linkAnswerSlot(secret) {
					// The answer is a sealed box: neither the code nor any
					// long-term key of the account or the joiner opens it.
					for _, id := range []*ratchet.Identity{laptop.id, alice.id, alice.accountKey} {
						if _, err := id.OpenSealed(pt); err == nil {
							t.Fatal("the answer opens with a long-term key")
						}
					}
				}
			}
		}
	}
	if opened != 2 {
		t.Fatalf("the code opens %d chunks, want 2 (the request and the answer's outer layer)", opened)
	}
	for _, label := range labels[:2] { // version 3's slots are not written
		if _, err := tr.Get(ctx, secretSlot(label, secret)); !errors.Is(err, feed.ErrNotFound) {
			t.Fatalf("the %s slot of the code is written: %v", label, err)
		}
	}

	// Joining with the used code is refused, and changes nothing.
	v := listVersion(t, alice)
	if _, _, err := JoinDevice(ctx, t.TempDir(), code, tr, Options{}); !errors.Is(err, ErrBadLinkCode) {
		t.Fatalf("join with a used code: %v", err)
	}
	if err := alice.syncDirectory(ctx); err != nil || listVersion(t, alice) != v {
		t.Fatalf("a used code changed the device list (version %d, was %d): %v", listVersion(t, alice), v, err)
	}
}

// decodings returns b and, if b is JSON, every string in it decoded from
// base64 (how the link's JSON carries bytes), so that a secret is found
// however it is written.
func decodings(b []byte) [][]byte {
	out := [][]byte{b}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			if d, err := base64.StdEncoding.DecodeString(v); err == nil {
				out = append(out, d)
			}
			out = append(out, []byte(v))
		case map[string]any:
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	var v any
	if json.Unmarshal(b, &v) == nil {
		walk(v)
	}
	return out
}

func listVersion(t *testing.T, a *Account) uint64 {
	t.Helper()
	l, err := a.deviceList()
	if err != nil {
		t.Fatal(err)
	}
	return l.Version
}

// waitRequest waits until a join request is on the store for code.
func waitRequest(t *testing.T, tr transport.Transport, code string) {
	t.Helper()
	for range 500 {
		if _, err := tr.Get(context.Background(), linkRequestSlot(codeSecret(t, code))); err == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no join request")
}

type joinResult struct {
	a   *Account
	err error
}

func startJoin(ctx context.Context, t *testing.T, code string, tr transport.Transport) chan joinResult {
	done := make(chan joinResult, 1)
	dir := t.TempDir()
	go func() {
		a, _, err := JoinDevice(ctx, dir, code, tr, Options{})
		if a != nil {
			t.Cleanup(func() { a.Close() })
		}
		done <- joinResult{a, err}
	}()
	return done
}

// Issue 12, item 4: a code leaked before use lets the attacker race the
// owner's join, and no more. The linking device shows the first joiner's
// fingerprint; the user, seeing that it is not the one on the new device,
// refuses: nothing is published, the attacker gets a refusal and no key, and
// the owner's join with the same code is refused (a code answers one
// request). Had the user accepted, the owner's join would still be refused,
// and 'device list' would show the stranger to remove.
func TestLinkCodeLeakedBeforeUse(t *testing.T) {
	ctx, tr, alice := linkFixture(t)
	lk, err := alice.LinkDevice(ctx, "laptop", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	v := listVersion(t, alice)
	attacker := startJoin(ctx, t, lk.Code, tr)
	waitRequest(t, tr, lk.Code)
	var shown string
	_, err = alice.WaitLink(ctx, lk, func(d *Device) error {
		shown = d.Fingerprint()
		return errors.New("not the fingerprint the laptop shows")
	})
	if err == nil || shown == "" {
		t.Fatalf("declined join: %v (fingerprint shown %q)", err, shown)
	}
	if r := <-attacker; !errors.Is(r.err, ErrBadLinkCode) || r.a != nil {
		t.Fatalf("the attacker's join: %v", r.err)
	}
	if err := alice.syncDirectory(ctx); err != nil || listVersion(t, alice) != v {
		t.Fatalf("a declined join changed the device list: %v", err)
	}
	owner, _, err := JoinDevice(ctx, t.TempDir(), lk.Code, tr, Options{})
	if !errors.Is(err, ErrBadLinkCode) || owner != nil {
		t.Fatalf("a second join with the same code: %v", err)
	}
	if _, err := alice.WaitLink(ctx, lk, nil); err == nil {
		t.Fatal("a link waited on twice")
	}

	// A forged request, signed by a key other than the identity it names,
	// is refused before anything is shown or published.
	lk, err = alice.LinkDevice(ctx, "laptop", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	secret := codeSecret(t, lk.Code)
	victim, _ := ratchet.NewIdentity(rand.Reader)
	forger, _ := ratchet.NewIdentity(rand.Reader)
	eph, _ := ratchet.NewIdentity(rand.Reader)
	ephPub := eph.Public().DH
	victimPub := victim.Public().Bytes()
	body, _ := json.Marshal(&linkRequest{V: linkVersion, Identity: victimPub, Seal: sealPub(victim), Ephemeral: ephPub[:],
		Sig: forger.Sign(linkRequestSigned(secret, victimPub, ephPub[:], sealPub(victim)))})
	forged, err := sealContent(secretKey("link request", secret), linkRequestAD, body, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Put(ctx, linkRequestSlot(secret), forged); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.WaitLink(ctx, lk, func(*Device) error { t.Fatal("a forged request was shown"); return nil }); !errors.Is(err, ErrBadLinkCode) {
		t.Fatalf("forged request: %v", err)
	}
	if listVersion(t, alice) != v {
		t.Fatal("a forged request changed the device list")
	}

	// A request whose ephemeral key is a low-order point (nothing can be
	// sealed to it) leaves no device behind.
	lk, err = alice.LinkDevice(ctx, "laptop", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	secret = codeSecret(t, lk.Code)
	chunk, err := sealLinkRequest(secret, victim, make([]byte, 32), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Put(ctx, linkRequestSlot(secret), chunk); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.WaitLink(ctx, lk, nil); !errors.Is(err, ErrBadLinkCode) {
		t.Fatalf("low-order ephemeral key: %v", err)
	}
	if err := alice.syncDirectory(ctx); err != nil || listVersion(t, alice) != v {
		t.Fatalf("a request with a low-order ephemeral key changed the device list: %v", err)
	}
}

// Issue 12, item 4: an expired code is refused by the linking device, by
// its own clock, whatever the joiner does: a request that arrives (or is
// first seen) after the expiry gets a refusal and no key, and nothing is
// published. With no request at all, waiting ends at the expiry.
func TestLinkExpiredRefusedByLinker(t *testing.T) {
	ctx, tr, alice := linkFixture(t)
	v := listVersion(t, alice)
	lk, err := alice.LinkDevice(ctx, "late", 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	joiner := startJoin(ctx, t, lk.Code, tr)
	waitRequest(t, tr, lk.Code)
	time.Sleep(time.Until(lk.Expires) + 10*time.Millisecond)
	if _, err := alice.WaitLink(ctx, lk, func(*Device) error { t.Fatal("an expired join was shown"); return nil }); !errors.Is(err, ErrLinkExpired) {
		t.Fatalf("expired code: %v", err)
	}
	if r := <-joiner; !errors.Is(r.err, ErrBadLinkCode) || r.a != nil {
		t.Fatalf("join with an expired code: %v", r.err)
	}
	if err := alice.syncDirectory(ctx); err != nil || listVersion(t, alice) != v {
		t.Fatalf("an expired code changed the device list: %v", err)
	}

	lk, err = alice.LinkDevice(ctx, "never", 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	// The wait ends because the code expired, not because the caller gave
	// up: a context that would end it much later must not be what ends it.
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := alice.WaitLink(wctx, lk, nil); !errors.Is(err, ErrLinkExpired) {
		t.Fatalf("waiting on a code nobody uses: %v", err)
	}
}
