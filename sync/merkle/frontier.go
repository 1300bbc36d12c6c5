package merkle

import "math/bits"

// Frontier is the compact form of an append-only tree: the roots of its
// complete subtrees, largest first, one per set bit of the size. It appends
// a leaf and gives the root in O(log n) without the leaves, so a log of any
// length is extended and checked in constant memory.
type Frontier struct {
	Size  uint64
	Roots []Hash
}

// Append adds a leaf hash.
func (f *Frontier) Append(leaf Hash) {
	f.Roots = append(f.Roots, leaf)
	// Merge equal-sized subtrees: one per trailing one bit of the old size.
	for n := f.Size; n&1 == 1; n >>= 1 {
		last := len(f.Roots) - 1
		f.Roots = append(f.Roots[:last-1], nodeHash(f.Roots[last-1], f.Roots[last]))
	}
	f.Size++
}

// Root is the tree hash of all leaves: the subtree roots folded from the
// right, which is RFC 9162's split at the largest power of two below n.
func (f *Frontier) Root() Hash {
	if f.Size == 0 {
		return emptyRoot
	}
	h := f.Roots[len(f.Roots)-1]
	for i := len(f.Roots) - 2; i >= 0; i-- {
		h = nodeHash(f.Roots[i], h)
	}
	return h
}

// Valid reports whether the number of roots matches the size.
func (f *Frontier) Valid() bool { return len(f.Roots) == bits.OnesCount64(f.Size) }
