package attach

import (
	"encoding/binary"
	"errors"
	"fmt"
	"mime"
	"strings"
	"unicode"
	"unicode/utf8"

	"filippo.io/age"
	"github.com/deaddrop/deaddrop/feed"
)

// Version is the manifest format's version byte.
const Version = 1

const (
	// DefaultMaxSize is the largest attachment Upload and Save accept
	// unless Options.MaxSize says otherwise.
	DefaultMaxSize = 100 << 20
	// MaxFormatSize bounds Size in any manifest, whatever the options: a
	// sanity limit of the format, not a policy.
	MaxFormatSize = 1 << 40
	// MaxSegments bounds the number of segments of one attachment.
	MaxSegments = 1<<16 - 1
	// MinSegmentSize and MaxSegmentSize bound the segment size, which must
	// be a multiple of MinSegmentSize, age's STREAM chunk: segment
	// boundaries then fall on chunk boundaries.
	MinSegmentSize = 64 << 10
	MaxSegmentSize = 64 << 20
	// MaxNameSize bounds a file name in bytes (a common file system limit).
	MaxNameSize = 255
	// MaxMediaTypeSize bounds a media type in bytes (RFC 6838: 127 each
	// for type and subtype; we keep the whole under one byte's length).
	MaxMediaTypeSize = 255
)

var (
	// ErrManifest reports a malformed manifest.
	ErrManifest = errors.New("attach: malformed manifest")
	// ErrBadName reports a file name that could not be used safely.
	ErrBadName = errors.New("attach: unsafe file name")
	// ErrTooLarge reports an attachment over the size limit.
	ErrTooLarge = errors.New("attach: attachment too large")
	// ErrIntegrity reports content that does not match its manifest: a
	// tampered or truncated segment, a size or hash that lies. Nothing is
	// shown as received.
	ErrIntegrity = errors.New("attach: attachment damaged or forged")
	// ErrNotFound reports a segment the store does not have.
	ErrNotFound = feed.ErrNotFound
)

// Manifest describes one attachment: where its encrypted segments are, the
// key that opens them and what the whole must be. It travels inside a
// conversation message, which authenticates it; nothing in it is ever
// given to a store.
type Manifest struct {
	// Name is the file's name as the sender gave it (validated by
	// CheckName, not yet made unique in a directory).
	Name string
	// MediaType is a MIME type such as "image/png".
	MediaType string
	// Size is the plaintext size in bytes.
	Size int64
	// SHA256 is the digest of the whole plaintext.
	SHA256 [32]byte
	// SegmentSize is the plaintext size of every segment but the last.
	SegmentSize int64
	// Key is the age X25519 identity ("AGE-SECRET-KEY-1…") every segment
	// is encrypted to: fresh for this file, never used for anything else.
	Key string
	// Segments are the bulk references of the encrypted segments, in order.
	Segments [][]byte
}

// segments returns how many segments an attachment of size bytes has.
func segments(size, segSize int64) int64 {
	return (size + segSize - 1) / segSize
}

// segmentLen is the plaintext length of segment i.
func (m *Manifest) segmentLen(i int) int64 {
	return min(m.SegmentSize, m.Size-int64(i)*m.SegmentSize)
}

// Check validates every field; Marshal and Parse call it.
func (m *Manifest) Check() error {
	switch {
	case m.Size < 0 || m.Size > MaxFormatSize:
		return fmt.Errorf("%w: size %d", ErrManifest, m.Size)
	case m.SegmentSize < MinSegmentSize || m.SegmentSize > MaxSegmentSize || m.SegmentSize%MinSegmentSize != 0:
		return fmt.Errorf("%w: segment size %d", ErrManifest, m.SegmentSize)
	case int64(len(m.Segments)) != segments(m.Size, m.SegmentSize):
		return fmt.Errorf("%w: %d segments for %d bytes in segments of %d", ErrManifest, len(m.Segments), m.Size, m.SegmentSize)
	case len(m.Segments) > MaxSegments:
		return fmt.Errorf("%w: %d segments", ErrManifest, len(m.Segments))
	}
	for i, ref := range m.Segments {
		if err := feed.CheckRef(ref); err != nil {
			return fmt.Errorf("%w: segment %d: %v", ErrManifest, i, err)
		}
	}
	if err := CheckName(m.Name); err != nil {
		return err
	}
	if err := checkMediaType(m.MediaType); err != nil {
		return err
	}
	if _, err := m.identity(); err != nil {
		return err
	}
	return nil
}

