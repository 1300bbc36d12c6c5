package mix

import (
	"crypto/hkdf"
	"crypto/sha256"
	"sync"
	"time"
)

// A node's epoch keys form a one-way chain: k_{e+1} = KDF(k_e), and the
// epoch's X25519 private key is another KDF of k_e. A node holds only the
// chain key of the oldest epoch it still serves (the previous one during
// the grace period, else the current one) and erases the older ones from
// memory and from its config file as epochs pass. Whoever seizes a node
// can then derive the keys of the current and later epochs, never an
// earlier one: the packets it unwrapped before stay secret (forward
// secrecy). With a long-term seed that derived every epoch's key, seizing
// the seed opened every recorded packet of every epoch.

// EpochKey is the chain key of one epoch.
type EpochKey struct {
	Epoch int64
	Key   [32]byte
}

// next is the following epoch's chain key.
func (k EpochKey) next() EpochKey {
	return EpochKey{k.Epoch + 1, kdf(k.Key, "deaddrop mix epoch ratchet")}
}

// private is the epoch's X25519 private key.
func (k EpochKey) private() [32]byte { return kdf(k.Key, "deaddrop mix epoch key") }

func kdf(key [32]byte, info string) [32]byte {
	b, _ := hkdf.Expand(sha256.New, key[:], info, 32)
	return [32]byte(b)
}

// keyRing is a node's chain key, advanced (and the old key erased) as
// epochs pass.
type keyRing struct {
	mu      sync.Mutex
	oldest  EpochKey
	persist func(EpochKey) error // writes the oldest key to disk before the older one is forgotten
}

// advance moves the chain to the oldest epoch still served at now: epoch-1
// within the grace period after an epoch starts, else epoch. The new key is
// persisted before the old one is erased, so a crash never leaves a node
// with no key; if persisting fails the old key stays on disk and the error
// says so.
func (r *keyRing) advance(topo *Topology, now time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	keep := topo.Epoch(now)
	if inGrace(topo, now) {
		keep--
	}
	if r.oldest.Epoch >= keep {
		return nil
	}
	k := r.oldest
	for k.Epoch < keep {
		n := k.next()
		if k != r.oldest {
			clear(k.Key[:])
		}
		k = n
	}
	var err error
	if r.persist != nil {
		err = r.persist(k)
	}
	clear(r.oldest.Key[:])
	r.oldest = k
	return err
}

// private returns the X25519 private key of epoch e, if the chain still
// holds it.
func (r *keyRing) private(e int64) ([32]byte, bool) {
	r.mu.Lock()
	k := r.oldest
	r.mu.Unlock()
	if e < k.Epoch {
		return [32]byte{}, false // erased
	}
	for k.Epoch < e {
		k = k.next()
	}
	return k.private(), true
}

// inGrace reports whether now is within the grace period of its epoch,
// when the previous epoch's key is still accepted.
func inGrace(topo *Topology, now time.Time) bool {
	epoch := topo.Epoch(now)
	return now.Sub(topo.Epoch0.Add(time.Duration(epoch)*topo.EpochDuration)) < topo.Grace
}
