// Package sphinx is the Sphinx packet format as Katzenpost runs it, on the
// standard library and golang.org/x/crypto: X25519, HKDF-SHA256 (expand
// only), HMAC-SHA256, AES-256-CTR for the routing information and a
// LIONESS wide-block cipher (BLAKE2b, ChaCha20) for the payload. It is the
// packet layer of deaddrop's mix transport (issue 7, in progress): header
// processing reproduces Katzenpost's published vectors at every hop.
//
// A packet is header ‖ payload. The header is AD (2) ‖ α (32) ‖ β (routing
// information, 82 bytes per hop) ‖ γ (MAC, 32). Each hop derives its keys
// from X25519(its key, α), checks γ, decrypts β, reads its commands, blinds α
// for the next hop, and removes one layer of payload encryption.
package sphinx

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"

	curve "github.com/deaddrop/deaddrop/internal/x25519"
	"golang.org/x/crypto/chacha20"
)

// Geometry: Katzenpost's, five hops.
const (
	MaxHops       = 5
	adSize        = 2
	groupSize     = 32
	macSize       = 32
	perHopSize    = 82
	routingSize   = MaxHops * perHopSize                       // β: 410
	HeaderSize    = adSize + groupSize + routingSize + macSize // 476
	nodeIDSize    = 32
	surbIDSize    = 16
	sprpKeySize   = 48
	sprpIVSize    = 16
	kdfInfo       = "katzenpost-kdf-v0-hkdf-sha256"
	kdfOutputSize = macSize + 32 + 16 + sprpKeySize + 32 // 160
)

// Commands in the routing information.
const (
	cmdNull      = 0x00
	cmdNextHop   = 0x01
	cmdRecipient = 0x02
	cmdSURBReply = 0x03
	cmdNodeDelay = 0x80
)

// Command is one routing command for a hop.
type Command interface{ bytes() []byte }

// NextHop tells a mix where to forward: the next node's ID and the MAC of the
// header it will receive.
type NextHop struct {
	ID  [nodeIDSize]byte
	MAC [macSize]byte
}

// Recipient names the final recipient (the gateway's queue).
type Recipient struct{ ID [32]byte }

// SURBReply marks a packet as a reply through a SURB, with the SURB's ID.
type SURBReply struct{ ID [surbIDSize]byte }

// NodeDelay is how long the hop holds the packet, in milliseconds.
type NodeDelay struct{ Millis uint32 }

func (c NextHop) bytes() []byte   { return append(append([]byte{cmdNextHop}, c.ID[:]...), c.MAC[:]...) }
func (c Recipient) bytes() []byte { return append([]byte{cmdRecipient}, c.ID[:]...) }
func (c SURBReply) bytes() []byte { return append([]byte{cmdSURBReply}, c.ID[:]...) }
func (c NodeDelay) bytes() []byte {
	return binary.BigEndian.AppendUint32([]byte{cmdNodeDelay}, c.Millis)
}

var (
	// ErrMAC reports a header whose MAC does not verify (tampered, or not
	// for this node's key).
	ErrMAC = errors.New("sphinx: header MAC mismatch")
	// ErrMalformed reports a packet or command that cannot be parsed.
	ErrMalformed = errors.New("sphinx: malformed packet")
)

// hopKeys are the per-hop keys derived from the shared secret.
type hopKeys struct {
	headerMAC    [macSize]byte
	headerStream [32]byte
	headerIV     [16]byte
	payload      [sprpKeySize]byte
	blinding     [32]byte // seed of the blinding factor
}

func deriveKeys(shared []byte) hopKeys {
	out, err := hkdf.Expand(sha256.New, shared, kdfInfo, kdfOutputSize)
	if err != nil {
		panic(err)
	}
	var k hopKeys
	n := copy(k.headerMAC[:], out)
	n += copy(k.headerStream[:], out[n:])
	n += copy(k.headerIV[:], out[n:])
	n += copy(k.payload[:], out[n:])
	copy(k.blinding[:], out[n:])
	return k
}

// blindingFactor is the first 32 bytes of ChaCha20 keyed by the seed with a
// zero nonce, used as an X25519 scalar.
func blindingFactor(seed [32]byte) []byte {
	c, _ := chacha20.NewUnauthenticatedCipher(seed[:], make([]byte, 12))
	f := make([]byte, 32)
	c.XORKeyStream(f, f)
	return f
}

// x25519 is one scalar multiplication (internal/x25519). The all-zero output
// of a low-order point is an error.
func x25519(scalar, point []byte) ([]byte, error) {
	s, err := curve.X25519(scalar, point)
	if err != nil {
		return nil, fmt.Errorf("%w: low-order group element", ErrMalformed)
	}
	return s, nil
}

