package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/deaddrop/deaddrop"
	"github.com/deaddrop/deaddrop/sync"
	"github.com/spf13/cobra"
)

func (c *cli) chatCmd() *cobra.Command {
	var every time.Duration
	cmd := &cobra.Command{
		Use:   "chat <contact>",
		Short: "Chat interactively: type a line to send it; new messages and read receipts appear as they arrive",
		Args:  args(1, "one argument: the contact to chat with"),
		RunE: func(cmd *cobra.Command, a []string) error {
			if every < 100*time.Millisecond {
				return usageError{fmt.Errorf("--every must be at least 100ms, got %v", every)}
			}
			ctx, cl, done, err := c.session()
			if err != nil {
				return err
			}
			defer done()
			return c.chat(ctx, cl, a[0], every)
		},
	}
	cmd.Flags().DurationVar(&every, "every", time.Second, "how often to poll for new messages")
	return cmd
}

func (c *cli) chat(ctx context.Context, cl *deaddrop.Client, contact string, every time.Duration) error {
	recent, err := cl.History(contact, deaddrop.Query{Limit: 10})
	if err != nil {
		return err
	}
	fmt.Fprintf(c.out, "chat with %s — type a message and press Enter; /status, /quit\n", contact)
	for _, m := range recent {
		fmt.Fprintln(c.out, formatMessage(m))
	}
	lines := make(chan string)
	go func() { // ends with the process; stdin cannot be interrupted
		defer close(lines)
		sc := bufio.NewScanner(c.in)
		sc.Buffer(make([]byte, 64*1024), 64*1024)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	tick := time.NewTicker(every)
	defer tick.Stop()
	c.receive(ctx, cl, contact)
	for {
		select {
		case <-ctx.Done():
			return nil
		case line, ok := <-lines:
			if !ok {
				c.receive(ctx, cl, contact) // one last look before leaving
				return nil
			}
			if quit := c.chatLine(ctx, cl, contact, line); quit {
				return nil
			}
		case <-tick.C:
			c.receive(ctx, cl, contact)
		}
	}
}

// chatLine handles one typed line; it reports whether the user asked to quit.
func (c *cli) chatLine(ctx context.Context, cl *deaddrop.Client, contact, line string) bool {
	line = strings.TrimSpace(line)
	switch line {
	case "":
		return false
	case "/quit", "/exit":
		return true
	case "/status":
		if err := c.printStatus(cl); err != nil {
			fmt.Fprintf(c.err, "error: %v\n", err)
		}
		return false
	}
	m, err := cl.Send(ctx, contact, line)
	switch {
	case errors.Is(err, sync.ErrNotStored):
		fmt.Fprintf(c.out, "  … queued: %v\n", err)
	case err != nil:
		fmt.Fprintf(c.err, "error: %v\n", err)
	default:
		fmt.Fprintf(c.out, "  ✓ stored: %s\n", short(m.Body))
	}
	return false
}

// receive polls once and prints new messages and receipts for contact.
func (c *cli) receive(ctx context.Context, cl *deaddrop.Client, contact string) {
	res, err := cl.Receive(ctx, c.progress())
	if res != nil {
		for _, m := range res.Read {
			if m.Contact == contact {
				fmt.Fprintf(c.out, "  ✓✓ read by %s: %s\n", contact, short(m.Body))
			}
		}
		for _, p := range res.Problems {
			fmt.Fprintf(c.err, "warning: %v\n", p)
		}
	}
	if err != nil && ctx.Err() == nil {
		fmt.Fprintf(c.err, "store: %v (will retry)\n", err)
	}
	if err := c.showUnseen(cl, []string{contact}); err != nil {
		fmt.Fprintf(c.err, "error: %v\n", err)
	}
}

// short abbreviates a message for receipts.
func short(s string) string {
	if r := []rune(s); len(r) > 40 {
		return string(r[:39]) + "…"
	}
	return s
}
