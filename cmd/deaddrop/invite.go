package main

import (
	"fmt"
	"time"

	"github.com/deaddrop/deaddrop/daemon"
	"github.com/deaddrop/deaddrop/internal/duration"
	"github.com/deaddrop/deaddrop/sync"
	"github.com/spf13/cobra"
)

// inviteCmd is 'deaddrop invite <contact>' and its subcommands for the
// invites still waiting: list and cancel. A person to be called "list",
// "cancel" or "new" is invited with 'deaddrop invite new <name>'.
func (c *cli) inviteCmd() *cobra.Command {
	ttl := duration.Value(7 * 24 * time.Hour)
	cmd := &cobra.Command{
		Use:   "invite <contact>",
		Short: "Print a single-use invite for the person you will call <contact> (list, cancel: pending invites)",
		Example: `  deaddrop invite bob              # valid 7 days
  deaddrop invite bob --ttl 1d
  deaddrop invite list --json`,
		Args: args(1, "one argument: the name you will call the invited person (or: list, cancel <name>)"),
		RunE: func(cmd *cobra.Command, a []string) error { return c.invite(a[0], time.Duration(ttl)) },
	}
	cmd.PersistentFlags().Var(&ttl, "ttl", "how long the invite stays valid (e.g. 1d, 36h, 2w)")
	cmd.AddCommand(&cobra.Command{
		Use:   "new <contact>",
		Short: "Print a single-use invite for <contact> (for a name like 'list')",
		Args:  args(1, "one argument: the name you will call the invited person"),
		RunE:  func(cmd *cobra.Command, a []string) error { return c.invite(a[0], time.Duration(ttl)) },
	}, c.jsonFlag(&cobra.Command{
		Use:   "list",
		Short: "List the invites nobody has used yet",
		Args:  args(0, "no arguments"),
		RunE:  func(cmd *cobra.Command, a []string) error { return c.listInvites() },
	}), &cobra.Command{
		Use:   "cancel <contact>",
		Short: "Withdraw the pending invite for <contact>: a first message sent with it is ignored",
		Args:  args(1, "one argument: the name of the pending invite"),
		RunE:  func(cmd *cobra.Command, a []string) error { return c.cancelInvite(a[0]) },
	})
	return cmd
}

func (c *cli) invite(name string, ttl time.Duration) error {
	if err := sync.ValidName(name); err != nil {
		return usageError{err}
	}
	if ttl <= 0 {
		return usageError{fmt.Errorf("--ttl must be positive, got %v", ttl)}
	}
	_, cl, done, err := c.session()
	if err != nil {
		return err
	}
	defer done()
	inv, err := cl.InviteFor(name, ttl)
	if err != nil {
		return err
	}
	fmt.Fprintln(c.out, inv)
	v := duration.Value(ttl)
	fmt.Fprintf(c.err, "give this invite to %s (single use, valid %s); 'deaddrop read' picks up their first message.\n"+
		"Compare fingerprints ('deaddrop contacts') once they have joined.\n", name, v.String())
	return nil
}

func (c *cli) listInvites() error {
	_, cl, done, err := c.session()
	if err != nil {
		return err
	}
	defer done()
	invites, err := cl.PendingInvites()
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(map[string]any{"invites": daemon.FromInvites(invites)})
	}
	if len(invites) == 0 {
		fmt.Fprintln(c.out, "no pending invites")
	}
	for _, inv := range invites {
		state := "expires " + inv.Expires.Local().Format(time.DateTime)
		if !time.Now().Before(inv.Expires) {
			state = "expired " + inv.Expires.Local().Format(time.DateTime)
		}
		fmt.Fprintf(c.out, "%-16s created %s, %s\n", inv.Label, inv.Created.Local().Format(time.DateTime), state)
	}
	return nil
}

func (c *cli) cancelInvite(name string) error {
	if err := sync.ValidName(name); err != nil {
		return usageError{err}
	}
	_, cl, done, err := c.session()
	if err != nil {
		return err
	}
	defer done()
	if err := cl.CancelInvite(name); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "cancelled the invite for %s\n", name)
	return nil
}
