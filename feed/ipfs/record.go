package ipfs

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/boxo/path"
	"github.com/ipfs/go-cid"
	ic "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multihash"
)

// A slot's record is fixed: sequence 0, a constant end of validity and TTL,
// and a deterministic Ed25519 signature, so republishing a slot puts the very
// same bytes, which Kubo accepts as a republish. The DHT still drops records
// after RecordExpiry, which is why the writer re-puts unacknowledged slots.
var (
	// RecordEOL is the end of validity written into every record.
	RecordEOL = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
	// RecordTTL is the cache hint written into every record.
	RecordTTL = time.Hour
)

// RecordExpiry is how long the IPFS DHT keeps a record; the sync layer
// republishes unacknowledged slots much more often than this.
const RecordExpiry = 48 * time.Hour

var errBadRecord = errors.New("invalid IPNS record")

// slotKey is a slot's IPNS key pair and name.
type slotKey struct {
	priv ic.PrivKey
	name ipns.Name
}

func keyFor(slot feed.Slot) slotKey {
	seed := feed.DeriveKey(slot, "ipns")
	priv, err := ic.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(seed[:]))
	if err != nil {
		panic(err) // 64 well-formed bytes: cannot fail
	}
	pid, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		panic(err)
	}
	return slotKey{priv: priv, name: ipns.NameFromPeer(pid)}
}

// chunkPath is the IPFS path of the chunk itself: a CIDv1 (raw codec) whose
// identity multihash inlines the bytes, so the record carries the chunk.
func chunkPath(chunk []byte) (path.Path, error) {
	mh, err := multihash.Sum(chunk, multihash.IDENTITY, -1)
	if err != nil {
		return nil, err
	}
	return path.FromCid(cid.NewCidV1(cid.Raw, mh)), nil
}

// buildRecord returns the marshalled record for a slot's chunk. Only the V2
// (CBOR) form is written: with a V1 copy of the value the record would exceed
// the 10 KiB limit.
func buildRecord(k slotKey, chunk []byte, eol time.Time) ([]byte, error) {
	p, err := chunkPath(chunk)
	if err != nil {
		return nil, err
	}
	rec, err := ipns.NewRecord(k.priv, p, 0, eol, RecordTTL, ipns.WithV1Compatibility(false))
	if err != nil {
		return nil, err
	}
	return ipns.MarshalRecord(rec)
}

// parseRecord verifies a record received for name and returns its chunk:
// size, signature by the name's key, validity, and a value that inlines
// exactly feed.ChunkSize bytes.
func parseRecord(name ipns.Name, data []byte, now time.Time) ([]byte, error) {
	if len(data) > ipns.MaxRecordSize {
		return nil, fmt.Errorf("%w: %d bytes, over the %d-byte limit", errBadRecord, len(data), ipns.MaxRecordSize)
	}
	rec, err := ipns.UnmarshalRecord(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBadRecord, err)
	}
	if err := ipns.ValidateWithName(rec, name); err != nil {
		return nil, fmt.Errorf("%w: not signed for this name, or expired: %v", errBadRecord, err)
	}
	if eol, err := rec.Validity(); err != nil || !now.Before(eol) {
		return nil, fmt.Errorf("%w: expired", errBadRecord)
	}
	value, err := rec.Value()
	if err != nil {
		return nil, fmt.Errorf("%w: value: %v", errBadRecord, err)
	}
	return chunkFromPath(value)
}

func chunkFromPath(p path.Path) ([]byte, error) {
	ip, err := path.NewImmutablePath(p)
	if err != nil {
		return nil, fmt.Errorf("%w: value %.40q is not an /ipfs/ path", errBadRecord, p.String())
	}
	c := ip.RootCid()
	dec, err := multihash.Decode(c.Hash())
	if err != nil || dec.Code != multihash.IDENTITY || c.Type() != cid.Raw {
		return nil, fmt.Errorf("%w: value does not inline a raw chunk", errBadRecord)
	}
	if len(dec.Digest) != feed.ChunkSize {
		return nil, fmt.Errorf("%w: inlined chunk of %d bytes, want %d", errBadRecord, len(dec.Digest), feed.ChunkSize)
	}
	return dec.Digest, nil
}
