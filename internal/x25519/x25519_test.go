package x25519

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/hex"
	"testing"
)

// RFC 7748 §5.2: the iterated test, 1 and 1,000 iterations.
func TestRFC7748Iterated(t *testing.T) {
	k, u := make([]byte, 32), make([]byte, 32)
	k[0], u[0] = 9, 9
	for i := 1; i <= 1000; i++ {
		out, err := X25519(k, u)
		if err != nil {
			t.Fatal(err)
		}
		u, k = k, out
		switch i {
		case 1:
			if hex.EncodeToString(k) != "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079" {
				t.Fatalf("after 1 iteration: %x", k)
			}
		case 1000:
			if hex.EncodeToString(k) != "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51" {
				t.Fatalf("after 1000 iterations: %x", k)
			}
		}
	}
}

// Agrees with crypto/ecdh on random inputs.
func TestMatchesStandardLibrary(t *testing.T) {
	for i := 0; i < 200; i++ {
		a, _ := ecdh.X25519().GenerateKey(rand.Reader)
		b, _ := ecdh.X25519().GenerateKey(rand.Reader)
		want, _ := a.ECDH(b.PublicKey())
		got, err := X25519(a.Bytes(), b.PublicKey().Bytes())
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("mismatch: %x vs %x (%v)", got, want, err)
		}
	}
	if _, err := X25519(make([]byte, 32), make([]byte, 32)); err != ErrLowOrder {
		t.Fatalf("zero point: %v", err)
	}
}

func BenchmarkX25519(b *testing.B) {
	k, p := make([]byte, 32), make([]byte, 32)
	rand.Read(k)
	p[0] = 9
	for b.Loop() {
		X25519(k, p)
	}
}
