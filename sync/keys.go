package sync

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/ratchet"
	"golang.org/x/crypto/chacha20poly1305"
)

// A recovery phrase encodes a 32-byte account seed and a 2-byte checksum in
// 55 lowercase base32 characters, shown in groups of five. Everything the
// account needs to find and read its history derives from the seed: the
// account identity that signs device lists, the history key that derives
// and encrypts the history log's slots, and the first device's ID.
const (
	seedSize     = 32
	phraseGroups = 5
)

var phraseEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// ErrBadPhrase reports a recovery phrase that is not well formed.
var ErrBadPhrase = errors.New("not a valid recovery phrase")

func encodePhrase(seed []byte) string {
	sum := sha256.Sum256(append([]byte("deaddrop phrase checksum"), seed...))
	s := phraseEncoding.EncodeToString(append(append([]byte(nil), seed...), sum[:2]...))
	var groups []string
	for i := 0; i < len(s); i += phraseGroups {
		groups = append(groups, s[i:min(i+phraseGroups, len(s))])
	}
	return strings.Join(groups, "-")
}

// parsePhrase accepts a phrase with any case, spaces or dashes.
func parsePhrase(phrase string) ([]byte, error) {
	s := strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' || r == '\t' || r == '\n' || r == '\r' {
			return -1
		}
		return r
	}, strings.ToLower(phrase))
	b, err := phraseEncoding.DecodeString(s)
	if err != nil || len(b) != seedSize+2 {
		return nil, fmt.Errorf("%w: want 55 letters and digits 2-7 (11 groups of 5), got %d characters", ErrBadPhrase, len(s))
	}
	seed := b[:seedSize]
	sum := sha256.Sum256(append([]byte("deaddrop phrase checksum"), seed...))
	if !bytes.Equal(sum[:2], b[seedSize:]) {
		return nil, fmt.Errorf("%w: the checksum does not match (a typo?)", ErrBadPhrase)
	}
	return seed, nil
}

// accountKeys are what the seed derives.
type accountKeys struct {
	identity *ratchet.Identity // the account identity: signs device lists
	recovery *ratchet.Identity // opens history keys sealed to the phrase
	history  [32]byte          // derives and encrypts the history log
	firstDev string            // the device ID of the device created by init
}

func deriveKeys(seed []byte) (*accountKeys, error) {
	expand := func(info string, n int) []byte {
		b, err := hkdf.Key(sha256.New, seed, []byte("deaddrop account v1"), info, n)
		if err != nil {
			panic(err) // only for n too large
		}
		return b
	}
	id, err := ratchet.NewIdentity(bytes.NewReader(expand("account identity", 64)))
	if err != nil {
		return nil, err
	}
	rec, err := ratchet.NewIdentity(bytes.NewReader(expand("recovery key", 64)))
	if err != nil {
		return nil, err
	}
	k := &accountKeys{identity: id, recovery: rec, firstDev: hex.EncodeToString(expand("first device", deviceIDSize))}
	copy(k.history[:], expand("history key", 32))
	return k, nil
}

// Secret feeds: the history log, the directory of device lists and the
// per-contact announcement feeds all write fixed-size chunks to slots that
// only holders of a secret can derive, sealed with XChaCha20-Poly1305 under a
// key from the same secret. A chunk is nonce 24 ‖ ciphertext of
// (length u16 ‖ content ‖ zero padding) ‖ tag 16.
const sealedContentMax = feed.ChunkSize - chacha20poly1305.NonceSizeX - chacha20poly1305.Overhead - 2

func secretSlot(label string, secret []byte, parts ...[]byte) feed.Slot {
	h := sha256.New()
	h.Write([]byte("deaddrop " + label + " slot v1\x00"))
	h.Write(secret)
	for _, p := range parts {
		h.Write(p)
	}
	return feed.Slot(h.Sum(nil))
}

func secretKey(label string, secret []byte) []byte {
	k := sha256.Sum256(append([]byte("deaddrop "+label+" key v1\x00"), secret...))
	return k[:]
}

func u64(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

func sealContent(key, ad, content []byte, rand io.Reader) ([]byte, error) {
	if len(content) > sealedContentMax {
		return nil, fmt.Errorf("content of %d bytes does not fit a chunk (max %d)", len(content), sealedContentMax)
	}
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, err
	}
	chunk := make([]byte, chacha20poly1305.NonceSizeX, feed.ChunkSize)
	if _, err := io.ReadFull(rand, chunk); err != nil {
		return nil, err
	}
	pt := make([]byte, feed.ChunkSize-chacha20poly1305.NonceSizeX-chacha20poly1305.Overhead)
	binary.BigEndian.PutUint16(pt, uint16(len(content)))
	copy(pt[2:], content)
	return aead.Seal(chunk, chunk, pt, ad), nil
}

var errSealed = errors.New("does not decrypt (tampered, or not ours)")

func openContent(key, ad, chunk []byte) ([]byte, error) {
	if len(chunk) != feed.ChunkSize {
		return nil, fmt.Errorf("chunk of %d bytes, want %d", len(chunk), feed.ChunkSize)
	}
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, err
	}
	n := chacha20poly1305.NonceSizeX
	pt, err := aead.Open(nil, chunk[:n], chunk[n:], ad)
	if err != nil {
		return nil, errSealed
	}
	size := int(binary.BigEndian.Uint16(pt))
	if size > len(pt)-2 {
		return nil, fmt.Errorf("content length %d exceeds the chunk", size)
	}
	return pt[2 : 2+size], nil
}

// deviceSealKey derives a device's sealing key for history epoch keys from
// its identity (protocol version 4, docs/protocol.md §10.9): an X25519 key
// used for nothing else, so that the session identity and the epoch-key
// recipient are separate keys, and nothing new is stored.
//
//	seal_priv = HKDF-SHA256(IKM = Ed25519 seed ‖ X25519 private key of the identity,
//	                        salt = "deaddrop v4 device keys", info = "epoch seal", 32)
func deviceSealKey(id *ratchet.Identity) *ratchet.SealKey {
	b, _ := id.MarshalBinary() // version ‖ Ed25519 seed ‖ X25519 private key
	priv, err := hkdf.Key(sha256.New, b[1:], []byte("deaddrop v4 device keys"), "epoch seal", 32)
	if err != nil {
		panic(err)
	}
	k, err := ratchet.NewSealKey([32]byte(priv))
	if err != nil {
		panic(err) // any 32 bytes are an X25519 private key
	}
	return k
}

// sealPub is the public sealing key of a device identity, for its entry in
// the device list.
func sealPub(id *ratchet.Identity) []byte {
	p := deviceSealKey(id).Public()
	return p[:]
}

// Phrase is a recovery phrase that parsed (ParsePhrase): the right length
// and checksum. Parse it where it enters (the CLI, the root package) so that
// a typo is reported before a store connection opens.
type Phrase struct{ seed []byte }

// ParsePhrase checks a recovery phrase as Create shows it; case, spaces and
// dashes do not matter. Errors wrap ErrBadPhrase.
func ParsePhrase(s string) (Phrase, error) {
	seed, err := parsePhrase(s)
	if err != nil {
		return Phrase{}, err
	}
	return Phrase{seed: seed}, nil
}

// String is the phrase in its canonical form (lowercase, groups of five).
func (p Phrase) String() string {
	if len(p.seed) != seedSize {
		return ""
	}
	return encodePhrase(p.seed)
}
