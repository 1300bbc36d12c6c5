package main

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// summarize words an error for people. A joined error from a poll against a
// store that does not answer holds one line per slot — hundreds that differ
// only in a slot address or a number — and Ctrl-C cancels every operation in
// flight at once: each group of lines alike is shown once with its count, and
// an interrupted command says only that.
func summarize(err error, interrupted bool) string {
	if interrupted && errors.Is(err, context.Canceled) {
		return "interrupted (nothing is lost: what was committed stays, the rest runs next time)"
	}
	lines := strings.Split(err.Error(), "\n")
	type group struct {
		first string
		n     int
	}
	var order []string
	groups := map[string]*group{}
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		k := variable.ReplaceAllString(l, "#")
		g, ok := groups[k]
		if !ok {
			g = &group{first: l}
			groups[k] = g
			order = append(order, k)
		}
		g.n++
	}
	var b strings.Builder
	for i, k := range order {
		if i > 0 {
			b.WriteString("\n")
		}
		g := groups[k]
		b.WriteString(g.first)
		if g.n > 1 {
			fmt.Fprintf(&b, " (and %d more like it)", g.n-1)
		}
	}
	return b.String()
}

// variable matches what differs between otherwise identical error lines:
// hex (slot addresses, IDs) and decimal numbers.
var variable = regexp.MustCompile(`[0-9a-fA-F]{8,}|\d+`)
