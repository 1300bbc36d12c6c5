// Package merkle is the append-only Merkle tree of an account's history log,
// as RFC 9162 §2.1 defines it: leaves and interior nodes hashed with SHA-256
// under distinct prefixes, inclusion proofs (an entry is in the log) and
// consistency proofs (a log only grew). Subtrees that are complete never
// change, so their hashes are kept and each root costs O(log n) new hashes.
package merkle

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math/bits"
)

// Hash is a SHA-256 digest.
type Hash [32]byte

// LeafHash is HASH(0x00 ‖ data).
func LeafHash(data []byte) Hash {
	return sha256.Sum256(append([]byte{0x00}, data...))
}

func nodeHash(left, right Hash) Hash {
	b := make([]byte, 0, 65)
	b = append(b, 0x01)
	b = append(append(b, left[:]...), right[:]...)
	return sha256.Sum256(b)
}

// emptyRoot is the root of the empty tree, HASH("").
var emptyRoot = Hash(sha256.Sum256(nil))

// Tree is an append-only Merkle tree of leaf hashes. Not safe for concurrent
// use.
type Tree struct {
	leaves []Hash
	// perfect caches the hash of every complete subtree [i·2^k, (i+1)·2^k),
	// keyed by (k, i).
	perfect map[[2]uint64]Hash
}

// Append adds a leaf hash and returns its index.
func (t *Tree) Append(leaf Hash) uint64 {
	t.leaves = append(t.leaves, leaf)
	return uint64(len(t.leaves) - 1)
}

// Size is the number of leaves.
func (t *Tree) Size() uint64 { return uint64(len(t.leaves)) }

// Leaf returns leaf i's hash.
func (t *Tree) Leaf(i uint64) Hash { return t.leaves[i] }

// Root is the tree hash of all leaves.
func (t *Tree) Root() Hash { return t.RootAt(t.Size()) }

// RootAt is the tree hash of the first n leaves (n ≤ Size).
func (t *Tree) RootAt(n uint64) Hash {
	if n == 0 {
		return emptyRoot
	}
	return t.hash(0, n)
}

// hash is MTH(D[lo:hi]) for hi > lo.
func (t *Tree) hash(lo, hi uint64) Hash {
	n := hi - lo
	if n == 1 {
		return t.leaves[lo]
	}
	if n&(n-1) == 0 && lo%n == 0 { // a complete, aligned subtree: cacheable
		key := [2]uint64{uint64(bits.TrailingZeros64(n)), lo / n}
		if h, ok := t.perfect[key]; ok {
			return h
		}
		h := t.split(lo, hi)
		if t.perfect == nil {
			t.perfect = make(map[[2]uint64]Hash)
		}
		t.perfect[key] = h
		return h
	}
	return t.split(lo, hi)
}

func (t *Tree) split(lo, hi uint64) Hash {
	k := largestPowerBelow(hi - lo)
	return nodeHash(t.hash(lo, lo+k), t.hash(lo+k, hi))
}

// largestPowerBelow is the largest power of two smaller than n (n ≥ 2).
func largestPowerBelow(n uint64) uint64 {
	return 1 << (bits.Len64(n-1) - 1)
}

var (
	// ErrProof reports a proof that does not verify.
	ErrProof = errors.New("merkle: proof does not verify")
	// ErrRange reports indexes or sizes out of range.
	ErrRange = errors.New("merkle: index or size out of range")
)

// InclusionProof is the audit path of leaf index in the tree of the first
// size leaves (RFC 9162 §2.1.3.1).
func (t *Tree) InclusionProof(index, size uint64) ([]Hash, error) {
	if index >= size || size > t.Size() {
		return nil, fmt.Errorf("%w: leaf %d of %d (tree has %d)", ErrRange, index, size, t.Size())
	}
	return t.path(index, 0, size), nil
}

func (t *Tree) path(m, lo, hi uint64) []Hash {
	if hi-lo == 1 {
		return nil
	}
	k := largestPowerBelow(hi - lo)
	if m < k {
		return append(t.path(m, lo, lo+k), t.hash(lo+k, hi))
	}
	return append(t.path(m-k, lo+k, hi), t.hash(lo, lo+k))
}

// VerifyInclusion checks that leaf is leaf index of the tree of size leaves
// whose root is root (RFC 9162 §2.1.3.2).
func VerifyInclusion(index, size uint64, leaf Hash, proof []Hash, root Hash) error {
	if index >= size {
		return fmt.Errorf("%w: leaf %d of %d", ErrRange, index, size)
	}
	fn, sn, r := index, size-1, leaf
	for _, p := range proof {
		if sn == 0 {
			return fmt.Errorf("%w: path too long", ErrProof)
		}
		if fn&1 == 1 || fn == sn {
			r = nodeHash(p, r)
			for fn&1 == 0 && fn != 0 {
				fn, sn = fn>>1, sn>>1
			}
		} else {
			r = nodeHash(r, p)
		}
		fn, sn = fn>>1, sn>>1
	}
	if sn != 0 || r != root {
		return ErrProof
	}
	return nil
}

// ConsistencyProof proves that the tree of the first m leaves is a prefix of
// the tree of the first n (RFC 9162 §2.1.4.1).
func (t *Tree) ConsistencyProof(m, n uint64) ([]Hash, error) {
	if m > n || n > t.Size() {
		return nil, fmt.Errorf("%w: sizes %d and %d (tree has %d)", ErrRange, m, n, t.Size())
	}
	if m == 0 || m == n {
		return nil, nil
	}
	return t.subproof(m, 0, n, true), nil
}

func (t *Tree) subproof(m, lo, hi uint64, whole bool) []Hash {
	if m == hi-lo {
		if whole {
			return nil
		}
		return []Hash{t.hash(lo, hi)}
	}
	k := largestPowerBelow(hi - lo)
	if m <= k {
		return append(t.subproof(m, lo, lo+k, whole), t.hash(lo+k, hi))
	}
	return append(t.subproof(m-k, lo+k, hi, false), t.hash(lo, lo+k))
}

// VerifyConsistency checks that newRoot, of a tree of n leaves, extends
// oldRoot, of its first m (RFC 9162 §2.1.4.2).
func VerifyConsistency(m, n uint64, oldRoot, newRoot Hash, proof []Hash) error {
	switch {
	case m > n:
		return fmt.Errorf("%w: old size %d > new size %d", ErrRange, m, n)
	case m == 0:
		if len(proof) != 0 {
			return fmt.Errorf("%w: proof for an empty old tree", ErrProof)
		}
		return nil
	case m == n:
		if len(proof) != 0 || oldRoot != newRoot {
			return ErrProof
		}
		return nil
	case len(proof) == 0:
		return fmt.Errorf("%w: empty proof", ErrProof)
	}
	if m&(m-1) == 0 {
		proof = append([]Hash{oldRoot}, proof...)
	}
	fn, sn := m-1, n-1
	for fn&1 == 1 {
		fn, sn = fn>>1, sn>>1
	}
	fr, sr := proof[0], proof[0]
	for _, c := range proof[1:] {
		if sn == 0 {
			return fmt.Errorf("%w: path too long", ErrProof)
		}
		if fn&1 == 1 || fn == sn {
			fr, sr = nodeHash(c, fr), nodeHash(c, sr)
			for fn&1 == 0 && fn != 0 {
				fn, sn = fn>>1, sn>>1
			}
		} else {
			sr = nodeHash(sr, c)
		}
		fn, sn = fn>>1, sn>>1
	}
	if fr != oldRoot || sr != newRoot || sn != 0 {
		return ErrProof
	}
	return nil
}
