package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"
)

// --json: listing commands print one JSON document, the same object the
// daemon's method of that name returns (package daemon's schema, documented
// in docs/cli.md), instead of lines for people.

func (c *cli) jsonFlag(cmd *cobra.Command) *cobra.Command {
	cmd.Flags().BoolVar(&c.json, "json", false, "print JSON (the schema in docs/cli.md) instead of text")
	return cmd
}

func (c *cli) printJSON(v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(c.out, "%s\n", data)
	return err
}

// plural says "1 contact", "2 contacts", "0 messages".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
