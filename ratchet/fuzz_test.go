package ratchet

import (
	"bytes"
	"crypto/rand"
	"testing"
	"time"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/internal/fuzzseed"
)

// Every decoder of outside input is fuzzed: invites (typed or pasted by
// people), chunks (written by anyone who can reach the store), and state
// (read back from disk). None may panic; none may change state on error.

func FuzzParseInvite(f *testing.F) {
	r := newDetRand("fuzz")
	a, _ := NewIdentity(r)
	inv, _, _ := NewInvite(a, "alice", time.Hour, now, r)
	fuzzseed.Add(f, "FuzzParseInvite", *update, []byte(inv.String()), []byte("dd1"), []byte("dd1AAAA"), inv.MarshalBinary())
	f.Fuzz(func(t *testing.T, b []byte) {
		inv, err := ParseInvite(string(b))
		if err != nil {
			return
		}
		again, err := ParseInvite(inv.String())
		if err != nil || again.ID() != inv.ID() {
			t.Fatalf("a parsed invite does not round-trip: %v", err)
		}
	})
}

func FuzzUnmarshalSession(f *testing.F) {
	alice, bob, _ := setup(f, nil)
	ab, _ := alice.sess.MarshalBinary()
	bb, _ := bob.sess.MarshalBinary()
	fuzzseed.Add(f, "FuzzUnmarshalSession", *update, ab, bb, ab[:100])
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := UnmarshalSession(b)
		if err != nil {
			return
		}
		// A decoded session can be used without panicking.
		s.PollSlots(2)
		s.Decrypt(feed.Slot{1}, make([]byte, feed.ChunkSize))
		s.Encrypt([]byte("x"), rand.Reader)
	})
}

func FuzzDecrypt(f *testing.F) {
	alice, bob, _ := setup(f, nil)
	x, _ := bob.sess.Encrypt([]byte("seed"), rand.Reader)
	fuzzseed.Add(f, "FuzzDecrypt", *update, x.Chunk, make([]byte, feed.ChunkSize), x.Chunk[:64])
	before, _ := alice.sess.MarshalBinary()
	f.Fuzz(func(t *testing.T, chunk []byte) {
		s, _ := UnmarshalSession(before)
		if _, err := s.Decrypt(x.Slot, chunk); err != nil {
			after, _ := s.MarshalBinary()
			if !bytes.Equal(before, after) {
				t.Fatal("a failed decrypt changed the session")
			}
		}
	})
}

func FuzzAcceptInit(f *testing.F) {
	r := newDetRand("fuzz-init")
	a, _ := NewIdentity(r)
	b, _ := NewIdentity(r)
	inv, pending, _ := NewInvite(a, "alice", time.Hour, now, r)
	s, _ := Accept(b, inv, "bob", now, r)
	x, _ := s.Encrypt([]byte("hello"), r)
	fuzzseed.Add(f, "FuzzAcceptInit", *update, x.Chunk, make([]byte, feed.ChunkSize))
	f.Fuzz(func(t *testing.T, chunk []byte) {
		AcceptInit(a, pending, chunk, now)
	})
}

func FuzzUnmarshalKeys(f *testing.F) {
	r := newDetRand("fuzz-keys")
	a, _ := NewIdentity(r)
	_, pending, _ := NewInvite(a, "alice", time.Hour, now, r)
	ib, _ := a.MarshalBinary()
	pb, _ := pending.MarshalBinary()
	fuzzseed.Add(f, "FuzzUnmarshalKeys", *update, ib, pb)
	f.Fuzz(func(t *testing.T, b []byte) {
		if id, err := UnmarshalIdentity(b); err == nil {
			if again, _ := id.MarshalBinary(); !bytes.Equal(again, b) {
				t.Fatal("identity does not round-trip")
			}
		}
		if p, err := UnmarshalPendingInvite(b); err == nil {
			if again, _ := p.MarshalBinary(); !bytes.Equal(again, b) {
				t.Fatal("pending invite does not round-trip")
			}
		}
	})
}