func headerMAC(key [macSize]byte, ad, alpha, beta []byte) []byte {
	m := hmac.New(sha256.New, key[:])
	m.Write(ad)
	m.Write(alpha)
	m.Write(beta)
	return m.Sum(nil)
}

// streamXOR XORs b with the AES-256-CTR keystream whose initial counter
// block is the 16-byte IV.
func streamXOR(key [32]byte, iv [16]byte, b []byte) {
	block, _ := aes.NewCipher(key[:])
	cipher.NewCTR(block, iv[:]).XORKeyStream(b, b)
}

// ReplayTag identifies a packet's header for replay detection: SHA-512/256
// of the group element.
func ReplayTag(packet []byte) [32]byte {
	return sha512.Sum512_256(packet[adSize : adSize+groupSize])
}

// Unwrapped is what a hop learns from a packet.
type Unwrapped struct {
	Commands  []Command
	Next      []byte // the packet to forward, for a mix hop
	Payload   []byte // the payload with this hop's layer removed
	ReplayTag [32]byte
}

// Unwrap processes a packet at a node with private key priv. It checks the
// MAC before anything else and never panics on malformed input.
func Unwrap(priv [32]byte, packet []byte) (*Unwrapped, error) {
	if len(packet) < HeaderSize+payloadOverhead {
		return nil, fmt.Errorf("%w: %d bytes", ErrMalformed, len(packet))
	}
	ad := packet[:adSize]
	alpha := packet[adSize : adSize+groupSize]
	beta := packet[adSize+groupSize : adSize+groupSize+routingSize]
	gamma := packet[adSize+groupSize+routingSize : HeaderSize]
	if ad[0] != 0 || ad[1] != 0 {
		return nil, fmt.Errorf("%w: unknown version %x", ErrMalformed, ad)
	}
	shared, err := x25519(priv[:], alpha)
	if err != nil {
		return nil, err
	}
	keys := deriveKeys(shared)
	if !hmac.Equal(headerMAC(keys.headerMAC, ad, alpha, beta), gamma) {
		return nil, ErrMAC
	}
	b := make([]byte, routingSize+perHopSize)
	copy(b, beta)
	streamXOR(keys.headerStream, keys.headerIV, b)
	cmds, next, err := parseCommands(b[:perHopSize])
	if err != nil {
		return nil, err
	}
	u := &Unwrapped{Commands: cmds, ReplayTag: ReplayTag(packet)}
	payload, err := decryptPayload(keys.payload, keys.headerIV, packet[HeaderSize:])
	if err != nil {
		return nil, err
	}
	u.Payload = payload
	if next != nil {
		newAlpha, err := x25519(blindingFactor(keys.blinding), alpha)
		if err != nil {
			return nil, err
		}
		h := make([]byte, 0, len(packet))
		h = append(h, ad...)
		h = append(h, newAlpha...)
		h = append(h, b[perHopSize:]...)
		h = append(h, next.MAC[:]...)
		u.Next = append(h, payload...)
	}
	return u, nil
}

// parseCommands reads one hop's commands; it returns the NextHop command
// separately when present. Unknown commands are an error.
func parseCommands(b []byte) ([]Command, *NextHop, error) {
	var cmds []Command
	var next *NextHop
	for len(b) > 0 {
		switch b[0] {
		case cmdNull:
			return cmds, next, nil // the rest is padding
		case cmdNextHop:
			if len(b) < 1+nodeIDSize+macSize {
				return nil, nil, fmt.Errorf("%w: truncated next_node_hop", ErrMalformed)
			}
			c := NextHop{}
			copy(c.ID[:], b[1:])
			copy(c.MAC[:], b[1+nodeIDSize:])
			next = &c
			cmds = append(cmds, c)
			b = b[1+nodeIDSize+macSize:]
		case cmdRecipient:
			if len(b) < 33 {
				return nil, nil, fmt.Errorf("%w: truncated recipient", ErrMalformed)
			}
			c := Recipient{}
			copy(c.ID[:], b[1:])
			cmds = append(cmds, c)
			b = b[33:]
		case cmdSURBReply:
			if len(b) < 1+surbIDSize {
				return nil, nil, fmt.Errorf("%w: truncated surb_reply", ErrMalformed)
			}
			c := SURBReply{}
			copy(c.ID[:], b[1:])
			cmds = append(cmds, c)
			b = b[1+surbIDSize:]
		case cmdNodeDelay:
			if len(b) < 5 {
				return nil, nil, fmt.Errorf("%w: truncated node_delay", ErrMalformed)
			}
			cmds = append(cmds, NodeDelay{binary.BigEndian.Uint32(b[1:])})
			b = b[5:]
		default:
			return nil, nil, fmt.Errorf("%w: unknown command %#x", ErrMalformed, b[0])
		}
	}
	return cmds, next, nil
}
