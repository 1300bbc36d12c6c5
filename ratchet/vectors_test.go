package ratchet

import (
	"crypto/mlkem"
	"crypto/mlkem/mlkemtest"
	"encoding/hex"
	"encoding/json"
	"flag"
	"io"
	"os"
	"reflect"
	"testing"

	"github.com/deaddrop/deaddrop/feed"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors.json from the code")

const vectorsFile = "testdata/vectors.json"

// vectors is the layout of testdata/vectors.json, documented in
// docs/protocol.md §7. All byte strings are hex.
type vectors struct {
	X3DH struct {
		Secret string   `json:"secret"`
		DH     []string `json:"dh"`
		SK     string   `json:"sk"`
		HKA    string   `json:"shared_hka"`
		NHKB   string   `json:"shared_nhkb"`
	} `json:"x3dh"`
	KDFRK struct {
		RK, DHOut, NewRK, CK, NHK string
	} `json:"kdf_rk"`
	KDFCK struct {
		CK, NextCK, MK, MessageKey, MessageNonce string
	} `json:"kdf_ck"`
	PQMix struct {
		RK, CK, SS, NewRK, NewCK string
	} `json:"pq_mix"`
	Topic struct {
		HK    string   `json:"hk"`
		Slots []string `json:"slots"`
	} `json:"topic"`
	Rendezvous struct{ Secret, Slot string } `json:"rendezvous"`
	ChunkKey   struct{ Slot, Key string }    `json:"chunk_key"`
	Transcript transcript                    `json:"transcript"`
}

// transcript: the inviter's secrets and the joiner's first chunks. Opening
// them needs the whole key schedule: invite, X3DH, DR-HE, topic slots, chunks.
type transcript struct {
	InviterIdentity string          `json:"inviter_identity"`
	InviterPending  string          `json:"inviter_pending"`
	Invite          string          `json:"invite"`
	JoinerIdentity  string          `json:"joiner_identity"`
	Messages        []transcriptMsg `json:"messages"`
}

type transcriptMsg struct {
	From      string `json:"from"`
	Slot      string `json:"slot"`
	Chunk     string `json:"chunk"`
	Plaintext string `json:"plaintext"`
}

func h(b []byte) string { return hex.EncodeToString(b) }

func buildVectors(t *testing.T) *vectors {
	v := &vectors{}
	r := newDetRand("vectors")
	var secret [32]byte
	r.Read(secret[:])
	dh := make([][32]byte, 5) // DH1..DH4 and the ML-KEM shared secret
	for i := range dh {
		r.Read(dh[i][:])
		v.X3DH.DH = append(v.X3DH.DH, h(dh[i][:]))
	}
	sk, hka, nhkb := x3dh(secret, dh...)
	v.X3DH.Secret, v.X3DH.SK, v.X3DH.HKA, v.X3DH.NHKB = h(secret[:]), h(sk[:]), h(hka[:]), h(nhkb[:])

	rk, ck, nhk := kdfRK(sk, dh[0])
	v.KDFRK.RK, v.KDFRK.DHOut, v.KDFRK.NewRK, v.KDFRK.CK, v.KDFRK.NHK = h(sk[:]), h(dh[0][:]), h(rk[:]), h(ck[:]), h(nhk[:])
	next, mk := kdfCK(ck)
	key, nonce := messageKeys(mk)
	v.KDFCK.CK, v.KDFCK.NextCK, v.KDFCK.MK, v.KDFCK.MessageKey, v.KDFCK.MessageNonce = h(ck[:]), h(next[:]), h(mk[:]), h(key), h(nonce)

	prk, pck := pqMix(sk, ck, dh[4][:])
	v.PQMix.RK, v.PQMix.CK, v.PQMix.SS, v.PQMix.NewRK, v.PQMix.NewCK = h(sk[:]), h(ck[:]), h(dh[4][:]), h(prk[:]), h(pck[:])

	v.Topic.HK = h(hka[:])
	for n := uint32(0); n < 4; n++ {
		s := TopicSlot(hka, n)
		v.Topic.Slots = append(v.Topic.Slots, h(s[:]))
	}
	rz := rendezvous(secret)
	v.Rendezvous.Secret, v.Rendezvous.Slot = h(secret[:]), h(rz[:])
	ck32 := feed.DeriveKey(rz, "chunk")
	v.ChunkKey.Slot, v.ChunkKey.Key = h(rz[:]), h(ck32[:])

	v.Transcript = buildTranscript(t)
	return v
}

func buildTranscript(t *testing.T) transcript {
	r := newDetRand("transcript")
	restore := deterministicKEM()
	defer restore()
	a, _ := NewIdentity(r)
	b, _ := NewIdentity(r)
	inv, pending, err := NewInvite(a, "alice", 24*3600e9, now, r)
	if err != nil {
		t.Fatal(err)
	}
	js, err := Accept(b, inv, "bob", now, r)
	if err != nil {
		t.Fatal(err)
	}
	js.rand = r
	ib, _ := a.MarshalBinary()
	jb, _ := b.MarshalBinary()
	pb, _ := pending.MarshalBinary()
	tr := transcript{InviterIdentity: h(ib), InviterPending: h(pb), Invite: inv.String(), JoinerIdentity: h(jb)}
	for _, m := range []string{"hello", "second", "third"} {
		x, err := js.Encrypt([]byte(m), r)
		if err != nil {
			t.Fatal(err)
		}
		tr.Messages = append(tr.Messages, transcriptMsg{"joiner", h(x.Slot[:]), h(x.Chunk), m})
	}
	return tr
}

func TestVectors(t *testing.T) {
	got := buildVectors(t)
	if *update {
		data, _ := json.MarshalIndent(got, "", "  ")
		if err := os.WriteFile(vectorsFile, append(data, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", vectorsFile)
	}
	data, err := os.ReadFile(vectorsFile)
	if err != nil {
		t.Fatalf("%v (run go test -run TestVectors -update)", err)
	}
	want := new(vectors)
	if err := json.Unmarshal(data, want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("the code no longer produces %s: a protocol change needs a version bump (or -update if intended)", vectorsFile)
	}
	verifyTranscript(t, &want.Transcript)
}

// verifyTranscript opens the recorded chunks from the file's data alone, as a
// second implementation would.
func verifyTranscript(t *testing.T, tr *transcript) {
	dec := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a, err := UnmarshalIdentity(dec(tr.InviterIdentity))
	if err != nil {
		t.Fatal(err)
	}
	p, err := UnmarshalPendingInvite(dec(tr.InviterPending))
	if err != nil {
		t.Fatal(err)
	}
	inv, err := ParseInvite(tr.Invite)
	if err != nil || inv.ID() != p.ID() {
		t.Fatalf("invite: %v", err)
	}
	first := tr.Messages[0]
	if rz := inv.Rendezvous(); h(rz[:]) != first.Slot {
		t.Fatal("first message is not at the rendezvous slot")
	}
	s, _, name, pt, err := AcceptInit(a, p, dec(first.Chunk), now)
	if err != nil || string(pt) != first.Plaintext || name != "bob" {
		t.Fatalf("first message: %q %q %v", pt, name, err)
	}
	for _, m := range tr.Messages[1:] {
		var slot feed.Slot
		copy(slot[:], dec(m.Slot))
		pt, err := s.Decrypt(slot, dec(m.Chunk))
		if err != nil || string(pt) != m.Plaintext {
			t.Fatalf("%q: %q %v", m.Plaintext, pt, err)
		}
	}
}

// deterministicKEM makes ML-KEM encapsulation draw its randomness from the
// session's reader, for reproducible vectors; it returns the undo.
func deterministicKEM() func() {
	orig := encapsulate
	encapsulate = func(ek *mlkem.EncapsulationKey768, rnd io.Reader) ([]byte, []byte, error) {
		m := make([]byte, 32)
		if _, err := io.ReadFull(rnd, m); err != nil {
			return nil, nil, err
		}
		return mlkemtest.Encapsulate768(ek, m)
	}
	return func() { encapsulate = orig }
}
