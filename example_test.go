package deaddrop_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"

	"github.com/deaddrop/deaddrop"
)

// Alice invites bob, bob accepts and writes while alice is offline, alice
// receives. Both use one embedded store directory; with Swarm or IPFS the
// store would be "swarm:http://…" or "ipfs:http://…" (and the program
// imports the backend: import _ "github.com/deaddrop/deaddrop/feed/swarm").
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "deaddrop-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	cfg := deaddrop.Config{Store: "embedded:" + filepath.Join(dir, "store")}

	alice, err := deaddrop.Init(ctx, filepath.Join(dir, "alice"), "alice", cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer alice.Close()
	bob, err := deaddrop.Init(ctx, filepath.Join(dir, "bob"), "bob", cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer bob.Close()

	invite, err := alice.Invite("bob") // give this text to bob
	if err != nil {
		log.Fatal(err)
	}
	if _, err := bob.Accept(ctx, invite, ""); err != nil { // no handshake: bob can write at once
		log.Fatal(err)
	}
	_, err = bob.Send(ctx, "alice", "hello from bob")
	switch {
	case errors.Is(err, deaddrop.ErrNotStored):
		// Committed: Receive republishes it; do not send it again.
	case err != nil:
		log.Fatal(err) // nothing was sent
	}

	res, err := alice.Receive(ctx, nil)
	if err != nil {
		log.Print(err) // a store error: try again later, nothing is lost
	}
	fmt.Println(res.Joined)
	for _, m := range res.New {
		fmt.Printf("%s (%s): %s\n", m.Contact, m.Dir, m.Body)
	}
	// Output:
	// [bob]
	// bob (incoming): hello from bob
}

// A client that retries a send after an error (a timeout, a crash) passes
// its own ID for the message: the retry is the same message, not a second.
func ExampleClient_SendWith() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "deaddrop-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	cfg := deaddrop.Config{Store: "embedded:" + filepath.Join(dir, "store")}
	alice, err := deaddrop.Init(ctx, filepath.Join(dir, "alice"), "alice", cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer alice.Close()
	bob, err := deaddrop.Init(ctx, filepath.Join(dir, "bob"), "bob", cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer bob.Close()
	invite, err := alice.Invite("bob")
	if err != nil {
		log.Fatal(err)
	}
	if _, err := bob.Accept(ctx, invite, ""); err != nil {
		log.Fatal(err)
	}

	opts := deaddrop.SendOptions{ClientID: "draft-42"}
	var ids []string
	for range 2 { // the second try could follow a timeout
		m, err := bob.SendWith(ctx, "alice", "see you at 8", opts)
		if err != nil && !errors.Is(err, deaddrop.ErrNotStored) {
			log.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	fmt.Println("same message:", ids[0] == ids[1])

	res, err := alice.Receive(ctx, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(res.New), "message received")
	// Output:
	// same message: true
	// 1 message received
}

// Alice loses her only device; with the recovery phrase alone a new device
// gets the account and its whole history back, and bob's next message
// reaches it.
func ExampleRestore() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "deaddrop-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	cfg := deaddrop.Config{Store: "embedded:" + filepath.Join(dir, "store")}
	must := func(err error) {
		if err != nil {
			log.Fatal(err)
		}
	}

	alice, err := deaddrop.Init(ctx, filepath.Join(dir, "alice"), "alice", cfg)
	must(err)
	phrase := alice.RecoveryPhrase() // shown once: the user writes it down
	bob, err := deaddrop.Init(ctx, filepath.Join(dir, "bob"), "bob", cfg)
	must(err)
	defer bob.Close()
	invite, err := alice.Invite("bob")
	must(err)
	_, err = bob.Accept(ctx, invite, "")
	must(err)
	_, err = alice.Receive(ctx, nil)
	must(err)
	_, err = alice.Send(ctx, "bob", "remember this")
	must(err)
	must(alice.Close())
	must(os.RemoveAll(filepath.Join(dir, "alice"))) // the device is gone

	phone, stats, err := deaddrop.Restore(ctx, filepath.Join(dir, "phone"), phrase, "phone", cfg)
	must(err)
	defer phone.Close()
	fmt.Println("restored", stats.Messages, "message")
	for range 3 { // bob's device meets the new one through the store
		_, err = bob.Receive(ctx, nil)
		must(err)
		_, err = phone.Receive(ctx, nil)
		must(err)
	}
	_, err = bob.Send(ctx, "alice", "welcome back")
	must(err)
	_, err = phone.Receive(ctx, nil)
	must(err)
	history, err := phone.History("bob", deaddrop.Query{})
	must(err)
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
