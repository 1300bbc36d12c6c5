package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/deaddrop/deaddrop"
	"github.com/deaddrop/deaddrop/daemon"
	"github.com/deaddrop/deaddrop/internal/duration"
	"github.com/deaddrop/deaddrop/ratchet"
	"github.com/deaddrop/deaddrop/sync"
	"github.com/spf13/cobra"
)

func (c *cli) initCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use: "init <name>",
		Example: `  deaddrop init alice
  deaddrop init alice --store swarm:http://127.0.0.1:1633`,
		Short: "Create an account called <name> in the home directory",
		Args:  args(1, "one argument: your name, e.g. 'deaddrop init alice'"),
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := sync.ValidName(a[0]); err != nil {
				return usageError{err}
			}
			ctx, cancel := signalContext()
			defer cancel()
			cl, err := deaddrop.Init(ctx, c.home, a[0], c.config())
			if err != nil {
				return err
			}
			defer cl.Close()
			fmt.Fprintf(c.out, "created account %s in %s\nstore: %s\nfingerprint: %s\n", a[0], c.home, cl.Store(), cl.Fingerprint())
			if phrase := cl.RecoveryPhrase(); phrase != "" {
				fmt.Fprintf(c.out, "recovery phrase: %s\n", phrase)
				fmt.Fprintln(c.err, "write the recovery phrase down now: it is shown only once. With it alone, 'deaddrop restore' brings back\n"+
					"the account and its whole history on a new device; anyone who has it can read that history.")
			} else {
				fmt.Fprintln(c.err, "history is off: no recovery phrase, no restore, no second device")
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&c.noHistory, "no-history", false, "keep no history log on the store (no recovery phrase, no restore, no second device; more forward secrecy)")
	return cmd
}

