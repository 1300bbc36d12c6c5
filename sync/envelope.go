package sync

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/deaddrop/deaddrop/ratchet"
)

// Kind says what a conversation message carries.
type Kind byte

const (
	// KindData is a user's message.
	KindData Kind = 1
	// KindAck carries only an acknowledgement. It is reliable like any other
	// message but never answered with another ack, so acks do not ping-pong.
	KindAck Kind = 2
	// KindHello is the joiner's first message, written to the invite's
	// rendezvous slot; it carries the joiner's display name in Body.
	KindHello Kind = 3
	// KindMeta tells the peer device about ours: our device ID, the secret
	// of our announcement feed for this contact, and our signed device list
	// (a JSON metaBody). Sent once by both sides of every new session.
	KindMeta Kind = 4
	// KindPart is one part of a message too long for one chunk: a long
	// text or a file message with a long manifest (content.go). The reader
	// shows the message once its last part arrived, never a piece of it.
	KindPart Kind = 5
	// KindFile is a file message: an attachment manifest and a caption
	// (content.go); the file itself is in the store's bulk content.
	KindFile Kind = 6
)

func (k Kind) String() string {
	switch k {
	case KindData:
		return "data"
	case KindAck:
		return "ack"
	case KindHello:
		return "hello"
	case KindMeta:
		return "meta"
	case KindPart:
		return "part"
	case KindFile:
		return "file"
	}
	return fmt.Sprintf("kind(%d)", byte(k))
}

// wantsAck reports whether receiving this kind obliges the reader to send an
// acknowledgement even when it has nothing else to say.
func (k Kind) wantsAck() bool { return k != KindAck }

const (
	envelopeVersion  = 2
	originSize       = deviceIDSize + 8
	envelopeOverhead = 1 + 1 + 8 + 8 + 8 + originSize + 2

	// MaxMessageSize is the largest message body in bytes: what fits in one
	// fixed-size chunk after the ratchet's and the envelope's overhead.
	MaxMessageSize = ratchet.MaxPlaintext - envelopeOverhead
)

var (
	// ErrMessageTooLarge reports a message body over MaxMessageSize bytes.
	ErrMessageTooLarge = fmt.Errorf("message is too large (the limit is %d bytes)", MaxMessageSize)
	// ErrEmptyMessage reports an empty message body.
	ErrEmptyMessage = errors.New("message is empty")
)

// envelope is the plaintext of every conversation message, inside the ratchet:
//
//	version u8 (2) ‖ kind u8 ‖ seq u64 ‖ ack u64 ‖ sent i64 (unix ms) ‖
//	origin [16] ‖ len u16 ‖ body
//
// seq numbers every message of one direction of one session from 1 without
// gaps; ack is the highest seq the sender has received from its peer with no
// gap below it. origin (sending device ID ‖ 8 random bytes) is the same in
// every copy of a data, file or part message fanned out to the peer's devices, so that
// their history holds it once; zero in other kinds.
type envelope struct {
	Kind   Kind
	Seq    uint64
	Ack    uint64
	Sent   time.Time
	Origin [originSize]byte
	Body   []byte
}

func (e *envelope) marshal() []byte {
	b := make([]byte, 0, envelopeOverhead+len(e.Body))
	b = append(b, envelopeVersion, byte(e.Kind))
	b = binary.BigEndian.AppendUint64(b, e.Seq)
	b = binary.BigEndian.AppendUint64(b, e.Ack)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Sent.UnixMilli()))
	b = append(b, e.Origin[:]...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(e.Body)))
	return append(b, e.Body...)
}

// parseEnvelope decodes and validates an envelope. Errors name the bad field.
func parseEnvelope(b []byte) (*envelope, error) {
	if len(b) < envelopeOverhead {
		return nil, fmt.Errorf("envelope: truncated (%d bytes, want at least %d)", len(b), envelopeOverhead)
	}
	if b[0] != envelopeVersion {
		return nil, fmt.Errorf("envelope: unsupported version %d", b[0])
	}
	e := &envelope{
		Kind: Kind(b[1]),
		Seq:  binary.BigEndian.Uint64(b[2:]),
		Ack:  binary.BigEndian.Uint64(b[10:]),
		Sent: time.UnixMilli(int64(binary.BigEndian.Uint64(b[18:]))),
	}
	copy(e.Origin[:], b[26:])
	n := int(binary.BigEndian.Uint16(b[26+originSize:]))
	rest := b[envelopeOverhead:]
	switch {
	case e.Kind < KindData || e.Kind > KindFile:
		return nil, fmt.Errorf("envelope: unknown kind %d", b[1])
	case e.Seq == 0:
		return nil, errors.New("envelope: sequence number 0")
	case n != len(rest):
		return nil, fmt.Errorf("envelope: body length field %d, but %d bytes follow", n, len(rest))
	case n > MaxMessageSize:
		return nil, fmt.Errorf("envelope: body of %d bytes exceeds %d", n, MaxMessageSize)
	case (e.Kind == KindData || e.Kind == KindPart || e.Kind == KindFile) && n == 0:
		return nil, fmt.Errorf("envelope: empty %v message", e.Kind)
	case e.Kind != KindData && e.Kind != KindPart && e.Kind != KindFile && !utf8.Valid(rest):
		return nil, errors.New("envelope: name is not UTF-8")
	}
	e.Body = append([]byte(nil), rest...)
	return e, nil
}
