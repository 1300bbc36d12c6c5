package ratchet

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
)

const sessionVersion = 2

// Session flags (one byte).
const (
	flagDHr = 1 << iota
	flagCKs
	flagCKr
	flagHKs
	flagHKr
	flagInit
	flagPQDK
	flagPQPeerEK
	flagsKnown = flagDHr | flagCKs | flagCKr | flagHKs | flagHKr | flagInit | flagPQDK | flagPQPeerEK
)

const (
	sessionFixedLen = 1 + 1 + 32*5 + 4*3 + 32*6 + 128 + 64 + pqSeedSize + pqEKSize + 2
	initLen         = initFieldsSize + 32
	skippedLen      = 32 + 4 + 32 + 32
)

// MarshalBinary encodes the session state (docs/protocol.md §4.5).
func (s *Session) MarshalBinary() ([]byte, error) {
	var flags byte
	for bit, set := range map[byte]bool{flagDHr: s.hasDHr, flagCKs: s.hasCKs, flagCKr: s.hasCKr,
		flagHKs: s.hasHKs, flagHKr: s.hasHKr, flagInit: s.init != nil,
		flagPQDK: s.hasPQDK, flagPQPeerEK: s.hasPQPeerEK} {
		if set {
			flags |= bit
		}
	}
	b := []byte{sessionVersion, flags}
	for _, k := range [][32]byte{s.dhsPriv, s.dhr, s.rk, s.cks, s.ckr} {
		b = append(b, k[:]...)
	}
	b = binary.BigEndian.AppendUint32(b, s.ns)
	b = binary.BigEndian.AppendUint32(b, s.nr)
	b = binary.BigEndian.AppendUint32(b, s.pn)
	for _, k := range [][32]byte{s.hks, s.hkr, s.nhks, s.nhkr, s.tks, s.tkr} {
		b = append(b, k[:]...)
	}
	b = append(b, s.ad[:]...)
	b = append(b, s.peer.bytes()...)
	b = append(b, s.pqDK[:]...)
	b = append(b, s.pqPeerEK[:]...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(s.skipped)))
	if s.init != nil {
		b = append(b, s.init.marshal()...)
		b = append(b, s.initSlot[:]...)
	}
	for _, k := range s.skipped {
		b = append(b, k.hk[:]...)
		b = binary.BigEndian.AppendUint32(b, k.n)
		b = append(b, k.mk[:]...)
		b = append(b, k.slot[:]...)
	}
	return b, nil
}

// UnmarshalSession decodes a session written by MarshalBinary. Errors name
// what is wrong; it never panics.
func UnmarshalSession(b []byte) (*Session, error) {
	if len(b) < sessionFixedLen {
		return nil, fmt.Errorf("session: truncated (%d bytes, want at least %d)", len(b), sessionFixedLen)
	}
	if b[0] == 1 {
		return nil, fmt.Errorf("session: version 1 (before post-quantum protection) is no longer supported; start the conversation again with a new invite")
	}
	if b[0] != sessionVersion {
		return nil, fmt.Errorf("session: unsupported version %d", b[0])
	}
	flags := b[1]
	if flags&^flagsKnown != 0 {
		return nil, fmt.Errorf("session: unknown flags %#x", flags)
	}
	s := &Session{rand: rand.Reader}
	r := reader{b: b[2:]}
	for _, k := range []*[32]byte{&s.dhsPriv, &s.dhr, &s.rk, &s.cks, &s.ckr} {
		r.read(k[:])
	}
	s.ns, s.nr, s.pn = r.u32(), r.u32(), r.u32()
	for _, k := range []*[32]byte{&s.hks, &s.hkr, &s.nhks, &s.nhkr, &s.tks, &s.tkr} {
		r.read(k[:])
	}
	r.read(s.ad[:])
	r.read(s.peer.Sign[:])
	r.read(s.peer.DH[:])
	r.read(s.pqDK[:])
	r.read(s.pqPeerEK[:])
	n := int(r.u16())
	want := sessionFixedLen + n*skippedLen
	if flags&flagInit != 0 {
		want += initLen
	}
	if len(b) != want {
		return nil, fmt.Errorf("session: %d bytes, want %d for %d skipped keys", len(b), want, n)
	}
	if n > MaxSkippedKeys {
		return nil, fmt.Errorf("session: %d skipped keys, at most %d allowed", n, MaxSkippedKeys)
	}
	s.hasDHr, s.hasCKs, s.hasCKr = flags&flagDHr != 0, flags&flagCKs != 0, flags&flagCKr != 0
	s.hasHKs, s.hasHKr = flags&flagHKs != 0, flags&flagHKr != 0
	s.hasPQDK, s.hasPQPeerEK = flags&flagPQDK != 0, flags&flagPQPeerEK != 0
	s.dhsPub = publicKey(s.dhsPriv)
	if flags&flagInit != 0 {
		inner := make([]byte, innerSize)
		copy(inner, r.take(initFieldsSize))
		f, _, err := parseInit(inner)
		if err != nil {
			return nil, fmt.Errorf("session: first-message preamble: %v", err)
		}
		s.init = f
		r.read(s.initSlot[:])
	}
	s.skipped = make([]skippedKey, n)
	for i := range s.skipped {
		k := &s.skipped[i]
		r.read(k.hk[:])
		k.n = r.u32()
		r.read(k.mk[:])
		r.read(k.slot[:])
	}
	return s, nil
}
