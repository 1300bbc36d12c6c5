package merkle

import (
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
)

// The RFC 6962 test leaves used by Certificate Transparency implementations,
// and the roots of their first n, for n = 1..8.
var ctLeaves = []string{"", "00", "10", "2021", "3031", "40414243", "5051525354555657",
	"606162636465666768696a6b6c6d6e6f"}

var ctRoots = []string{
	"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
	"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
	"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
	"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
	"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
	"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
	"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}

func ctTree(t *testing.T) *Tree {
	tr := new(Tree)
	for _, l := range ctLeaves {
		b, _ := hex.DecodeString(l)
		tr.Append(LeafHash(b))
	}
	return tr
}

func TestRootsRFC6962(t *testing.T) {
	tr := ctTree(t)
	if r := tr.RootAt(0); hex.EncodeToString(r[:]) != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Errorf("empty root %x", r)
	}
	for n, want := range ctRoots {
		if r := tr.RootAt(uint64(n + 1)); hex.EncodeToString(r[:]) != want {
			t.Errorf("root of %d leaves: %x, want %s", n+1, r, want)
		}
	}
}

// Every inclusion and consistency proof of trees up to 70 leaves verifies,
// and fails against a wrong root, leaf, index or size.
func TestProofsExhaustive(t *testing.T) {
	tr := new(Tree)
	for i := 0; i < 70; i++ {
		tr.Append(LeafHash([]byte(fmt.Sprint(i))))
	}
	wrong := LeafHash([]byte("wrong"))
	for n := uint64(1); n <= tr.Size(); n++ {
		root := tr.RootAt(n)
		for i := uint64(0); i < n; i++ {
			p, err := tr.InclusionProof(i, n)
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyInclusion(i, n, tr.Leaf(i), p, root); err != nil {
				t.Fatalf("inclusion %d/%d: %v", i, n, err)
			}
			if VerifyInclusion(i, n, wrong, p, root) == nil || VerifyInclusion(i, n, tr.Leaf(i), p, wrong) == nil {
				t.Fatalf("inclusion %d/%d accepted a wrong leaf or root", i, n)
			}
			if n > 1 && VerifyInclusion((i+1)%n, n, tr.Leaf(i), p, root) == nil {
				t.Fatalf("inclusion %d/%d accepted at another index", i, n)
			}
		}
		for m := uint64(0); m <= n; m++ {
			p, err := tr.ConsistencyProof(m, n)
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyConsistency(m, n, tr.RootAt(m), root, p); err != nil {
				t.Fatalf("consistency %d→%d: %v", m, n, err)
			}
			if m > 0 && m < n && VerifyConsistency(m, n, wrong, root, p) == nil {
				t.Fatalf("consistency %d→%d accepted a wrong old root", m, n)
			}
		}
	}
	if _, err := tr.InclusionProof(5, 3); !errors.Is(err, ErrRange) {
		t.Fatalf("out of range: %v", err)
	}
}

// Appending after a root was computed leaves earlier roots unchanged (the
// cache holds only complete subtrees).
func TestIncrementalRoots(t *testing.T) {
	a, b := new(Tree), new(Tree)
	for i := 0; i < 300; i++ {
		h := LeafHash([]byte{byte(i), byte(i >> 8)})
		a.Append(h)
		a.Root()
		b.Append(h)
	}
	for n := uint64(0); n <= 300; n += 7 {
		if a.RootAt(n) != b.RootAt(n) {
			t.Fatalf("root of %d differs with caching", n)
		}
	}
}

func BenchmarkAppendAndRoot(b *testing.B) {
	tr := new(Tree)
	for i := 0; b.Loop(); i++ {
		tr.Append(LeafHash([]byte{byte(i), byte(i >> 8), byte(i >> 16)}))
		tr.Root()
	}
}

// The frontier gives the same root as the tree at every size.
func TestFrontier(t *testing.T) {
	tr := new(Tree)
	f := new(Frontier)
	if f.Root() != tr.Root() {
		t.Fatal("empty roots differ")
	}
	for i := 0; i < 300; i++ {
		leaf := LeafHash([]byte(fmt.Sprint(i)))
		tr.Append(leaf)
		f.Append(leaf)
		if f.Root() != tr.Root() || !f.Valid() {
			t.Fatalf("size %d: frontier root differs from the tree's", i+1)
		}
	}
}
