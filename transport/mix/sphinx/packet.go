package sphinx

import (
	"crypto/ecdh"
	"fmt"
	"io"
)

// Hop is one node of a packet's path.
type Hop struct {
	ID        [nodeIDSize]byte
	PublicKey [32]byte
	// Commands for this hop (NodeDelay for a mix, Recipient for the last);
	// NewPacket adds the NextHop command itself.
	Commands []Command
}

// NewPacket builds a packet that carries message along path (1 to MaxHops
// hops). Unused routing space is random, not zero, so the packet does not
// reveal the path's length.
func NewPacket(path []Hop, message []byte, rand io.Reader) ([]byte, error) {
	header, keys, err := newHeader(path, rand)
	if err != nil {
		return nil, err
	}
	payload := append(make([]byte, tagSize), message...)
	for i := len(keys) - 1; i >= 0; i-- {
		encryptPayload(keys[i].payload, keys[i].headerIV, payload)
	}
	return append(header, payload...), nil
}

// newHeader builds a packet header for path and returns it with the keys
// each hop will derive.
func newHeader(path []Hop, rand io.Reader) ([]byte, []hopKeys, error) {
	n := len(path)
	if n == 0 || n > MaxHops {
		return nil, nil, fmt.Errorf("sphinx: a path of %d hops (1 to %d)", n, MaxHops)
	}
	alphas, keys, err := hopSecrets(path, rand)
	if err != nil {
		return nil, nil, err
	}
	ad := []byte{0, 0}
	streams := make([][]byte, n)
	for i := range keys {
		streams[i] = make([]byte, routingSize+perHopSize)
		streamXOR(keys[i].headerStream, keys[i].headerIV, streams[i])
	}
	// The filler: what the hops' shifts will append, precomputed so that the
	// last hop's MAC covers it.
	var filler []byte
	for i := 0; i < n-1; i++ {
		filler = append(filler, make([]byte, perHopSize)...)
		s := streams[i][routingSize+perHopSize-len(filler):]
		for j := range filler {
			filler[j] ^= s[j]
		}
	}
	last, err := hopBlock(path[n-1].Commands, nil)
	if err != nil {
		return nil, nil, err
	}
	pad := make([]byte, routingSize-perHopSize*n)
	if _, err := io.ReadFull(rand, pad); err != nil {
		return nil, nil, err
	}
	beta := append(last, pad...)
	xor(beta, streams[n-1])
	beta = append(beta, filler...)
	gamma := headerMAC(keys[n-1].headerMAC, ad, alphas[n-1], beta)
	for i := n - 2; i >= 0; i-- {
		var next NextHop
		next.ID = path[i+1].ID
		copy(next.MAC[:], gamma)
		block, err := hopBlock(path[i].Commands, &next)
		if err != nil {
			return nil, nil, err
		}
		b := append(block, beta[:routingSize-perHopSize]...)
		xor(b, streams[i])
		beta = b
		gamma = headerMAC(keys[i].headerMAC, ad, alphas[i], beta)
	}
	header := append(append(append(append([]byte{}, ad...), alphas[0]...), beta...), gamma...)
	return header, keys, nil
}

// hopSecrets draws the packet's ephemeral key and derives, for every hop, the
// group element it will see and its keys.
func hopSecrets(path []Hop, rand io.Reader) (alphas [][]byte, keys []hopKeys, err error) {
	x := make([]byte, 32)
	if _, err = io.ReadFull(rand, x); err != nil {
		return
	}
	priv, err := ecdh.X25519().NewPrivateKey(x)
	if err != nil {
		return
	}
	alpha := priv.PublicKey().Bytes()
	var blinds [][]byte
	for _, hop := range path {
		s, err := x25519(x, hop.PublicKey[:])
		if err != nil {
			return nil, nil, err
		}
		for _, b := range blinds {
			if s, err = x25519(b, s); err != nil {
				return nil, nil, err
			}
		}
		k := deriveKeys(s)
		alphas = append(alphas, alpha)
		keys = append(keys, k)
		b := blindingFactor(k.blinding)
		blinds = append(blinds, b)
		if alpha, err = x25519(b, alpha); err != nil {
			return nil, nil, err
		}
	}
	return alphas, keys, nil
}

// hopBlock is one hop's routing information: its commands, then NextHop,
// then zero padding to perHopSize.
func hopBlock(cmds []Command, next *NextHop) ([]byte, error) {
	var b []byte
	for _, c := range cmds {
		b = append(b, c.bytes()...)
	}
	if next != nil {
		b = append(b, next.bytes()...)
	}
	if len(b) > perHopSize {
		return nil, fmt.Errorf("sphinx: commands of %d bytes exceed the %d a hop has", len(b), perHopSize)
	}
	return append(b, make([]byte, perHopSize-len(b))...), nil
}

func xor(dst, src []byte) {
	for i := range dst {
		dst[i] ^= src[i]
	}
}
