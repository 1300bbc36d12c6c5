package sync

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"

	"github.com/deaddrop/deaddrop/ratchet"
	"github.com/deaddrop/deaddrop/sync/merkle"
)

// TestVectors checks the account layer's derivations and formats against
// testdata/vectors.json (docs/protocol.md §10.8); -update rewrites it.
func TestVectors(t *testing.T) {
	vectorFile(t, "testdata/vectors.json", accountVectors(t))
}

// vectorFirstDevice is the first device's ratchet identity in the vectors:
// random in an account (§10.1, §10.9), here Ed25519 seed 12…12 and X25519
// key 13…13.
func vectorFirstDevice(t *testing.T) *ratchet.Identity {
	id, err := ratchet.NewIdentity(bytes.NewReader(append(bytes.Repeat([]byte{0x12}, 32), bytes.Repeat([]byte{0x13}, 32)...)))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func accountVectors(t *testing.T) []byte {
	seed := make([]byte, 32)
	for i := range seed {
		seed[i] = byte(i)
	}
	keys, err := deriveKeys(seed)
	if err != nil {
		t.Fatal(err)
	}
	pub := keys.identity.Public()
	hx := hex.EncodeToString
	dev := keys.firstDev
	ann := bytes.Repeat([]byte{0x11}, 32)
	root := new(merkle.Tree).Root()
	content, _ := json.Marshal(&block{Device: dev, Index: 0, Epoch: 0, Prev: root[:], Entries: []*logEntry{
		{Type: "contact", Contact: "bob", Created: time.Unix(1700000000, 0).UTC(), MyAnn: ann},
		{Type: "msg", Contact: "bob", Origin: make([]byte, originSize), Dir: Outgoing, Body: []byte("hello"),
			Sent: time.Unix(1700000001, 0).UTC(), State: Stored, Seen: true}}})
	// The first device's identity is its own (§10.1, §10.9): it signs.
	first := vectorFirstDevice(t)
	plain := encodeBlock(first, content)
	chunk, err := sealContent(secretKey("history", keys.history[:]), blockAD(dev, 0), plain, bytes.NewReader(bytes.Repeat([]byte{0x33}, 24)))
	if err != nil {
		t.Fatal(err)
	}
	leaf := merkle.LeafHash(chunk)
	tree := new(merkle.Tree)
	tree.Append(leaf)
	tree.Append(leaf)
	twice := tree.Root()
	list, err := signList(keys.identity, &DeviceList{Account: pub.Bytes(), Name: "alice", Version: 1, Recovery: keys.recovery.Public().Bytes(),
		Devices: []Device{{ID: dev, Name: "first", Identity: first.Public().Bytes(), Seal: sealPub(first), Added: time.Unix(1700000000, 0).UTC()}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openBlock(keys.history[:], 0, first.Public(), dev, 0, chunk, root); err != nil {
		t.Fatalf("the vector block does not open: %v", err)
	}
	if l, err := verifyList(list, pub); err != nil || l.Format != listFormat {
		t.Fatalf("the vector list does not verify: %v", err)
	}
	epochKey := bytes.Repeat([]byte{0x44}, 32)
	sealedEpoch, err := ratchet.SealTo(keys.recovery.Public(), epochKey, bytes.NewReader(bytes.Repeat([]byte{0x55}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := keys.recovery.OpenSealed(sealedEpoch); err != nil || !bytes.Equal(got, epochKey) {
		t.Fatalf("the vector sealed box does not open: %v", err)
	}
	slot := func(s [32]byte) string { return hx(s[:]) }
	firstPriv, _ := first.MarshalBinary()
	firstPub := first.Public()
	sealPriv, _ := hkdf.Key(sha256.New, firstPriv[1:], []byte("deaddrop v4 device keys"), "epoch seal", 32)
	v := map[string]string{
		"seed":                       hx(seed),
		"phrase":                     encodePhrase(seed),
		"account_sign_public":        hx(pub.Sign[:]),
		"account_dh_public":          hx(pub.DH[:]),
		"history_key":                hx(keys.history[:]),
		"first_device":               dev,
		"first_device_identity":      hx(firstPriv),
		"first_device_sign_public":   hx(firstPub.Sign[:]),
		"first_device_dh_public":     hx(firstPub.DH[:]),
		"first_device_seal_private":  hx(sealPriv),
		"first_device_seal_public":   hx(sealPub(first)),
		"history_slot_0":             slot(logSlot(keys.history[:], dev, 0)),
		"history_slot_1":             slot(logSlot(keys.history[:], dev, 1)),
		"directory_slot_1":           slot(directorySlot(keys.history[:], 1)),
		"announce_secret":            hx(ann),
		"announce_slot_0":            slot(annSlot(ann, 0)),
		"announce_key":               hx(secretKey("announce", ann)),
		"history_block_0_content":    string(content),
		"history_block_0_signature":  hx(plain[1 : 1+blockSigSize]),
		"history_block_0_plaintext":  hx(plain),
		"history_block_0_chunk":      hx(chunk),
		"history_block_0_leaf":       hx(leaf[:]),
		"history_root_block_0_x2":    hx(twice[:]),
		"device_list_v1_signed_json": string(list),
	}
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(out, '\n')
}
