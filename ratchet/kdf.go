package ratchet

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"

	"github.com/deaddrop/deaddrop/feed"
	"golang.org/x/crypto/chacha20poly1305"
)

// Labels of every key derivation (docs/protocol.md §1).
const (
	infoX3DH       = "deaddrop v2 pqxdh"
	infoRoot       = "deaddrop v1 root"
	infoMessage    = "deaddrop v1 message"
	infoTopic      = "deaddrop v1 topic"
	infoRendezvous = "deaddrop v1 rendezvous"
)

func hkdfSHA256(secret, salt []byte, info string, n int) []byte {
	out, err := hkdf.Key(sha256.New, secret, salt, info, n)
	if err != nil {
		panic(err) // only for n > 255*32, never here
	}
	return out
}

func hmacSHA256(key []byte, data ...byte) [32]byte {
	m := hmac.New(sha256.New, key)
	m.Write(data)
	var out [32]byte
	m.Sum(out[:0])
	return out
}

// kdfRK is KDF_RK_HE: HKDF(salt = RK, ikm = DH output) → RK', CK, NHK.
func kdfRK(rk, dhOut [32]byte) (newRK, ck, nhk [32]byte) {
	b := hkdfSHA256(dhOut[:], rk[:], infoRoot, 96)
	copy(newRK[:], b[:32])
	copy(ck[:], b[32:64])
	copy(nhk[:], b[64:])
	return
}

// kdfCK is Signal's KDF_CK: MK = HMAC(CK, 0x01), CK' = HMAC(CK, 0x02).
func kdfCK(ck [32]byte) (newCK, mk [32]byte) {
	return hmacSHA256(ck[:], 0x02), hmacSHA256(ck[:], 0x01)
}

// messageKeys expands a message key into an XChaCha20-Poly1305 key and nonce.
func messageKeys(mk [32]byte) (key, nonce []byte) {
	b := hkdfSHA256(mk[:], nil, infoMessage, chacha20poly1305.KeySize+chacha20poly1305.NonceSizeX)
	return b[:chacha20poly1305.KeySize], b[chacha20poly1305.KeySize:]
}

// Topic ratchet: TK_0 = HKDF(HK, "deaddrop v1 topic"); slot_n = HMAC(TK_n,
// 0x03); TK_{n+1} = HMAC(TK_n, 0x04). A topic key yields one slot and the next
// topic key, so slots are unlinkable without the header key.
func topicStart(hk [32]byte) [32]byte {
	var tk [32]byte
	copy(tk[:], hkdfSHA256(hk[:], nil, infoTopic, 32))
	return tk
}

func topicSlot(tk [32]byte) feed.Slot { return feed.Slot(hmacSHA256(tk[:], 0x03)) }

func topicNext(tk [32]byte) [32]byte { return hmacSHA256(tk[:], 0x04) }

// TopicSlot returns slot n of the chain whose header key is hk.
func TopicSlot(hk [32]byte, n uint32) feed.Slot {
	tk := topicStart(hk)
	for i := uint32(0); i < n; i++ {
		tk = topicNext(tk)
	}
	return topicSlot(tk)
}

func rendezvous(secret [32]byte) feed.Slot {
	var s feed.Slot
	copy(s[:], hkdfSHA256(secret[:], nil, infoRendezvous, 32))
	return s
}