func (m *Manifest) identity() (*age.X25519Identity, error) {
	if len(m.Key) > 255 {
		return nil, fmt.Errorf("%w: key too long", ErrManifest)
	}
	id, err := age.ParseX25519Identity(m.Key)
	if err != nil {
		return nil, fmt.Errorf("%w: key: %v", ErrManifest, err)
	}
	if id.String() != m.Key {
		// One encoding per manifest: bech32 would also take lower case.
		return nil, fmt.Errorf("%w: key not in canonical form", ErrManifest)
	}
	return id, nil
}

// CheckName reports whether name can be used as a file name in a directory
// as it is: not empty, not "." or "..", valid UTF-8 of at most MaxNameSize
// bytes, with no path separator (either kind), no control character and no
// bidirectional override (which make a name display as another, such as
// "photo‮gpj.exe").
func CheckName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("%w: %q", ErrBadName, name)
	case len(name) > MaxNameSize:
		return fmt.Errorf("%w: %d bytes, limit %d", ErrBadName, len(name), MaxNameSize)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: %q is not UTF-8", ErrBadName, name)
	case strings.ContainsAny(name, `/\`):
		return fmt.Errorf("%w: %q has a path separator", ErrBadName, name)
	}
	for _, r := range name {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == utf8.RuneError {
			return fmt.Errorf("%w: %q has a control character", ErrBadName, name)
		}
	}
	return nil
}

// checkMediaType accepts a media type such as "text/plain; charset=utf-8"
// in canonical printable ASCII.
func checkMediaType(mt string) error {
	if mt == "" || len(mt) > MaxMediaTypeSize {
		return fmt.Errorf("%w: media type of %d bytes", ErrManifest, len(mt))
	}
	for i := 0; i < len(mt); i++ {
		if mt[i] < 0x20 || mt[i] > 0x7e {
			return fmt.Errorf("%w: media type %q", ErrManifest, mt)
		}
	}
	if _, _, err := mime.ParseMediaType(mt); err != nil {
		return fmt.Errorf("%w: media type %q: %v", ErrManifest, mt, err)
	}
	return nil
}

// Marshal encodes a valid manifest (see docs/protocol.md, "Attachments"):
//
//	version         1 byte (1)
//	size            8 bytes, big-endian
//	sha256          32 bytes
//	segment size    4 bytes, big-endian
//	key             1-byte length ‖ age X25519 identity
//	name            1-byte length ‖ UTF-8
//	media type      1-byte length ‖ ASCII
//	segment count   2 bytes, big-endian
//	references      each 1-byte length ‖ reference
func (m *Manifest) Marshal() ([]byte, error) {
	if err := m.Check(); err != nil {
		return nil, err
	}
	b := make([]byte, 0, 128+len(m.Name)+len(m.MediaType)+len(m.Segments)*(1+36))
	b = append(b, Version)
	b = binary.BigEndian.AppendUint64(b, uint64(m.Size))
	b = append(b, m.SHA256[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(m.SegmentSize))
	for _, s := range []string{m.Key, m.Name, m.MediaType} {
		b = append(b, byte(len(s)))
		b = append(b, s...)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.Segments)))
	for _, ref := range m.Segments {
		b = append(b, byte(len(ref)))
		b = append(b, ref...)
	}
	return b, nil
}

// Parse decodes and validates a manifest. It is strict: one encoding per
// manifest, no trailing bytes, every field checked as Check does.
func Parse(b []byte) (*Manifest, error) {
	d := decoder{b: b}
	if v := d.byte(); v != Version {
		return nil, fmt.Errorf("%w: version %d", ErrManifest, v)
	}
	m := &Manifest{}
	m.Size = int64(d.uint64())
	copy(m.SHA256[:], d.bytes(32))
	m.SegmentSize = int64(d.uint32())
	m.Key = string(d.short())
	m.Name = string(d.short())
	m.MediaType = string(d.short())
	n := int(d.uint16())
	for i := 0; i < n && d.err == nil; i++ {
		m.Segments = append(m.Segments, d.short())
	}
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrManifest, len(d.b))
	}
	if err := m.Check(); err != nil {
		return nil, err
	}
	return m, nil
}

// decoder reads big-endian fields, remembering the first error.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) bytes(n int) []byte {
	if d.err != nil {
		return make([]byte, n)
	}
	if len(d.b) < n {
		d.err = fmt.Errorf("%w: truncated", ErrManifest)
		return make([]byte, n)
	}
	out := d.b[:n:n]
	d.b = d.b[n:]
	return out
}

func (d *decoder) byte() byte     { return d.bytes(1)[0] }
func (d *decoder) uint16() uint16 { return binary.BigEndian.Uint16(d.bytes(2)) }
func (d *decoder) uint32() uint32 { return binary.BigEndian.Uint32(d.bytes(4)) }
func (d *decoder) uint64() uint64 { return binary.BigEndian.Uint64(d.bytes(8)) }
func (d *decoder) short() []byte  { return append([]byte(nil), d.bytes(int(d.byte()))...) }
