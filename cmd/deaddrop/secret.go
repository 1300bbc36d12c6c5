package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// errSecretOnCommandLine refuses a recovery phrase given as an argument:
// other users see a command line in ps, and the shell keeps it in its
// history file.
var errSecretOnCommandLine = errors.New("the recovery phrase is not taken on the command line, where ps and shell history would keep it: " +
	"run 'deaddrop restore' and type it when asked, or pipe it in ('deaddrop restore < file')")

// readSecret reads one line from standard input, asking for it first when
// standard input is a terminal.
func (c *cli) readSecret(what string) (string, error) {
	if f, ok := c.in.(*os.File); ok && isTerminal(f) {
		fmt.Fprintf(c.err, "%s (shown as you type; Enter when done): ", what)
	}
	line, err := bufio.NewReader(io.LimitReader(c.in, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	line = strings.TrimSpace(line)
	if line == "" {
		return "", usageError{fmt.Errorf("no %s on standard input", what)}
	}
	return line, nil
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
