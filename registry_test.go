package deaddrop_test

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/deaddrop/deaddrop"
	"github.com/deaddrop/deaddrop/feed"
)

// Without an import of its backend, a network store kind is unknown, and
// the error says which import adds it.
func TestOpenStoreUnregistered(t *testing.T) {
	_, err := deaddrop.OpenStore(context.Background(), "ipfs:http://127.0.0.1:5001")
	if !errors.Is(err, feed.ErrUnknownKind) || !strings.Contains(err.Error(), `import _ "github.com/deaddrop/deaddrop/feed/ipfs"`) {
		t.Fatalf("ipfs without its import: %v", err)
	}
	s, err := deaddrop.OpenStore(context.Background(), "embedded:"+t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
}

// The root package links neither network backend nor libp2p: a program
// using only the embedded store stays small (docs/benchmarks.md, "Binary
// size").
func TestRootLinksNoBackend(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "github.com/libp2p/") || strings.HasPrefix(pkg, "github.com/ipfs/") ||
			pkg == "github.com/deaddrop/deaddrop/feed/swarm" || pkg == "github.com/deaddrop/deaddrop/feed/ipfs" {
			t.Errorf("the root package depends on %s", pkg)
		}
	}
}
