package sphinx

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/deaddrop/deaddrop/internal/fuzzseed"
)

// Katzenpost's published vectors (../shared/vectors/katzenpost-sphinx): ten
// cases of 1–5 hops, 30 hops in all. Each hop's header processing must
// reproduce the next packet's header bytes and the hop's commands. Payload
// bytes are not compared: those vectors use AEZv5 (see payload.go).
const vectorFile = "../../../../shared/vectors/katzenpost-sphinx/sphinx_vectors.json"

type kpVector struct {
	Nodes []struct{ ID, PrivateKey string }
	Path  []struct {
		ID, PublicKey string
		Commands      []string
	}
	Packets []string
}

func TestKatzenpostVectors(t *testing.T) {
	data, err := os.ReadFile(vectorFile)
	if err != nil {
		t.Skipf("Katzenpost vectors not found at %s (outside the project's layout): %v", vectorFile, err)
	}
	var cases []kpVector
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	hops := 0
	for ci, c := range cases {
		for i := range c.Path {
			var priv [32]byte
			copy(priv[:], unhex(t, c.Nodes[i].PrivateKey))
			u, err := Unwrap(priv, unhex(t, c.Packets[i]))
			if err != nil {
				t.Fatalf("case %d hop %d: %v", ci, i, err)
			}
			var got []byte
			for _, cmd := range u.Commands {
				if _, ok := cmd.(NextHop); !ok {
					got = append(got, cmd.bytes()...)
				}
			}
			var want []byte
			for _, cmd := range c.Path[i].Commands {
				want = append(want, unhex(t, cmd)...)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("case %d hop %d: commands %x, want %x", ci, i, got, want)
			}
			if i < len(c.Path)-1 {
				if u.Next == nil {
					t.Fatalf("case %d hop %d: no next hop", ci, i)
				}
				nh := u.Commands[len(u.Commands)-1].(NextHop)
				if hex.EncodeToString(nh.ID[:]) != c.Path[i+1].ID {
					t.Fatalf("case %d hop %d: next hop %x", ci, i, nh.ID)
				}
				if want := unhex(t, c.Packets[i+1])[:HeaderSize]; !bytes.Equal(u.Next[:HeaderSize], want) {
					t.Fatalf("case %d hop %d: next header differs", ci, i)
				}
			}
			hops++
		}
	}
	if hops != 30 {
		t.Fatalf("checked %d hops, want 30", hops)
	}
}

