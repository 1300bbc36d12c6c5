package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

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

// completeContact completes a command's first argument with contact names
// ('deaddrop completion bash|zsh|fish' prints the script). It needs the
// home: while another process holds it, it completes nothing.
func (c *cli) completeContact(cmd *cobra.Command, a []string, prefix string) ([]string, cobra.ShellCompDirective) {
	if len(a) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	_, cl, done, err := c.session()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	defer done()
	contacts, err := cl.Contacts()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var names []string
	for _, ct := range contacts {
		if strings.HasPrefix(ct.Name, prefix) {
			names = append(names, ct.Name)
		}
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}

func (c *cli) readReceiptsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "read-receipts [on|off]",
		Short: "Show, or turn on or off, sending read receipts (off by default: they tell contacts when you read)",
		Example: `  deaddrop read-receipts on
  deaddrop read-receipts`,
		Args: func(_ *cobra.Command, a []string) error {
			if len(a) > 1 || len(a) == 1 && a[0] != "on" && a[0] != "off" {
				return usageError{errors.New("expected on, off or nothing")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, a []string) error {
			_, cl, done, err := c.session()
			if err != nil {
				return err
			}
			defer done()
			if len(a) == 1 {
				if err := cl.SetReadReceipts(a[0] == "on"); err != nil {
					return err
				}
			}
			on, err := cl.ReadReceipts()
			if err != nil {
				return err
			}
			if on {
				fmt.Fprintln(c.out, "read receipts: on (contacts see which of their messages you have seen)")
			} else {
				fmt.Fprintln(c.out, "read receipts: off (contacts see delivery only)")
			}
			return nil
		},
	}
}
