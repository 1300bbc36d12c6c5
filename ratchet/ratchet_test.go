package ratchet

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/deaddrop/deaddrop/feed"
	"golang.org/x/crypto/chacha20"
)

var now = time.Unix(1_790_000_000, 0)

// detRand is a reproducible randomness source: the ChaCha20 keystream of a
// label, for vectors.
type detRand struct{ c *chacha20.Cipher }

func newDetRand(label string) *detRand {
	var key [32]byte
	copy(key[:], label)
	c, _ := chacha20.NewUnauthenticatedCipher(key[:], make([]byte, 12))
	return &detRand{c}
}

func (d *detRand) Read(p []byte) (int, error) {
	clear(p)
	d.c.XORKeyStream(p, p)
	return len(p), nil
}

// party is one side with a fake store for its peer's chunks.
type party struct {
	id   *Identity
	sess *Session
}

// setup returns an inviter and a joiner with sessions, and the joiner's first
// chunk already opened by the inviter.
func setup(t testing.TB, rnd func() *detRand) (inviter, joiner *party, first Sealed) {
	t.Helper()
	r := newDetRand("setup")
	if rnd != nil {
		r = rnd()
	}
	a, _ := NewIdentity(r)
	b, _ := NewIdentity(r)
	inv, pending, err := NewInvite(a, "alice", time.Hour, now, r)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := ParseInvite(inv.String())
	if err != nil {
		t.Fatal(err)
	}
	js, err := Accept(b, parsed, "bob", now, r)
	if err != nil {
		t.Fatal(err)
	}
	js.rand = r
	first, err = js.Encrypt([]byte("hello"), r)
	if err != nil {
		t.Fatal(err)
	}
	if first.Slot != inv.Rendezvous() {
		t.Fatal("first message not at the rendezvous slot")
	}
	is, peer, name, pt, err := AcceptInit(a, pending, first.Chunk, now)
	if err != nil {
		t.Fatal(err)
	}
	if peer != b.Public() || name != "bob" || string(pt) != "hello" {
		t.Fatalf("AcceptInit: %v %q %q", peer == b.Public(), name, pt)
	}
	is.rand = r
	return &party{a, is}, &party{b, js}, first
}

// store is a map of slots to chunks, standing in for the network.
type store map[feed.Slot][]byte

// readAll polls the reader's slots until nothing new opens, the way sync
// does, and returns the plaintexts in the order they opened.
func readAll(t testing.TB, reader *Session, s store, window int) []string {
	t.Helper()
	var out []string
	seen := map[feed.Slot]bool{}
	for {
		progress := false
		for _, slot := range reader.PollSlots(window) {
			c, ok := s[slot]
			if !ok || seen[slot] {
				continue
			}
			seen[slot] = true
			pt, err := reader.Decrypt(slot, c)
			if errors.Is(err, ErrDuplicate) {
				continue
			}
			if err != nil {
				t.Fatalf("Decrypt: %v", err)
			}
			out = append(out, string(pt))
			progress = true
		}
		if !progress {
			return out
		}
	}
}

