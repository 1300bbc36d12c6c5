package deaddrop_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

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

// Alice loses her only device; with the recovery phrase alone a new device
// gets the account and its whole history back, and bob's next message
// reaches it.
func ExampleRestore() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "deaddrop-example")
	defer os.RemoveAll(dir)
	cfg := deaddrop.Config{Store: "embedded:" + filepath.Join(dir, "store")}

	alice, _ := deaddrop.Init(ctx, filepath.Join(dir, "alice"), "alice", cfg)
	phrase := alice.RecoveryPhrase() // shown once: the user writes it down
	bob, _ := deaddrop.Init(ctx, filepath.Join(dir, "bob"), "bob", cfg)
	defer bob.Close()
	invite, _ := alice.Invite("bob")
	bob.Accept(ctx, invite, "")
	alice.Receive(ctx, nil)
	alice.Send(ctx, "bob", "remember this")
	alice.Close()
	os.RemoveAll(filepath.Join(dir, "alice")) // the device is gone

	phone, stats, err := deaddrop.Restore(ctx, filepath.Join(dir, "phone"), phrase, "phone", cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer phone.Close()
	fmt.Println("restored", stats.Messages, "message")
	for range 3 { // bob's device meets the new one through the store
		bob.Receive(ctx, nil)
		phone.Receive(ctx, nil)
	}
	bob.Send(ctx, "alice", "welcome back")
	phone.Receive(ctx, nil)
	history, _ := phone.History("bob", deaddrop.Query{})
	for _, m := range history {
		fmt.Println(m.Body)
	}
	// Output:
	// restored 1 message
	// remember this
	// welcome back
}

// Bob sends a file; alice sees it in her messages and saves it. The file is
// encrypted and uploaded as the store's bulk content; the message carries
// its key, and the file appears under its name only once verified.
func ExampleClient_SendFile() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "deaddrop-example")
	defer os.RemoveAll(dir)
	cfg := deaddrop.Config{Store: "embedded:" + filepath.Join(dir, "store")}
	alice, _ := deaddrop.Init(ctx, filepath.Join(dir, "alice"), "alice", cfg)
	defer alice.Close()
	bob, _ := deaddrop.Init(ctx, filepath.Join(dir, "bob"), "bob", cfg)
	defer bob.Close()
	invite, _ := alice.Invite("bob")
	bob.Accept(ctx, invite, "")

	bob.SendFile(ctx, "alice", strings.NewReader("minutes of the meeting"), "minutes.txt", "text/plain", "as promised")

	res, _ := alice.Receive(ctx, nil)
	for _, m := range res.New {
		if file, _ := deaddrop.AttachmentOf(m); file != nil {
			fmt.Printf("%s: %s [%s, %d bytes]\n", m.Contact, m.Body, file.Name, file.Size)
			path, _ := alice.SaveAttachment(ctx, deaddrop.MessageID(m), dir, nil)
			saved, _ := os.ReadFile(path)
			fmt.Println(string(saved))
		}
	}
	// Output:
	// bob: as promised [minutes.txt, 22 bytes]
	// minutes of the meeting
}
