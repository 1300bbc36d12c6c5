package sphinx

import (
	"fmt"
	"io"
)

// A SURB (single-use reply block) lets a node answer a client it does not
// know: the client builds the header of the return path and hands it over
// with the first hop's ID and a payload key. The replier encrypts the reply
// under that key and sends the packet to the first hop; each hop removes a
// layer as usual, and the client, who kept every hop's keys, undoes them.
//
//	SURB = header (476) ‖ first hop ID (32) ‖ payload key (48) ‖ IV (16): 572 bytes

// SURBSize is the size of a SURB.
const SURBSize = HeaderSize + nodeIDSize + sprpKeySize + sprpIVSize

// SURBKeys is what the SURB's creator keeps to read the reply.
type SURBKeys struct {
	hops []hopKeys
	key  [sprpKeySize]byte
	iv   [sprpIVSize]byte
}

// NewSURB builds a SURB for the return path; the last hop's commands should
// deliver to the client (Recipient) and name the SURB (SURBReply).
func NewSURB(path []Hop, rand io.Reader) ([]byte, *SURBKeys, error) {
	header, keys, err := newHeader(path, rand)
	if err != nil {
		return nil, nil, err
	}
	k := &SURBKeys{hops: keys}
	if _, err := io.ReadFull(rand, k.key[:]); err != nil {
		return nil, nil, err
	}
	if _, err := io.ReadFull(rand, k.iv[:]); err != nil {
		return nil, nil, err
	}
	surb := append(header, path[0].ID[:]...)
	surb = append(surb, k.key[:]...)
	return append(surb, k.iv[:]...), k, nil
}

// NewReply builds the reply packet for a SURB and returns it with the ID of
// the node to send it to.
func NewReply(surb, message []byte) (packet []byte, firstHop [nodeIDSize]byte, err error) {
	if len(surb) != SURBSize {
		return nil, firstHop, fmt.Errorf("%w: SURB of %d bytes, want %d", ErrMalformed, len(surb), SURBSize)
	}
	copy(firstHop[:], surb[HeaderSize:])
	var key [sprpKeySize]byte
	var iv [sprpIVSize]byte
	copy(key[:], surb[HeaderSize+nodeIDSize:])
	copy(iv[:], surb[HeaderSize+nodeIDSize+sprpKeySize:])
	payload := append(make([]byte, tagSize), message...)
	encryptPayload(key, iv, payload)
	return append(append([]byte{}, surb[:HeaderSize]...), payload...), firstHop, nil
}

// Open reads a reply that came back through the SURB: it re-applies every
// hop's layer (each hop decrypted one), removes the replier's, and checks
// the tag.
func (k *SURBKeys) Open(payload []byte) ([]byte, error) {
	p := append([]byte(nil), payload...)
	for i := len(k.hops) - 1; i >= 0; i-- {
		encryptPayload(k.hops[i].payload, k.hops[i].headerIV, p)
	}
	p, err := decryptPayload(k.key, k.iv, p)
	if err != nil {
		return nil, err
	}
	return OpenPayload(p)
}
