package sphinx

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"testing"

	"golang.org/x/crypto/chacha20"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors.json")

// Our vectors (testdata/vectors.json): LIONESS on its own, and whole packets
// (so a second implementation can check its payload layer, which
// Katzenpost's AEZ-based vectors cannot).
type ownVectors struct {
	Lioness []struct{ Key, IV, Plaintext, Ciphertext string }
	Packets []struct {
		NodeKeys []string // X25519 private keys of the path, in order
		NodeIDs  []string
		Message  string
		Packet   string
	}
}

type seeded struct{ c *chacha20.Cipher }

func newSeeded(label string) *seeded {
	var k [32]byte
	copy(k[:], label)
	c, _ := chacha20.NewUnauthenticatedCipher(k[:], make([]byte, 12))
	return &seeded{c}
}

func (s *seeded) Read(p []byte) (int, error) {
	clear(p)
	s.c.XORKeyStream(p, p)
	return len(p), nil
}

func buildOwnVectors(t *testing.T) *ownVectors {
	v := new(ownVectors)
	r := newSeeded("lioness vectors")
	for _, n := range []int{33, 100, 4736} {
		var key [sprpKeySize]byte
		var iv [sprpIVSize]byte
		r.Read(key[:])
		r.Read(iv[:])
		pt := make([]byte, n)
		r.Read(pt)
		ct := bytes.Clone(pt)
		encryptPayload(key, iv, ct)
		v.Lioness = append(v.Lioness, struct{ Key, IV, Plaintext, Ciphertext string }{
			hex.EncodeToString(key[:]), hex.EncodeToString(iv[:]), hex.EncodeToString(pt), hex.EncodeToString(ct)})
	}
	for _, hops := range []int{1, 3, 5} {
		r := newSeeded("packet vectors")
		var path []Hop
		var keys, ids []string
		for i := 0; i < hops; i++ {
			var priv [32]byte
			r.Read(priv[:])
			h := Hop{PublicKey: publicOfPriv(priv)}
			r.Read(h.ID[:])
			h.Commands = []Command{NodeDelay{uint32(10 * (i + 1))}}
			path = append(path, h)
			keys, ids = append(keys, hex.EncodeToString(priv[:])), append(ids, hex.EncodeToString(h.ID[:]))
		}
		path[hops-1].Commands = []Command{Recipient{ID: path[hops-1].ID}}
		msg := []byte("a deaddrop request through the mix")
		pkt, err := NewPacket(path, msg, r)
		if err != nil {
			t.Fatal(err)
		}
		v.Packets = append(v.Packets, struct {
			NodeKeys []string
			NodeIDs  []string
			Message  string
			Packet   string
		}{keys, ids, string(msg), hex.EncodeToString(pkt)})
	}
	return v
}

func publicOfPriv(priv [32]byte) [32]byte {
	s, _ := x25519(priv[:], basepoint[:])
	return [32]byte(s)
}

var basepoint = [32]byte{9}

func TestOwnVectors(t *testing.T) {
	got := buildOwnVectors(t)
	if *update {
		data, _ := json.MarshalIndent(got, "", "  ")
		os.WriteFile("testdata/vectors.json", append(data, '\n'), 0o644)
	}
	data, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	want := new(ownVectors)
	if err := json.Unmarshal(data, want); err != nil {
		t.Fatal(err)
	}
	gotJSON, _ := json.Marshal(got)
	wantJSON, _ := json.Marshal(want)
	if !bytes.Equal(gotJSON, wantJSON) {
		t.Fatal("the code no longer produces testdata/vectors.json")
	}
	// Unwrap the recorded packets from the file alone.
	for _, pv := range want.Packets {
		pkt, _ := hex.DecodeString(pv.Packet)
		for i, k := range pv.NodeKeys {
			kb, _ := hex.DecodeString(k)
			u, err := Unwrap([32]byte(kb), pkt)
			if err != nil {
				t.Fatalf("hop %d: %v", i, err)
			}
			if i == len(pv.NodeKeys)-1 {
				msg, err := OpenPayload(u.Payload)
				if err != nil || string(msg) != pv.Message {
					t.Fatalf("message %q, %v", msg, err)
				}
			}
			pkt = u.Next
		}
	}
}
