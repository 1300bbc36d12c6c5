// Command withnode starts a real storage node on loopback, runs a command
// with DEADDROP_DEMO_STORE set to it, and stops the node:
//
//	go run ./internal/devnode/withnode bee  -- bash scripts/demo.sh
//	go run ./internal/devnode/withnode kubo -- bash scripts/demo.sh
package main

import (
	"fmt"
	"os"
	"os/exec"
)

func main() {
	if len(os.Args) < 4 || os.Args[2] != "--" {
		fmt.Fprintln(os.Stderr, "usage: withnode bee|kubo -- command [args...]")
		os.Exit(2)
	}
	os.Exit(run(os.Args[1], os.Args[3:]))
}

func run(kind string, command []string) int {
	dir, err := os.MkdirTemp("", "deaddrop-"+kind)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	node, store, err := start(kind, dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "withnode: %v\n", err)
		return 1
	}
	defer node.Stop()
	fmt.Fprintf(os.Stderr, "withnode: %s node ready at %s\n", kind, node.URL)
	cmd := exec.Command(command[0], command[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), "DEADDROP_DEMO_STORE="+store)
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
