package mix

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/transport/mix/sphinx"
)

// Sizes. Every packet on every link has the same size: a request (a put
// carries a whole chunk and a SURB), a reply, and cover traffic alike.
const (
	MessageSize = 1 + 32 + feed.ChunkSize + sphinx.SURBSize + 3 // 4704
	PayloadSize = 32 + MessageSize                              // with the zero tag
	PacketSize  = sphinx.HeaderSize + PayloadSize               // 5212
	surbIDSize  = 16
)

// Request kinds (first byte of a message to the gateway).
const (
	kindPut  = 1
	kindGet  = 2
	kindDrop = 3 // drop cover: the gateway discards it
)

// Reply status (first byte of a reply).
const (
	statusOK       = 0
	statusNotFound = 1
	statusError    = 2 // the gateway's store failed: unavailable
	statusSlotUsed = 3
	statusCorrupt  = 4
)

// Connection types (first byte a dialer sends).
const (
	connNode   = 'N'
	connClient = 'C'
)

type request struct {
	kind  byte
	slot  feed.Slot
	chunk []byte // put only
	surb  []byte
}

func (r *request) marshal() []byte {
	b := make([]byte, MessageSize)
	b[0] = r.kind
	copy(b[1:], r.slot[:])
	copy(b[33:], r.chunk)
	copy(b[33+feed.ChunkSize:], r.surb)
	return b
}

func parseRequest(b []byte) (*request, error) {
	if len(b) != MessageSize {
		return nil, fmt.Errorf("request of %d bytes", len(b))
	}
	r := &request{kind: b[0]}
	copy(r.slot[:], b[1:33])
	if r.kind == kindPut {
		r.chunk = append([]byte(nil), b[33:33+feed.ChunkSize]...)
	}
	r.surb = append([]byte(nil), b[33+feed.ChunkSize:33+feed.ChunkSize+sphinx.SURBSize]...)
	if r.kind < kindPut || r.kind > kindDrop {
		return nil, fmt.Errorf("unknown request kind %d", r.kind)
	}
	return r, nil
}

// reply: status ‖ length u16 ‖ data (the chunk, or an error message).
func marshalReply(status byte, data []byte) []byte {
	b := make([]byte, MessageSize)
	b[0] = status
	binary.BigEndian.PutUint16(b[1:], uint16(len(data)))
	copy(b[3:], data)
	return b
}

var errReplyFormat = errors.New("mix: malformed reply")

func parseReply(b []byte) (byte, []byte, error) {
	if len(b) < 3 {
		return 0, nil, errReplyFormat
	}
	n := int(binary.BigEndian.Uint16(b[1:]))
	if 3+n > len(b) {
		return 0, nil, errReplyFormat
	}
	return b[0], b[3 : 3+n], nil
}

// deliveries to a client: SURB ID ‖ payload.
const deliverySize = surbIDSize + PayloadSize

func readFull(r io.Reader, n int) ([]byte, error) {
	b := make([]byte, n)
	_, err := io.ReadFull(r, b)
	return b, err
}
