package main

// The CLI speaks to every store: each backend registers its kind ("swarm",
// "ipfs") with package feed when imported.
import (
	_ "github.com/deaddrop/deaddrop/feed/ipfs"
	_ "github.com/deaddrop/deaddrop/feed/swarm"
)
