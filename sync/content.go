package sync

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Long messages and file messages (issue 16). A user's message is its
// content: text, and for a file message an attachment manifest (encoded by
// package attach; opaque here). Content that fits one chunk travels as one
// KindData or KindFile envelope; longer content is cut into KindPart
// envelopes, consecutive in the session's sequence, which the reader
// reassembles and shows only once the last one arrived (docs/protocol.md §12).

const (
	// MaxTextSize is the largest message text in bytes (64 KiB of UTF-8).
	MaxTextSize = 64 << 10
	// MaxAttachmentSize bounds an encoded attachment manifest.
	MaxAttachmentSize = 32 << 10
	// MaxParts bounds the parts of one message.
	MaxParts = 64

	partHeaderSize = 1 + 2 + 2 + 4 // kind ‖ index ‖ count ‖ total
	// partDataMax is the most content one part carries.
	partDataMax = MaxMessageSize - partHeaderSize
	// maxContentSize bounds what parts may reassemble to.
	maxContentSize = 4 + MaxAttachmentSize + MaxTextSize
)

var (
	// ErrBadPart reports a message part that cannot belong to an honest
	// message: an impossible index or count, or content that disagrees
	// with the parts before it.
	ErrBadPart = errors.New("malformed message part")
	// ErrBadContent reports a file message whose content does not decode.
	ErrBadContent = errors.New("malformed message content")
)

// content is what one user's message carries.
type content struct {
	Text   string
	Attach []byte // encoded attachment manifest; nil: a text message
}

// kind returns the envelope kind of content sent whole.
func (c *content) kind() Kind {
	if c.Attach != nil {
		return KindFile
	}
	return KindData
}

// marshal encodes content as the body of its kind:
//
//	KindData: text
//	KindFile: manifest length u32 ‖ manifest ‖ text
func (c *content) marshal() []byte {
	if c.Attach == nil {
		return []byte(c.Text)
	}
	b := make([]byte, 0, 4+len(c.Attach)+len(c.Text))
	b = binary.BigEndian.AppendUint32(b, uint32(len(c.Attach)))
	b = append(b, c.Attach...)
	return append(b, c.Text...)
}

func (c *content) check() error {
	switch {
	case c.Attach == nil && c.Text == "":
		return ErrEmptyMessage
	case len(c.Text) > MaxTextSize:
		return fmt.Errorf("%w: this one has %d bytes", ErrMessageTooLarge, len(c.Text))
	case !utf8.ValidString(c.Text):
		return errors.New("message is not valid UTF-8 text")
	case c.Attach != nil && (len(c.Attach) == 0 || len(c.Attach) > MaxAttachmentSize):
		return fmt.Errorf("%w: attachment manifest of %d bytes", ErrBadContent, len(c.Attach))
	}
	return nil
}

// parseContent decodes the body of a KindData or KindFile message, or what
// the parts of one reassembled to, and validates it.
func parseContent(kind Kind, b []byte) (*content, error) {
	c := &content{}
	switch kind {
	case KindData:
		c.Text = string(b)
	case KindFile:
		if len(b) < 4 {
			return nil, fmt.Errorf("%w: file message of %d bytes", ErrBadContent, len(b))
		}
		n := binary.BigEndian.Uint32(b)
		if n == 0 || uint64(n) > uint64(len(b)-4) {
			return nil, fmt.Errorf("%w: manifest length %d of %d bytes", ErrBadContent, n, len(b)-4)
		}
		c.Attach = append([]byte(nil), b[4:4+n]...)
		c.Text = string(b[4+n:])
	default:
		return nil, fmt.Errorf("%w: kind %v", ErrBadContent, kind)
	}
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadContent, err)
	}
	return c, nil
}

// part is the body of a KindPart envelope:
//
//	kind u8 (of the whole: 1 data, 6 file) ‖ index u16 ‖ count u16 ‖
//	total u32 (bytes of the whole) ‖ data
type part struct {
	Kind         Kind
	Index, Count int
	Total        int
	Data         []byte
}

func (p *part) marshal() []byte {
	b := make([]byte, 0, partHeaderSize+len(p.Data))
	b = append(b, byte(p.Kind))
	b = binary.BigEndian.AppendUint16(b, uint16(p.Index))
	b = binary.BigEndian.AppendUint16(b, uint16(p.Count))
	b = binary.BigEndian.AppendUint32(b, uint32(p.Total))
	return append(b, p.Data...)
}

// parsePart decodes and validates one part on its own; reassembly checks
// that it agrees with the parts before it.
func parsePart(b []byte) (*part, error) {
	if len(b) < partHeaderSize+1 {
		return nil, fmt.Errorf("%w: %d bytes", ErrBadPart, len(b))
	}
	p := &part{
		Kind:  Kind(b[0]),
		Index: int(binary.BigEndian.Uint16(b[1:])),
		Count: int(binary.BigEndian.Uint16(b[3:])),
		Total: int(binary.BigEndian.Uint32(b[5:])),
		Data:  append([]byte(nil), b[partHeaderSize:]...),
	}
	switch {
	case p.Kind != KindData && p.Kind != KindFile:
		return nil, fmt.Errorf("%w: whole of kind %d", ErrBadPart, b[0])
	case p.Count < 2 || p.Count > MaxParts:
		return nil, fmt.Errorf("%w: %d parts", ErrBadPart, p.Count)
	case p.Index >= p.Count:
		return nil, fmt.Errorf("%w: part %d of %d", ErrBadPart, p.Index, p.Count)
	case p.Total <= MaxMessageSize || p.Total > maxContentSize:
		return nil, fmt.Errorf("%w: whole of %d bytes", ErrBadPart, p.Total)
	case p.Count != (p.Total+partDataMax-1)/partDataMax:
		return nil, fmt.Errorf("%w: %d parts for %d bytes", ErrBadPart, p.Count, p.Total)
	case len(p.Data) != min(partDataMax, p.Total-p.Index*partDataMax):
		return nil, fmt.Errorf("%w: part %d of %d has %d bytes", ErrBadPart, p.Index, p.Count, len(p.Data))
	}
	return p, nil
}

// split returns the envelopes (kind and body) that carry content: one, or
// its parts in order. Every part but the last is full, so index, count and
// total fix each part's length.
func (c *content) split() (kinds []Kind, bodies [][]byte) {
	whole := c.marshal()
	if len(whole) <= MaxMessageSize {
		return []Kind{c.kind()}, [][]byte{whole}
	}
	count := (len(whole) + partDataMax - 1) / partDataMax
	for i := range count {
		data := whole[i*partDataMax : min(len(whole), (i+1)*partDataMax)]
		p := &part{Kind: c.kind(), Index: i, Count: count, Total: len(whole), Data: data}
		kinds, bodies = append(kinds, KindPart), append(bodies, p.marshal())
	}
	return kinds, bodies
}
