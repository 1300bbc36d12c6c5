package ratchet

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
)

func TestSealedBox(t *testing.T) {
	alice, _ := NewIdentity(rand.Reader)
	bob, _ := NewIdentity(rand.Reader)
	box, err := SealTo(alice.Public(), []byte("history key"), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := alice.OpenSealed(box); err != nil || !bytes.Equal(got, []byte("history key")) {
		t.Fatalf("open: %q, %v", got, err)
	}
	if _, err := bob.OpenSealed(box); !errors.Is(err, ErrSealed) {
		t.Fatalf("another identity opened it: %v", err)
	}
	for i := range box {
		bad := bytes.Clone(box)
		bad[i] ^= 1
		if _, err := alice.OpenSealed(bad); !errors.Is(err, ErrSealed) {
			t.Fatalf("byte %d flipped: %v", i, err)
		}
	}
	if _, err := alice.OpenSealed(box[:10]); !errors.Is(err, ErrSealed) {
		t.Fatal("a truncated box opened")
	}
}
