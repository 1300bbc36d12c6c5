package ratchet

import (
	"encoding/binary"

	"github.com/deaddrop/deaddrop/feed"
)

// TargetKind says why a slot is in the poll set.
type TargetKind uint8

const (
	// Current: the next slots of the peer's current sending chain.
	Current TargetKind = iota
	// Next: the first slots of the chain the peer starts when it ratchets.
	Next
	// Skipped: a slot below the read position whose message has not arrived.
	Skipped
)

// Target is one slot of the poll set, with the (opaque, non-secret) tag of
// its chain and its index there, so that a reader can stop fetching a chain
// past a slot it found empty.
type Target struct {
	Slot  feed.Slot
	Kind  TargetKind
	Chain uint64
	Index uint32
}

// chainTag names a chain without revealing its header key.
func chainTag(hk [32]byte) uint64 {
	t := hmacSHA256(hk[:], []byte("deaddrop v1 chain tag")...)
	return binary.BigEndian.Uint64(t[:8])
}

// PollTargets returns what a reader should fetch now: window slots of the
// current receiving chain from Nr; window slots from the start of the peer's
// next chain, if the peer can have started one (it has seen our current
// ratchet key, i.e. we sent on our current chain); and the slot of every
// cached skipped key.
func (s *Session) PollTargets(window int) []Target {
	var out []Target
	appendChain := func(kind TargetKind, hk, tk [32]byte, from uint32) {
		tag := chainTag(hk)
		for i := 0; i < window; i++ {
			out = append(out, Target{Slot: topicSlot(tk), Kind: kind, Chain: tag, Index: from + uint32(i)})
			tk = topicNext(tk)
		}
	}
	if s.hasHKr && s.hasCKr {
		appendChain(Current, s.hkr, s.tkr, s.nr)
	}
	if s.ns > 0 {
		appendChain(Next, s.nhkr, topicStart(s.nhkr), 0)
	}
	for _, k := range s.skipped {
		out = append(out, Target{Slot: k.slot, Kind: Skipped, Chain: chainTag(k.hk), Index: k.n})
	}
	return out
}

// PollSlots is PollTargets without the bookkeeping: just the slots.
func (s *Session) PollSlots(window int) []feed.Slot {
	var out []feed.Slot
	for _, t := range s.PollTargets(window) {
		out = append(out, t.Slot)
	}
	return out
}
