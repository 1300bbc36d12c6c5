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
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
)

// usageError marks errors in how the command was called (exit status 2).
type usageError struct{ error }

func main() {
	// Ctrl-C is seen here too, to word the error (the commands' contexts
	// end on it); a second one ends a command that does not stop.
	var signals atomic.Int32
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		for range sig {
			if signals.Add(1) > 1 {
				fmt.Fprintln(os.Stderr, "deaddrop: interrupted twice: stopping now")
				os.Exit(130)
			}
		}
	}()
	limitMemory()
	stopProfile := heapProfile()
	err := newRootCmd(os.Stdin, os.Stdout, os.Stderr).Execute()
	stopProfile()
	if err == nil {
		return
	}
	interrupted := signals.Load() > 0
	fmt.Fprintf(os.Stderr, "deaddrop: %s\n", summarize(err, interrupted))
	var ue usageError
	if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command") {
		os.Exit(2) // how the command was called, not what it did
	}
	os.Exit(1)
}
