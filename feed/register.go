package feed

import (
	"context"
	"fmt"
	"slices"
	"sync"
)

// Backends register themselves, as database/sql drivers do: a store kind
// ("swarm", "ipfs") names an Opener that its package registers in init. A
// program links only the backends it imports — one using the embedded store
// alone does not link Bee's or Kubo's clients (and IPFS's libp2p):
//
//	import _ "github.com/deaddrop/deaddrop/feed/swarm" // swarm:<Bee API URL>
//	import _ "github.com/deaddrop/deaddrop/feed/ipfs"  // ipfs:<Kubo RPC URL>
//
// The embedded store is always there ("embedded:<dir>").

// Opener opens a store of one kind from the rest of its specification (a
// URL). A node that does not answer is ErrUnavailable.
type Opener func(ctx context.Context, arg string) (Store, error)

var (
	openersMu sync.RWMutex
	openers   = map[string]Opener{
		"embedded": func(_ context.Context, dir string) (Store, error) { return OpenEmbedded(dir) },
	}
)

// Register makes a store kind available to OpenStore-style lookups (the root
// package's OpenStore). It panics if kind is registered twice or open is nil,
// as sql.Register does: both are programming errors.
func Register(kind string, open Opener) {
	openersMu.Lock()
	defer openersMu.Unlock()
	if open == nil {
		panic("feed: Register of a nil opener for " + kind)
	}
	if _, dup := openers[kind]; dup {
		panic("feed: Register called twice for store kind " + kind)
	}
	openers[kind] = open
}

// Lookup returns the opener registered for kind.
func Lookup(kind string) (Opener, bool) {
	openersMu.RLock()
	defer openersMu.RUnlock()
	open, ok := openers[kind]
	return open, ok
}

// Kinds lists the registered store kinds, sorted.
func Kinds() []string {
	openersMu.RLock()
	defer openersMu.RUnlock()
	var ks []string
	for k := range openers {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// ErrUnknownKind is wrapped by lookups of a kind nobody registered.
var ErrUnknownKind = fmt.Errorf("unknown store kind")
