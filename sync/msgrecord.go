package sync

import (
	"encoding/binary"
	"errors"
	"time"
)

// A message record is the most numerous value in the state: one per message
// of every conversation. In JSON it took ~220 bytes for a 30-byte body
// (field names, base64 origin, RFC 3339 times); this binary form takes ~60.
// Records written in JSON (state from before it, and every other record
// type) are still read: JSON starts with '{', this form with its version.
//
//	0x01 ‖ uvarint local ‖ uvarint len(origin) ‖ origin ‖ dir ‖ uvarint seq
//	     ‖ varint sent seconds ‖ uvarint sent nanoseconds
//	     ‖ varint received seconds ‖ uvarint received nanoseconds
//	     ‖ state ‖ seen (0 or 1) ‖ body (the rest)
//
// A file message (one with an attachment manifest) is written as version
// 0x02: the same fields with uvarint len(manifest) ‖ manifest (at least one
// byte) before the body. Text messages stay 0x01.
//
// Times are UTC; the zero time is its own seconds (year 1), so it comes
// back zero.
const (
	messageRecordV1 = 0x01
	messageRecordV2 = 0x02
)

// binaryRecord is a record with a compact encoding of its own.
type binaryRecord interface {
	marshalRecord() []byte
	unmarshalRecord([]byte) error
}

func (m *messageRecord) marshalRecord() []byte {
	b := make([]byte, 0, 48+len(m.Origin)+len(m.Attach)+len(m.Body))
	if len(m.Attach) > 0 {
		b = append(b, messageRecordV2)
	} else {
		b = append(b, messageRecordV1)
	}
	b = binary.AppendUvarint(b, m.Local)
	b = binary.AppendUvarint(b, uint64(len(m.Origin)))
	b = append(b, m.Origin...)
	b = append(b, byte(m.Dir))
	b = binary.AppendUvarint(b, m.Seq)
	b = appendTime(b, m.Sent)
	b = appendTime(b, m.Received)
	b = append(b, byte(m.State), boolByte(m.Seen))
	if len(m.Attach) > 0 {
		b = binary.AppendUvarint(b, uint64(len(m.Attach)))
		b = append(b, m.Attach...)
	}
	return append(b, m.Body...)
}

func (m *messageRecord) unmarshalRecord(b []byte) error {
	r := &recordReader{b: b}
	version := r.byte()
	if version != messageRecordV1 && version != messageRecordV2 {
		return errors.New("unknown record version")
	}
	m.Local = r.uvarint()
	m.Origin = r.bytes(r.uvarint())
	m.Dir = Direction(r.byte())
	m.Seq = r.uvarint()
	m.Sent = r.time()
	m.Received = r.time()
	m.State = MessageState(r.byte())
	switch r.byte() {
	case 0:
		m.Seen = false
	case 1:
		m.Seen = true
	default:
		r.fail()
	}
	m.Attach = nil
	if version == messageRecordV2 {
		if m.Attach = r.bytes(r.uvarint()); len(m.Attach) == 0 {
			r.fail()
		}
	}
	if r.err != nil {
		return r.err
	}
	m.Body = string(r.b)
	return nil
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

func appendTime(b []byte, t time.Time) []byte {
	return binary.AppendUvarint(binary.AppendVarint(b, t.Unix()), uint64(t.Nanosecond()))
}

// recordReader reads a binary record; the first short or bad field sets err
// and every later read returns zero.
type recordReader struct {
	b   []byte
	err error
}

func (r *recordReader) fail() {
	if r.err == nil {
		r.err = errors.New("truncated or malformed record")
	}
	r.b = nil
}

func (r *recordReader) byte() byte {
	if len(r.b) == 0 {
		r.fail()
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *recordReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *recordReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *recordReader) bytes(n uint64) []byte {
	if n > uint64(len(r.b)) {
		r.fail()
		return nil
	}
	v := append([]byte(nil), r.b[:n]...)
	r.b = r.b[n:]
	return v
}

func (r *recordReader) time() time.Time {
	sec, nsec := r.varint(), r.uvarint()
	if nsec >= 1e9 {
		r.fail()
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}