func write(t testing.TB, w *Session, s store, msgs ...string) {
	t.Helper()
	for _, m := range msgs {
		sealed, err := w.Encrypt([]byte(m), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if len(sealed.Chunk) != feed.ChunkSize {
			t.Fatalf("chunk of %d bytes", len(sealed.Chunk))
		}
		if _, dup := s[sealed.Slot]; dup {
			t.Fatal("two messages share a slot")
		}
		s[sealed.Slot] = sealed.Chunk
	}
}

func TestConversationFindsEveryMessageByPolling(t *testing.T) {
	alice, bob, _ := setup(t, nil)
	s := store{}
	// Bob writes more before alice answers: the rest of his first chain.
	write(t, bob.sess, s, "b1", "b2")
	if got := readAll(t, alice.sess, s, 16); strings.Join(got, ",") != "b1,b2" {
		t.Fatalf("alice read %v", got)
	}
	for turn := 0; turn < 10; turn++ {
		a := []string{fmt.Sprintf("a%d.1", turn), fmt.Sprintf("a%d.2", turn), fmt.Sprintf("a%d.3", turn)}
		write(t, alice.sess, s, a...)
		if got := readAll(t, bob.sess, s, 2); strings.Join(got, ",") != strings.Join(a, ",") {
			t.Fatalf("turn %d: bob read %v", turn, got)
		}
		write(t, bob.sess, s, fmt.Sprintf("b%d", turn))
		if got := readAll(t, alice.sess, s, 2); len(got) != 1 {
			t.Fatalf("turn %d: alice read %v", turn, got)
		}
	}
}

// Both write before reading: each side's reader polls the peer's current and
// next chain and finds messages across the ratchet step.
func TestCrossingMessages(t *testing.T) {
	alice, bob, _ := setup(t, nil)
	s := store{}
	write(t, alice.sess, s, "a1")
	write(t, bob.sess, s, "b1")
	if got := readAll(t, bob.sess, s, 4); strings.Join(got, ",") != "a1" {
		t.Fatalf("bob: %v", got)
	}
	write(t, bob.sess, s, "b2", "b3") // new chain after reading a1
	if got := readAll(t, alice.sess, s, 4); strings.Join(got, ",") != "b1,b2,b3" {
		t.Fatalf("alice: %v", got)
	}
}

func TestOutOfOrderAndSkipped(t *testing.T) {
	alice, bob, _ := setup(t, nil)
	var sealed []Sealed
	for i := 0; i < 6; i++ {
		x, err := bob.sess.Encrypt([]byte(fmt.Sprint(i)), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		sealed = append(sealed, x)
	}
	// Read 5 first: 0..4 become skipped keys whose slots are polled.
	if pt, err := alice.sess.Decrypt(sealed[5].Slot, sealed[5].Chunk); err != nil || string(pt) != "5" {
		t.Fatalf("decrypt 5: %q %v", pt, err)
	}
	polled := map[feed.Slot]bool{}
	for _, s := range alice.sess.PollSlots(1) {
		polled[s] = true
	}
	for _, i := range []int{3, 0, 4, 2, 1} {
		if !polled[sealed[i].Slot] {
			t.Fatalf("slot of skipped message %d is not polled", i)
		}
		if pt, err := alice.sess.Decrypt(sealed[i].Slot, sealed[i].Chunk); err != nil || string(pt) != fmt.Sprint(i) {
			t.Fatalf("decrypt %d: %q %v", i, pt, err)
		}
	}
	if len(alice.sess.skipped) != 0 {
		t.Fatalf("%d skipped keys left", len(alice.sess.skipped))
	}
	// Reading one again: a duplicate, state unchanged.
	before, _ := alice.sess.MarshalBinary()
	if _, err := alice.sess.Decrypt(sealed[5].Slot, sealed[5].Chunk); !errors.Is(err, ErrDecrypt) && !errors.Is(err, ErrDuplicate) {
		t.Fatalf("re-read: %v", err)
	}
	after, _ := alice.sess.MarshalBinary()
	if !bytes.Equal(before, after) {
		t.Fatal("failed decrypt changed the session")
	}
}

func TestDuplicateInCurrentChain(t *testing.T) {
	alice, bob, _ := setup(t, nil)
	x, _ := bob.sess.Encrypt([]byte("once"), rand.Reader)
	if _, err := alice.sess.Decrypt(x.Slot, x.Chunk); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.sess.Decrypt(x.Slot, x.Chunk); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("second decrypt: %v, want ErrDuplicate", err)
	}
}

func TestTamperedChunkLeavesSessionUnchanged(t *testing.T) {
	alice, bob, _ := setup(t, nil)
	x, _ := bob.sess.Encrypt([]byte("payload"), rand.Reader)
	before, _ := alice.sess.MarshalBinary()
	for _, pos := range []int{0, 23, 24, 100, 2000, feed.ChunkSize - 1} {
		bad := bytes.Clone(x.Chunk)
		bad[pos] ^= 0x40
		if _, err := alice.sess.Decrypt(x.Slot, bad); !errors.Is(err, ErrDecrypt) {
			t.Errorf("bit flipped at %d: %v", pos, err)
		}
	}
	if _, err := alice.sess.Decrypt(x.Slot, x.Chunk[:100]); err == nil {
		t.Error("truncated chunk accepted")
	}
	// The right chunk at another slot does not open.
	var other feed.Slot
	other[0] = 1
	if _, err := alice.sess.Decrypt(other, x.Chunk); err == nil {
		t.Error("chunk opened at a foreign slot")
	}
	after, _ := alice.sess.MarshalBinary()
	if !bytes.Equal(before, after) {
		t.Fatal("failed decrypts changed the session")
	}
	if pt, err := alice.sess.Decrypt(x.Slot, x.Chunk); err != nil || string(pt) != "payload" {
		t.Fatalf("genuine chunk after tampering: %v", err)
	}
}

func TestTooManySkipped(t *testing.T) {
	alice, bob, _ := setup(t, nil)
	var last Sealed
	for i := 0; i <= MaxSkip+1; i++ {
		last, _ = bob.sess.Encrypt([]byte("x"), rand.Reader)
	}
	if _, err := alice.sess.Decrypt(last.Slot, last.Chunk); err == nil {
		t.Fatal("a message skipping more than MaxSkip keys was accepted")
	}
}

func TestSkippedCacheBounded(t *testing.T) {
	alice, bob, _ := setup(t, nil)
	s := store{}
	// Three chains of 600 messages each, only the first and the last of each
	// read (a new chain is entered at its first message, which carries the PQ
	// field).
	for chain := 0; chain < 3; chain++ {
		var first, last Sealed
		for i := 0; i < 600; i++ {
			last, _ = bob.sess.Encrypt([]byte("x"), rand.Reader)
			if i == 0 {
				first = last
			}
		}
		if chain > 0 {
			if _, err := alice.sess.Decrypt(first.Slot, first.Chunk); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := alice.sess.Decrypt(last.Slot, last.Chunk); err != nil {
			t.Fatal(err)
		}
		write(t, alice.sess, s, "turn")
		readAll(t, bob.sess, s, 2)
	}
	if n := len(alice.sess.skipped); n > MaxSkippedKeys {
		t.Fatalf("%d skipped keys cached", n)
	}
}

func TestEncryptLimits(t *testing.T) {
	_, bob, _ := setup(t, nil)
	if _, err := bob.sess.Encrypt(make([]byte, MaxPlaintext), rand.Reader); err != nil {
		t.Fatalf("MaxPlaintext bytes: %v", err)
	}
	if _, err := bob.sess.Encrypt(make([]byte, MaxPlaintext+1), rand.Reader); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("MaxPlaintext+1 bytes: %v", err)
	}
	// The first message of a joiner, with the longest name, still fits.
	r := newDetRand("limits")
	a, _ := NewIdentity(r)
	b, _ := NewIdentity(r)
	inv, _, _ := NewInvite(a, strings.Repeat("n", MaxNameLen), time.Hour, now, r)
	s, err := Accept(b, inv, strings.Repeat("m", MaxNameLen), now, r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Encrypt(make([]byte, MaxFirstPlaintext+1), r); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("first message of MaxFirstPlaintext+1 bytes: %v", err)
	}
	if _, err := s.Encrypt(make([]byte, MaxFirstPlaintext), r); err != nil {
		t.Fatalf("first message of MaxFirstPlaintext bytes: %v", err)
	}
}

func TestInviteErrors(t *testing.T) {
	r := newDetRand("invites")
	a, _ := NewIdentity(r)
	b, _ := NewIdentity(r)
	inv, _, _ := NewInvite(a, "alice", time.Hour, now, r)
	text := inv.String()
	raw := inv.MarshalBinary()
	flipped := bytes.Clone(raw)
	flipped[40] ^= 1
	badVersion := bytes.Clone(raw)
	badVersion[0] = 7
	cases := map[string]string{
		"":                      "not a deaddrop invite",
		"hello":                 "not a deaddrop invite",
		text[:39]:               "truncated",
		text + "AAAA":           "name length",
		text[:len(text)-1]:      "",
		"dd1!!!!":               "damaged",
		"dd1" + b64(flipped):    "bad signature",
		"dd1" + b64(badVersion): "unsupported version 7",
	}
	for in, want := range cases {
		_, err := ParseInvite(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseInvite(%.20q…): %v, want %q", in, err, want)
		}
	}
	if _, err := Accept(b, inv, "bob", now.Add(2*time.Hour), r); !errors.Is(err, ErrInviteExpired) {
		t.Errorf("expired invite: %v", err)
	}
}

func TestAcceptInitRejectsForeignChunks(t *testing.T) {
	r := newDetRand("foreign")
	a, _ := NewIdentity(r)
	b, _ := NewIdentity(r)
	inv1, p1, _ := NewInvite(a, "alice", time.Hour, now, r)
	inv2, _, _ := NewInvite(a, "alice", time.Hour, now, r)
	_ = inv1
	s, _ := Accept(b, inv2, "bob", now, r)
	x, _ := s.Encrypt([]byte("hi"), r)
	if _, _, _, _, err := AcceptInit(a, p1, x.Chunk, now); err == nil {
		t.Fatal("a first message for another invite was accepted")
	}
	junk := make([]byte, feed.ChunkSize)
	if _, _, _, _, err := AcceptInit(a, p1, junk, now); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("junk at the rendezvous: %v", err)
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	alice, bob, _ := setup(t, nil)
	s := store{}
	write(t, bob.sess, s, "1", "2", "3")
	x, _ := bob.sess.Encrypt([]byte("4"), rand.Reader)
	if _, err := alice.sess.Decrypt(x.Slot, x.Chunk); err != nil { // leaves 1..3 skipped
		t.Fatal(err)
	}
	for _, p := range []*party{alice, bob} {
		b, _ := p.sess.MarshalBinary()
		s2, err := UnmarshalSession(b)
		if err != nil {
			t.Fatal(err)
		}
		b2, _ := s2.MarshalBinary()
		if !bytes.Equal(b, b2) {
			t.Fatal("marshal round trip differs")
		}
		p.sess = s2
	}
	if got := readAll(t, alice.sess, s, 4); len(got) != 3 {
		t.Fatalf("after round trip alice read %v", got)
	}
	idb, _ := alice.id.MarshalBinary()
	id2, err := UnmarshalIdentity(idb)
	if err != nil || id2.Public() != alice.id.Public() {
		t.Fatalf("identity round trip: %v", err)
	}
	// A joiner's session before its first message keeps the preamble.
	r := newDetRand("pre")
	a, _ := NewIdentity(r)
	b, _ := NewIdentity(r)
	inv, pending, _ := NewInvite(a, "alice", time.Hour, now, r)
	js, _ := Accept(b, inv, "bob", now, r)
	jb, _ := js.MarshalBinary()
	js2, err := UnmarshalSession(jb)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := js2.Encrypt([]byte("hi"), r)
	if _, _, _, _, err := AcceptInit(a, pending, first.Chunk, now); err != nil {
		t.Fatalf("first message after a round trip: %v", err)
	}
	pb, _ := pending.MarshalBinary()
	if p2, err := UnmarshalPendingInvite(pb); err != nil || p2.ID() != pending.ID() {
		t.Fatalf("pending invite round trip: %v", err)
	}
}

func TestDecodersRejectDamage(t *testing.T) {
	alice, _, _ := setup(t, nil)
	b, _ := alice.sess.MarshalBinary()
	bad := map[string][]byte{
		"empty":     nil,
		"truncated": b[:len(b)-1],
		"extra":     append(bytes.Clone(b), 0),
		"version":   append([]byte{9}, b[1:]...),
		"flags":     append([]byte{1, 0xff}, b[2:]...),
	}
	for name, in := range bad {
		if _, err := UnmarshalSession(in); err == nil || !strings.HasPrefix(err.Error(), "session:") {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := UnmarshalIdentity([]byte{1, 2}); err == nil {
		t.Error("short identity accepted")
	}
	if _, err := UnmarshalPendingInvite(make([]byte, pendingLen)); err == nil {
		t.Error("pending invite of version 0 accepted")
	}
}

func BenchmarkEncrypt(b *testing.B) {
	_, bob, _ := setup(b, nil)
	msg := make([]byte, 200)
	for b.Loop() {
		if _, err := bob.sess.Encrypt(msg, rand.Reader); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecrypt(b *testing.B) {
	alice, bob, _ := setup(b, nil)
	msg := make([]byte, 200)
	sealed := make([]Sealed, b.N)
	for i := range sealed {
		sealed[i], _ = bob.sess.Encrypt(msg, rand.Reader)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := alice.sess.Decrypt(sealed[i].Slot, sealed[i].Chunk); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRatchetStep is a message that starts a new chain (two X25519
// key agreements and a key generation).
func BenchmarkRatchetStep(b *testing.B) {
	alice, bob, _ := setup(b, nil)
	for b.Loop() {
		x, _ := bob.sess.Encrypt([]byte("ping"), rand.Reader)
		if _, err := alice.sess.Decrypt(x.Slot, x.Chunk); err != nil {
			b.Fatal(err)
		}
		y, _ := alice.sess.Encrypt([]byte("pong"), rand.Reader)
		if _, err := bob.sess.Decrypt(y.Slot, y.Chunk); err != nil {
			b.Fatal(err)
		}
	}
}
