package merkle

import (
	"bytes"
	"crypto/sha256"
	"slices"
)

// Range-based set reconciliation between two devices' logs: each side holds a
// set of entry hashes (uniformly distributed), and they find the entries the
// other lacks by comparing fingerprints of ranges of the hash space, splitting
// into 16 sub-ranges (the next hex digit) only where fingerprints differ, and
// listing entries once a range holds few. For d differences among n entries
// this exchanges O(d log n) bytes in O(log n) rounds, not the whole log.

const (
	fanout       = 16 // sub-ranges per split: one hex digit of the hash
	listBelow    = 8  // a range this small is listed rather than split
	fingerprintN = 16 // bytes of a range fingerprint
)

// Result is what a reconciliation found and what it cost on the wire.
type Result struct {
	OnlyA, OnlyB []Hash // entries only one side had
	Bytes        int    // bytes exchanged, both directions
	Rounds       int    // round trips
}

// prefixRange is the set of hashes that start with the given hex digits.
type prefixRange []byte // one hex digit (0–15) per element

func (p prefixRange) contains(h Hash) bool {
	for i, d := range p {
		b := h[i/2]
		if i%2 == 0 {
			b >>= 4
		}
		if b&0x0f != d {
			return false
		}
	}
	return true
}

// within returns the entries of the sorted set s in range p.
func within(s []Hash, p prefixRange) []Hash {
	lo, hi := bounds(p)
	i, _ := slices.BinarySearchFunc(s, lo, func(a, b Hash) int { return bytes.Compare(a[:], b[:]) })
	j := i
	for j < len(s) && bytes.Compare(s[j][:], hi[:]) <= 0 {
		j++
	}
	return s[i:j]
}

// bounds are the smallest and largest hashes with prefix p.
func bounds(p prefixRange) (lo, hi Hash) {
	for i := range hi {
		hi[i] = 0xff
	}
	for i, d := range p {
		if i%2 == 0 {
			lo[i/2], hi[i/2] = d<<4, d<<4|0x0f
		} else {
			lo[i/2] |= d
			hi[i/2] = hi[i/2]&0xf0 | d
		}
	}
	return lo, hi
}

func fingerprint(items []Hash) [fingerprintN]byte {
	h := sha256.New()
	for _, it := range items {
		h.Write(it[:])
	}
	var fp [fingerprintN]byte
	copy(fp[:], h.Sum(nil))
	return fp
}

// Reconcile runs the protocol between a and b, both sorted and free of
// duplicates, and returns the differences and the bytes it exchanged. Each
// round, A sends a fingerprint and a count (20 bytes) per open range; B
// answers one byte per range (equal, split) or, for a small range, its
// entries; A then sends B the entries B lacks in the ranges it listed.
func Reconcile(a, b []Hash) Result {
	var res Result
	open := []prefixRange{{}}
	for len(open) > 0 {
		res.Rounds++
		var next []prefixRange
		for _, p := range open {
			ia, ib := within(a, p), within(b, p)
			res.Bytes += fingerprintN + 4 // A → B
			res.Bytes++                   // B → A: verdict
			switch {
			case len(ia) == len(ib) && fingerprint(ia) == fingerprint(ib):
			case len(ia) <= listBelow || len(ib) <= listBelow || len(p) == 2*len(Hash{}):
				res.Bytes += 32 * len(ib) // B lists its entries
				onlyA, onlyB := diff(ia, ib)
				res.Bytes += 32 * len(onlyA) // A sends the ones B lacks
				res.OnlyA = append(res.OnlyA, onlyA...)
				res.OnlyB = append(res.OnlyB, onlyB...)
			default:
				for d := byte(0); d < fanout; d++ {
					next = append(next, append(slices.Clone(p), d))
				}
			}
		}
		open = next
	}
	return res
}

// diff returns the entries only in a and only in b (both sorted).
func diff(a, b []Hash) (onlyA, onlyB []Hash) {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || (i < len(a) && bytes.Compare(a[i][:], b[j][:]) < 0):
			onlyA = append(onlyA, a[i])
			i++
		case i == len(a) || bytes.Compare(a[i][:], b[j][:]) > 0:
			onlyB = append(onlyB, b[j])
			j++
		default:
			i, j = i+1, j+1
		}
	}
	return onlyA, onlyB
}
