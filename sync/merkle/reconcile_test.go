package merkle

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

func randomSet(rng *rand.Rand, n int) []Hash {
	s := make([]Hash, n)
	for i := range s {
		binary.LittleEndian.PutUint64(s[i][:], rng.Uint64())
		s[i] = LeafHash(s[i][:8])
	}
	return sorted(s)
}

func sorted(s []Hash) []Hash {
	slices.SortFunc(s, func(a, b Hash) int { return bytes.Compare(a[:], b[:]) })
	return slices.Compact(s)
}

// Split d differences between the two sides (half only in A, half only in
// B) over a common set of n, and check the result is exact and cheap.
func scenario(seed uint64, n, d int) (a, b, wantA, wantB []Hash) {
	rng := rand.New(rand.NewPCG(seed, 3))
	common := randomSet(rng, n-d)
	extra := randomSet(rng, d)
	wantA, wantB = sorted(slices.Clone(extra[:d/2])), sorted(slices.Clone(extra[d/2:]))
	a = sorted(append(slices.Clone(common), wantA...))
	b = sorted(append(slices.Clone(common), wantB...))
	return
}

func TestReconcileExact(t *testing.T) {
	for _, c := range []struct{ n, d int }{{0, 0}, {1, 1}, {10, 0}, {10, 10}, {1000, 1}, {1000, 37}, {10000, 100}} {
		a, b, wantA, wantB := scenario(uint64(c.n+c.d), c.n, c.d)
		res := Reconcile(a, b)
		if !slices.Equal(sorted(res.OnlyA), wantA) || !slices.Equal(sorted(res.OnlyB), wantB) {
			t.Fatalf("n=%d d=%d: got %d/%d differences, want %d/%d", c.n, c.d, len(res.OnlyA), len(res.OnlyB), len(wantA), len(wantB))
		}
	}
}

// The cost grows with d log n, far below sending the log (32 bytes per entry).
func TestReconcileCost(t *testing.T) {
	const n = 10000
	for _, d := range []int{1, 10, 100} {
		a, b, _, _ := scenario(uint64(d), n, d)
		res := Reconcile(a, b)
		full := 32 * n
		t.Logf("n=%d d=%d: %d bytes in %d rounds (whole log: %d bytes, %.2f%%)", n, d, res.Bytes, res.Rounds, full, 100*float64(res.Bytes)/float64(full))
		if limit := 2000 + d*1500; res.Bytes > limit {
			t.Errorf("d=%d cost %d bytes, over %d", d, res.Bytes, limit)
		}
	}
}

func BenchmarkReconcile(b *testing.B) {
	for _, d := range []int{1, 10, 100} {
		a, bb, _, _ := scenario(uint64(d), 10000, d)
		b.Run(fmt.Sprintf("n=10000/d=%d", d), func(b *testing.B) {
			var res Result
			for b.Loop() {
				res = Reconcile(a, bb)
			}
			b.ReportMetric(float64(res.Bytes), "bytes")
			b.ReportMetric(float64(res.Rounds), "rounds")
		})
	}
}
