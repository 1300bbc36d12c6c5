package ratchet

import (
	"bytes"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"
)

// The KEM ratchet alternates: the joiner offers an ML-KEM key at each of its
// chain starts, the inviter answers at each of its own, and both mix the
// secret in the same place, or nothing would decrypt.
func TestPQRatchetAlternates(t *testing.T) {
	alice, bob, _ := setup(t, nil) // alice invited, bob joined
	if !bob.sess.hasPQDK || !alice.sess.hasPQPeerEK {
		t.Fatal("the joiner's first message did not carry an offer")
	}
	s := store{}
	for turn := 0; turn < 4; turn++ {
		write(t, alice.sess, s, "a")
		if alice.sess.hasPQPeerEK {
			t.Fatalf("turn %d: the inviter did not answer the offer", turn)
		}
		readAll(t, bob.sess, s, 4)
		if bob.sess.hasPQDK {
			t.Fatalf("turn %d: the joiner did not consume the answer", turn)
		}
		write(t, bob.sess, s, "b")
		if !bob.sess.hasPQDK {
			t.Fatalf("turn %d: the joiner's new chain did not offer", turn)
		}
		readAll(t, alice.sess, s, 4)
	}
}

// A changed PQ field (an answer to another key, a swapped offer) makes the
// chain-start message fail, and leaves the session unchanged.
func TestPQFieldTampered(t *testing.T) {
	alice, bob, _ := setup(t, nil)
	x, _ := alice.sess.Encrypt([]byte("first of chain"), rand.Reader)
	before, _ := bob.sess.MarshalBinary()
	inner, err := openChunk(x.Slot, x.Chunk)
	if err != nil {
		t.Fatal(err)
	}
	inner[1+encHdrSize+1+100] ^= 1 // inside the ML-KEM ciphertext
	bad, _ := sealChunk(x.Slot, inner, rand.Reader)
	if _, err := bob.sess.Decrypt(x.Slot, bad); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("tampered PQ answer: %v", err)
	}
	after, _ := bob.sess.MarshalBinary()
	if !bytes.Equal(before, after) {
		t.Fatal("a failed decrypt changed the session")
	}
	if _, err := bob.sess.Decrypt(x.Slot, x.Chunk); err != nil {
		t.Fatalf("genuine message: %v", err)
	}
}

// A message of the peer's new chain found before the chain's first message
// waits (ErrNotYet) and opens after it.
func TestNewChainEnteredAtItsFirstMessage(t *testing.T) {
	alice, bob, _ := setup(t, nil)
	m0, _ := alice.sess.Encrypt([]byte("0"), rand.Reader)
	m1, _ := alice.sess.Encrypt([]byte("1"), rand.Reader)
	if _, err := bob.sess.Decrypt(m1.Slot, m1.Chunk); !errors.Is(err, ErrNotYet) {
		t.Fatalf("second message first: %v, want ErrNotYet", err)
	}
	for _, m := range []Sealed{m0, m1} {
		if _, err := bob.sess.Decrypt(m.Slot, m.Chunk); err != nil {
			t.Fatal(err)
		}
	}
}

func TestVersionOneRefused(t *testing.T) {
	r := newDetRand("old")
	a, _ := NewIdentity(r)
	inv, _, _ := NewInvite(a, "alice", time.Hour, now, r)
	raw := inv.MarshalBinary()
	raw[0] = 1
	if _, err := ParseInvite("dd1" + b64(raw)); err == nil || !strings.Contains(err.Error(), "version 1") {
		t.Fatalf("version 1 invite: %v", err)
	}
	alice, _, _ := setup(t, nil)
	sb, _ := alice.sess.MarshalBinary()
	sb[0] = 1
	if _, err := UnmarshalSession(sb); err == nil || !strings.Contains(err.Error(), "version 1") {
		t.Fatalf("version 1 session: %v", err)
	}
}
