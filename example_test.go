package deaddrop_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/deaddrop/deaddrop"
)

// Alice invites bob, bob accepts and writes while alice is offline, alice
// receives. Both use one embedded store directory; with Swarm or IPFS the
// store would be "swarm:http://…" or "ipfs:http://…".
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "deaddrop-example")
	defer os.RemoveAll(dir)
	cfg := deaddrop.Config{Store: "embedded:" + filepath.Join(dir, "store")}

	alice, _ := deaddrop.Init(ctx, filepath.Join(dir, "alice"), "alice", cfg)
	defer alice.Close()
	bob, _ := deaddrop.Init(ctx, filepath.Join(dir, "bob"), "bob", cfg)
	defer bob.Close()

	invite, _ := alice.Invite("bob")         // give this text to bob
	bob.Accept(ctx, invite, "")              // no handshake: bob can write at once
	bob.Send(ctx, "alice", "hello from bob") // lands in a secret slot

	res, _ := alice.Receive(ctx, nil)
	fmt.Println(res.Joined)
	for _, m := range res.New {
		fmt.Printf("%s: %s\n", m.Contact, m.Body)
	}
	// Output:
	// [bob]
	// bob: hello from bob
}