func unhex(t *testing.T, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type node struct {
	priv [32]byte
	hop  Hop
}

func newNodes(t testing.TB, n int) []node {
	nodes := make([]node, n)
	for i := range nodes {
		k, _ := ecdh.X25519().GenerateKey(rand.Reader)
		copy(nodes[i].priv[:], k.Bytes())
		copy(nodes[i].hop.PublicKey[:], k.PublicKey().Bytes())
		rand.Read(nodes[i].hop.ID[:])
		nodes[i].hop.Commands = []Command{NodeDelay{uint32(100 * i)}}
	}
	var rcpt Recipient
	copy(rcpt.ID[:], "gateway queue")
	nodes[n-1].hop.Commands = []Command{rcpt}
	return nodes
}

func path(nodes []node) []Hop {
	var p []Hop
	for _, n := range nodes {
		p = append(p, n.hop)
	}
	return p
}

// A packet built here travels every path length and arrives intact; every
// packet has the same size whatever the path length.
func TestRoundTrip(t *testing.T) {
	msg := []byte("get slot 7f3a… through three mixes and a gateway")
	for hops := 1; hops <= MaxHops; hops++ {
		nodes := newNodes(t, hops)
		pkt, err := NewPacket(path(nodes), msg, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if len(pkt) != HeaderSize+tagSize+len(msg) {
			t.Fatalf("%d hops: packet of %d bytes", hops, len(pkt))
		}
		for i, n := range nodes {
			u, err := Unwrap(n.priv, pkt)
			if err != nil {
				t.Fatalf("%d hops, hop %d: %v", hops, i, err)
			}
			if i == hops-1 {
				got, err := OpenPayload(u.Payload)
				if err != nil || !bytes.Equal(got, msg) {
					t.Fatalf("%d hops: payload %q, %v", hops, got, err)
				}
				if _, ok := u.Commands[0].(Recipient); !ok || u.Next != nil {
					t.Fatalf("%d hops: last hop commands %v", hops, u.Commands)
				}
				break
			}
			if d := u.Commands[0].(NodeDelay); d.Millis != uint32(100*i) {
				t.Fatalf("hop %d delay %d", i, d.Millis)
			}
			pkt = u.Next
		}
	}
}

// Bad packets are errors, never panics: wrong size, wrong key, any flipped
// header bit (MAC), a tagged payload, a low-order α.
func TestBadPackets(t *testing.T) {
	nodes := newNodes(t, 3)
	pkt, _ := NewPacket(path(nodes), []byte("hello"), rand.Reader)
	if _, err := Unwrap(nodes[0].priv, pkt[:100]); !errors.Is(err, ErrMalformed) {
		t.Errorf("short packet: %v", err)
	}
	if _, err := Unwrap(nodes[1].priv, pkt); !errors.Is(err, ErrMAC) {
		t.Errorf("wrong node: %v", err)
	}
	for _, pos := range []int{5, 100, HeaderSize - 1} {
		bad := bytes.Clone(pkt)
		bad[pos] ^= 1
		if _, err := Unwrap(nodes[0].priv, bad); err == nil {
			t.Errorf("flipped header bit %d accepted", pos)
		}
	}
	lowOrder := bytes.Clone(pkt)
	copy(lowOrder[adSize:], make([]byte, 32))
	if _, err := Unwrap(nodes[0].priv, lowOrder); !errors.Is(err, ErrMalformed) {
		t.Errorf("low-order alpha: %v", err)
	}
	// Tagging: flip a payload bit; every hop still forwards (payloads are not
	// authenticated per hop), the last hop detects it.
	tagged := bytes.Clone(pkt)
	tagged[len(tagged)-1] ^= 1
	for i, n := range nodes {
		u, err := Unwrap(n.priv, tagged)
		if err != nil {
			t.Fatal(err)
		}
		if i == len(nodes)-1 {
			if _, err := OpenPayload(u.Payload); !errors.Is(err, ErrTagged) {
				t.Fatalf("tagged payload: %v", err)
			}
		}
		tagged = u.Next
	}
}

func TestLionessIsAPermutation(t *testing.T) {
	var key [sprpKeySize]byte
	var iv [sprpIVSize]byte
	rand.Read(key[:])
	msg := make([]byte, 200)
	rand.Read(msg)
	b := bytes.Clone(msg)
	encryptPayload(key, iv, b)
	if bytes.Equal(b, msg) {
		t.Fatal("encryption changed nothing")
	}
	out, _ := decryptPayload(key, iv, b)
	if !bytes.Equal(out, msg) {
		t.Fatal("decrypt(encrypt(m)) != m")
	}
	// Wide block: one flipped bit anywhere changes the whole decryption.
	b[len(b)-1] ^= 1
	out, _ = decryptPayload(key, iv, b)
	if bytes.Equal(out[:32], msg[:32]) || bytes.Equal(out[100:132], msg[100:132]) {
		t.Fatal("a flipped bit did not spread over the block")
	}
}

func FuzzUnwrap(f *testing.F) {
	nodes := newNodes(f, 2)
	pkt, _ := NewPacket(path(nodes), []byte("seed"), rand.Reader)
	fuzzseed.Add(f, "FuzzUnwrap", *update, pkt, make([]byte, HeaderSize+40))
	f.Fuzz(func(t *testing.T, b []byte) {
		Unwrap(nodes[0].priv, b)
	})
}

func BenchmarkUnwrap(b *testing.B) {
	nodes := newNodes(b, 3)
	pkt, _ := NewPacket(path(nodes), make([]byte, 2048), rand.Reader)
	for b.Loop() {
		if _, err := Unwrap(nodes[0].priv, pkt); err != nil {
			b.Fatal(err)
		}
	}
}

// A reply through a SURB: the replier knows nothing of the path; the client
// reads the reply; a tampered reply is detected.
func TestSURBReply(t *testing.T) {
	for hops := 1; hops <= MaxHops; hops++ {
		nodes := newNodes(t, hops)
		var id SURBReply
		copy(id.ID[:], "surb-0001")
		nodes[hops-1].hop.Commands = append(nodes[hops-1].hop.Commands, id)
		surb, keys, err := NewSURB(path(nodes), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if len(surb) != 572 {
			t.Fatalf("SURB of %d bytes", len(surb))
		}
		reply := []byte("chunk of slot 7f3a…")
		pkt, first, err := NewReply(surb, reply)
		if err != nil || first != nodes[0].hop.ID {
			t.Fatalf("NewReply: %v", err)
		}
		var last *Unwrapped
		for _, n := range nodes {
			if last, err = Unwrap(n.priv, pkt); err != nil {
				t.Fatal(err)
			}
			pkt = last.Next
		}
		if c, ok := last.Commands[len(last.Commands)-1].(SURBReply); !ok || c.ID != id.ID {
			t.Fatalf("last hop commands %v", last.Commands)
		}
		got, err := keys.Open(last.Payload)
		if err != nil || !bytes.Equal(got, reply) {
			t.Fatalf("%d hops: reply %q, %v", hops, got, err)
		}
		bad := bytes.Clone(last.Payload)
		bad[40] ^= 1
		if _, err := keys.Open(bad); !errors.Is(err, ErrTagged) {
			t.Fatalf("tampered reply: %v", err)
		}
	}
}
