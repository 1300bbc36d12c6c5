package feed

import (
	"context"
	"time"
)

// Signed is a chunk in the signed wire form its backend stores: bytes that
// anyone can put again, byte for byte, holding no key (an IPNS record, a Swarm
// single-owner chunk). A keeper holds these and nothing else: it can neither
// read the chunk nor derive any other slot.
type Signed struct {
	// Name is the backend's address of the record: an IPNS name (k51…) on
	// IPFS, the single-owner chunk's address in hex on Swarm.
	Name string
	// Data is the record as the backend stores it.
	Data []byte
}

// Keepable is implemented by stores whose network forgets what is not put
// again (IPFS: the DHT drops a record 48 hours after its last put; Swarm: a
// chunk lives as long as the postage batch that stamped it).
type Keepable interface {
	// Sign returns the signed form of chunk at slot, exactly as Put writes it.
	Sign(slot Slot, chunk []byte) (Signed, error)
	// VerifySigned checks, with no key, that r is a valid record for its
	// name: signature, validity and a chunk of ChunkSize bytes.
	VerifySigned(r Signed) error
	// PutSigned puts a verified record again, as received.
	PutSigned(ctx context.Context, r Signed) error
	// Lifetime is how long one put keeps a record alive: the network may
	// forget it that long after its last put, so whoever keeps it puts it
	// again well before. Zero when putting again does not extend a record's
	// life (Swarm: a chunk lives as long as its postage batch, which is
	// topped up, not re-put).
	Lifetime(ctx context.Context) (time.Duration, error)
}

// BatchStatus is the state of the postage batch a store stamps with (Swarm:
// the only store that pays for storage). It lives here, not in feed/swarm,
// so that code reporting it does not link the Swarm backend.
type BatchStatus struct {
	ID string
	// TTL is how long the batch (and so every chunk it stamped) lives at
	// the current price.
	TTL time.Duration
	// Utilization is the fill of the batch's fullest bucket and
	// BucketCapacity that bucket's size: uploads fail (immutable) or
	// overwrite old chunks (mutable) when it is full.
	Utilization, BucketCapacity uint32
	Depth, BucketDepth          uint8
	// Amount is the batch's value per chunk (PLUR), as Bee reports it.
	Amount string
	Usable bool
}

// Full reports whether the fullest bucket has no room left.
func (b BatchStatus) Full() bool { return b.Utilization >= b.BucketCapacity }