func (c *cli) acceptCmd() *cobra.Command {
	var as string
	cmd := &cobra.Command{
		Use: "accept <invite>",
		Example: `  deaddrop accept dd1…
  deaddrop accept - --as alice < invite.txt`,
		Short: "Accept an invite and start the conversation (the inviter may be offline)",
		Args:  args(1, "one argument: the invite text ('-' reads it from standard input)"),
		RunE: func(cmd *cobra.Command, a []string) error {
			text, err := c.argOrStdin(a[0])
			if err != nil {
				return err
			}
			if as != "" {
				if err := sync.ValidName(as); err != nil {
					return usageError{err}
				}
			}
			ctx, cl, done, err := c.session()
			if err != nil {
				return err
			}
			defer done()
			text = strings.TrimSpace(text)
			name, err := cl.Accept(ctx, text, as)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.out, "accepted: you can now write to %s\n", name)
			if inv, err := ratchet.ParseInvite(text); err == nil && as == "" && name != inv.Name {
				fmt.Fprintf(c.out, "(you already have a contact or invite called %s, so this one is called %s)\n", inv.Name, name)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&as, "as", "", "name to call the inviter (default: the name in the invite)")
	return cmd
}

func (c *cli) sendCmd() *cobra.Command {
	var file, mediaType string
	cmd := &cobra.Command{
		Use: "send <contact> <message...> | send <contact> --file PATH [message...]",
		Example: `  deaddrop send bob hello there
  echo 'multi-line' | deaddrop send bob -
  deaddrop send bob --file photo.jpg 'from the beach'`,
		ValidArgsFunction: c.completeContact,
		Short:             fmt.Sprintf("Send a message (at most %d bytes; '-' reads it from standard input) or a file (at most %d MiB)", deaddrop.MaxMessageSize, deaddrop.MaxFileSize>>20),
		Args: func(_ *cobra.Command, a []string) error {
			if len(a) < 1 || file == "" && len(a) < 2 {
				return usageError{errors.New("expected a contact and a message, e.g. 'deaddrop send bob hello', or a contact and --file PATH")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, a []string) error {
			body := strings.Join(a[1:], " ")
			if file == "" || body == "-" {
				var err error
				if body, err = c.argOrStdin(body); err != nil {
					return err
				}
			}
			ctx, cl, done, err := c.session()
			if err != nil {
				return c.viaDaemon(err, func(ctx context.Context, d *daemon.Conn) error {
					var res daemon.SendResult
					if file != "" {
						// The daemon runs on this machine (its socket is in the
						// home): it reads the file itself.
						abs, err := filepath.Abs(file)
						if err != nil {
							return err
						}
						p := map[string]string{"contact": a[0], "path": abs, "mediaType": mediaType, "text": body}
						if err := d.Call(ctx, "sendFile", p, &res); err != nil {
							return err
						}
					} else if err := d.Call(ctx, "send", map[string]string{"contact": a[0], "body": body}, &res); err != nil {
						return err
					}
					if res.Queued {
						fmt.Fprintf(c.out, "queued for %s: %s\n", a[0], res.Warning)
						return nil
					}
					fmt.Fprintf(c.out, "sent to %s (%s)\n", a[0], res.Message.State)
					return nil
				})
			}
			defer done()
			var m deaddrop.Message
			if file != "" {
				m, err = c.sendFile(ctx, cl, a[0], file, mediaType, body)
			} else {
				m, err = cl.Send(ctx, a[0], body)
			}
			if errors.Is(err, sync.ErrNotStored) {
				fmt.Fprintf(c.out, "queued for %s: %v\n", a[0], err)
				return nil
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(c.out, "sent to %s (%s)\n", a[0], m.State)
			if _, err := cl.Keep(ctx, true); err != nil {
				fmt.Fprintf(c.err, "warning: keepers not updated (retried on every read): %v\n", err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&file, "file", "", "send this file (encrypted, uploaded to the store; the message carries its key)")
	cmd.Flags().StringVar(&mediaType, "type", "", "the file's media type (default: from its extension)")
	return cmd
}

// argOrStdin returns s, or standard input when s is "-".
func (c *cli) argOrStdin(s string) (string, error) {
	if s != "-" {
		return s, nil
	}
	b, err := io.ReadAll(io.LimitReader(c.in, 1<<20))
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(b), "\n"), nil
}

func (c *cli) readCmd() *cobra.Command {
	return c.jsonFlag(&cobra.Command{
		Use: "read [contact]",
		Example: `  deaddrop read
  deaddrop read bob --json`,
		ValidArgsFunction: c.completeContact,
		Short:             "Fetch new messages and show the unseen ones (all contacts, or one)",
		Args: func(_ *cobra.Command, a []string) error {
			if len(a) > 1 {
				return usageError{errors.New("expected at most one contact")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, a []string) error {
			ctx, cl, done, err := c.session()
			if err != nil {
				return c.viaDaemon(err, func(ctx context.Context, d *daemon.Conn) error {
					p := map[string]string{}
					if len(a) == 1 {
						p["contact"] = a[0]
					}
					var res daemon.ReadResult
					if err := d.Call(ctx, "read", p, &res); err != nil {
						return err
					}
					if c.json {
						return c.printJSON(res)
					}
					return c.printRead(res)
				})
			}
			defer done()
			if c.json {
				return c.readJSON(ctx, cl, a)
			}
			res, rerr := cl.Receive(ctx, c.progress())
			c.report(res)
			if err := c.showUnseen(cl, a); err != nil {
				return err
			}
			if rerr != nil {
				return fmt.Errorf("not everything could be fetched or republished (nothing is lost: the next read, chat or daemon tries again): %w", rerr)
			}
			return nil
		},
	})
}

// readJSON is read --json: the daemon's read result.
func (c *cli) readJSON(ctx context.Context, cl *deaddrop.Client, only []string) error {
	out := daemon.NewReadResult(cl.Receive(ctx, nil))
	msgs, err := cl.Unseen(only...)
	if err != nil {
		return err
	}
	out.Messages = daemon.FromMessages(msgs)
	if err := c.printJSON(out); err != nil {
		return err
	}
	return cl.MarkSeen(msgs)
}

// progress prints catch-up progress to stderr once it is more than a few
// messages.
func (c *cli) progress() deaddrop.Progress {
	return func(contact string, delivered int) {
		if delivered >= 16 {
			fmt.Fprintf(c.err, "catching up with %s: %d messages\n", contact, delivered)
		}
	}
}

// report prints what a receive did besides new messages: joins, receipts,
// problems.
func (c *cli) report(res *deaddrop.PollResult) {
	if res == nil {
		return
	}
	for _, name := range res.Joined {
		fmt.Fprintf(c.out, "%s accepted your invite\n", name)
	}
	var order []string
	counts := map[string]int{}
	for _, m := range res.Read {
		if counts[m.Contact] == 0 {
			order = append(order, m.Contact)
		}
		counts[m.Contact]++
	}
	for _, name := range order {
		fmt.Fprintf(c.out, "delivered to %s: %s\n", name, plural(counts[name], "message"))
	}
	if more := res.ReadCount - len(res.Read); more > 0 {
		fmt.Fprintf(c.out, "(and %d earlier ones)\n", more)
	}
	for _, p := range res.Problems {
		fmt.Fprintf(c.err, "warning: %v\n", p)
	}
}

func (c *cli) showUnseen(cl *deaddrop.Client, only []string) error {
	names := only
	if len(names) == 0 {
		contacts, err := cl.Contacts()
		if err != nil {
			return err
		}
		for _, ct := range contacts {
			names = append(names, ct.Name)
		}
	}
	for _, name := range names {
		msgs, err := cl.History(name, deaddrop.Query{UnseenOnly: true})
		if err != nil {
			return err
		}
		for _, m := range msgs {
			fmt.Fprintln(c.out, formatMessage(m))
		}
		if err := cl.MarkSeen(msgs); err != nil {
			return err
		}
	}
	return nil
}

func (c *cli) republishCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "republish",
		Short: "Put every unacknowledged message to the store again now (after a store restart or outage)",
		Args:  args(0, "no arguments"),
		RunE: func(cmd *cobra.Command, a []string) error {
			ctx, cl, done, err := c.session()
			if err != nil {
				return err
			}
			defer done()
			n, err := cl.RepublishAll(ctx)
			if err != nil {
				return fmt.Errorf("republished %s, some failed (they stay in the outbox): %w", plural(n, "message"), err)
			}
			fmt.Fprintf(c.out, "republished %s\n", plural(n, "message"))
			rep, err := cl.Keep(ctx, true)
			c.printPushes(rep)
			if err != nil {
				return fmt.Errorf("republished, but keepers were not all updated (retried on every read): %w", err)
			}
			return nil
		},
	}
}

func (c *cli) contactsCmd() *cobra.Command {
	return c.jsonFlag(&cobra.Command{
		Use: "contacts",
		Example: `  deaddrop contacts
  deaddrop contacts --json`,
		Short: "List contacts and their fingerprints",
		Args:  args(0, "no arguments"),
		RunE: func(cmd *cobra.Command, a []string) error {
			_, cl, done, err := c.session()
			if err != nil {
				return err
			}
			defer done()
			contacts, err := cl.Contacts()
			if err != nil {
				return err
			}
			if c.json {
				return c.printJSON(map[string]any{"contacts": daemon.FromContacts(contacts)})
			}
			if len(contacts) == 0 {
				fmt.Fprintln(c.out, "no contacts yet: 'deaddrop invite <name>' or 'deaddrop accept <invite>'")
			}
			for _, ct := range contacts {
				fp := ct.Fingerprint
				if fp == "" {
					fp = "(not yet verified: no signed device list from them yet)"
				}
				fmt.Fprintf(c.out, "%-16s %s  sent %d, received %d\n", ct.Name, fp, ct.Messages.Sent, ct.Messages.Received)
			}
			return nil
		},
	})
}

func (c *cli) statusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the account, its store, conversations and the outbox",
		Args:  args(0, "no arguments"),
		RunE: func(cmd *cobra.Command, a []string) error {
			ctx, cl, done, err := c.session()
			if err != nil {
				return err
			}
			defer done()
			if err := c.printStatus(cl); err != nil {
				return err
			}
			c.printStoreStatus(ctx, cl)
			return nil
		},
	}
}

func (c *cli) printStatus(cl *deaddrop.Client) error {
	fmt.Fprintf(c.out, "account %s (%s)\ndevice  %s\nhome    %s\nstore   %s\n", cl.Name(), cl.Fingerprint(), cl.DeviceID(), c.home, cl.Store())
	contacts, err := cl.Contacts()
	if err != nil {
		return err
	}
	for _, ct := range contacts {
		// Messages the user wrote and read, never the protocol's acks,
		// hellos and meta (the outbox lines below show those in flight).
		n := ct.Messages
		fmt.Fprintf(c.out, "contact %-12s sessions %d, sent %d (delivered %d, read %d), received %d\n",
			ct.Name, ct.Sessions, n.Sent, n.Delivered, n.Read, n.Received)
	}
	invites, err := cl.PendingInvites()
	if err != nil {
		return err
	}
	for _, inv := range invites {
		fmt.Fprintf(c.out, "invite  %-12s waiting, expires %s\n", inv.Label, inv.Expires.Local().Format(time.DateTime))
	}
	out, err := cl.Outbox()
	if err != nil {
		return err
	}
	for _, e := range out {
		state := "stored, waiting for the peer"
		if !e.Stored {
			state = "not stored yet"
		}
		if e.Session != e.Contact {
			state += " (a copy for another of their devices)"
		}
		line := fmt.Sprintf("outbox  %-12s #%d %s: %s, %d attempts, next %s", e.Contact, e.Seq, e.Kind, state, e.Attempts,
			e.NextTry.Local().Format(time.TimeOnly))
		if e.LastError != "" {
			line += " (last error: " + e.LastError + ")"
		}
		fmt.Fprintln(c.out, line)
	}
	return nil
}

// printStoreStatus says how long the store keeps the account's chunks and
// what keeps them alive; a store that does not answer is reported, not an
// error (status is what a user runs to find out what is wrong).
func (c *cli) printStoreStatus(ctx context.Context, cl *deaddrop.Client) {
	st, err := cl.StoreStatus(ctx)
	if err != nil {
		fmt.Fprintf(c.out, "keeping unknown: %v\n", err)
		return
	}
	if st.RecordLifetime > 0 {
		fmt.Fprintf(c.out, "keeping the store forgets a record %v after its last put; this device put every kept chunk again %v ago\n",
			st.RecordLifetime.Round(time.Hour), time.Since(st.LastRefresh).Round(time.Minute))
	}
	for _, k := range st.Keepers {
		fmt.Fprintf(c.out, "keeper  %s\n", k.URL)
	}
	if p := st.Postage; p != nil {
		fmt.Fprintf(c.out, "postage batch %s: %s left, fullest bucket %d of %d\n", p.ID, formatTTL(p.TTL), p.Utilization, p.BucketCapacity)
	}
	for _, w := range st.Warnings {
		fmt.Fprintf(c.out, "warning %s\n", w)
	}
}

// formatTTL says how long a batch lives, in days once it is more than two.
func formatTTL(d time.Duration) string {
	switch {
	case d > 100*365*24*time.Hour:
		return "unlimited time (a node without a chain)"
	case d > 48*time.Hour:
		return fmt.Sprintf("%.1f days", d.Hours()/24)
	}
	return d.Round(time.Minute).String()
}

func (c *cli) historyCmd() *cobra.Command {
	var since, until duration.Value
	var limit int
	var verify bool
	cmd := &cobra.Command{
		Use:               "history <contact>",
		ValidArgsFunction: c.completeContact,
		Short:             "Show a conversation's history with each message's state",
		Example: `  deaddrop history bob --since 1d
  deaddrop history bob --limit 20 --json`,
		Args: args(1, "one argument: the contact"),
		RunE: func(cmd *cobra.Command, a []string) (rerr error) {
			if limit < 0 {
				return usageError{fmt.Errorf("--limit must not be negative, got %d", limit)}
			}
			ctx, cl, done, err := c.session()
			if err != nil {
				return err
			}
			defer done()
			q := deaddrop.Query{Limit: limit}
			now := time.Now()
			if since > 0 {
				q.Since = now.Add(-time.Duration(since))
			}
			if until > 0 {
				q.Until = now.Add(-time.Duration(until))
			}
			msgs, err := cl.History(a[0], q)
			if errors.Is(err, deaddrop.ErrCorruptState) {
				// Show what is readable, then say what is not and the way out.
				defer func(herr error) {
					if rerr == nil {
						rerr = fmt.Errorf("%w\n'deaddrop restore' (the recovery phrase, on a new home) rebuilds the history from the store", herr)
					}
				}(err)
				err = nil
			}
			if err != nil {
				return err
			}
			if c.json && !verify {
				return c.printJSON(map[string]any{"messages": daemon.FromMessages(msgs)})
			}
			proven := 0
			for _, m := range msgs {
				line := formatMessage(m)
				if verify {
					p, err := cl.ProveMessage(ctx, m)
					if err != nil {
						line += "  [not proven: " + err.Error() + "]"
					} else {
						proven++
						line += fmt.Sprintf("  [log %s block %d of %d, root %x: proven]", p.Device[:8], p.Block, p.Size, p.Root[:4])
					}
				}
				fmt.Fprintln(c.out, line)
			}
			if verify {
				fmt.Fprintf(c.out, "%d of %d messages proven to be in the history log (merkle inclusion proofs)\n", proven, len(msgs))
				if proven < len(msgs) {
					return fmt.Errorf("%d messages could not be proven", len(msgs)-proven)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&verify, "verify", false, "prove each message is in the history log (fetches its block)")
	cmd.Flags().Var(&since, "since", "only messages sent within this long ago (e.g. 1d, 36h, 2w)")
	cmd.Flags().Var(&until, "until", "only messages sent more than this long ago")
	cmd.Flags().IntVar(&limit, "limit", 0, "only the last N messages")
	return c.jsonFlag(cmd)
}
