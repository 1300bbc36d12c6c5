// Command deaddrop is an end-to-end encrypted chat over decentralized storage
// that works while the other side is offline.
//
//	deaddrop init alice                      # create an account
//	deaddrop invite bob                      # print an invite for bob
//	deaddrop accept <invite>                 # (bob) start the conversation
//	deaddrop send alice "hello"              # send
//	deaddrop read                            # fetch and show new messages
//	deaddrop chat alice                      # interactive
//
// Each account lives in a home directory (--home, $DEADDROP_HOME, default
// ~/.deaddrop); --store picks the backend.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// usageError marks errors in how the command was called (exit status 2).
type usageError struct{ error }

func main() {
	err := newRootCmd(os.Stdin, os.Stdout, os.Stderr).Execute()
	if err == nil {
		return
	}
	fmt.Fprintf(os.Stderr, "deaddrop: %v\n", err)
	var ue usageError
	if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command") {
		os.Exit(2) // how the command was called, not what it did
	}
	os.Exit(1)
}
