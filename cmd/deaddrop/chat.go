package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	gosync "sync"
	"time"

	"github.com/deaddrop/deaddrop"
	"github.com/deaddrop/deaddrop/daemon"
	"github.com/deaddrop/deaddrop/sync"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func (c *cli) chatCmd() *cobra.Command {
	var every time.Duration
	cmd := &cobra.Command{
		Use: "chat <contact>",
		Example: `  deaddrop chat bob
  deaddrop chat bob --every 5s`,
		ValidArgsFunction: c.completeContact,
		Short:             "Chat interactively: type a line to send it; new messages and delivery receipts appear as they arrive",
		Args:              args(1, "one argument: the contact to chat with"),
		RunE: func(cmd *cobra.Command, a []string) error {
			if every < 100*time.Millisecond {
				return usageError{fmt.Errorf("--every must be at least 100ms, got %v", every)}
			}
			ctx, cl, done, err := c.session()
			if err != nil {
				// Another chat or a daemon holds the home: chat through it.
				return c.viaDaemon(err, func(ctx context.Context, d *daemon.Conn) error {
					return c.chatRemote(ctx, d, a[0], every)
				})
			}
			defer done()
			defer c.serveSocket(ctx, cl)() // send, read and chat in other terminals go through this chat
			return c.chat(ctx, cl, a[0], every)
		},
	}
	cmd.Flags().DurationVar(&every, "every", time.Second, "pause between polls for new messages")
	return cmd
}

// chat runs three things at once, so that none waits for another: receiving
// (Client.Watch, in the background), reading typed lines, and sending them
// (one after another, in the order typed). A typed line goes to the store at
// once, even while a poll waits for a slow store.
func (c *cli) chat(ctx context.Context, cl *deaddrop.Client, contact string, every time.Duration) error {
	recent, err := cl.History(contact, deaddrop.Query{Limit: 10})
	if err != nil {
		return err
	}
	con, restore := c.console()
	defer restore()
	fmt.Fprintf(con.out, "chat with %s — type a message and press Enter; /status, /quit, //… sends /…\n", contact)
	for _, m := range recent {
		fmt.Fprintln(con.out, formatMessage(m))
	}

	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	events := cl.Watch(watchCtx, deaddrop.WatchOptions{Every: every, Contacts: []string{contact}})
	sends := make(chan string, 256)
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for line := range sends {
			c.chatSend(ctx, con, cl, contact, line)
		}
	}()
	lines := con.lines()
	defer func() { close(sends); <-sent }() // what was typed goes out before chat ends

	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				return nil
			}
			c.showEvent(con, ev)
		case line, ok := <-lines:
			if !ok || c.chatCommand(con, cl, line) {
				return nil
			}
			if line = strings.TrimSpace(line); line != "" && (!strings.HasPrefix(line, "/") || strings.HasPrefix(line, "//")) {
				sends <- strings.TrimPrefix(line, "/") // "//x" sends "/x"
			}
		}
	}
}

// chatCommand handles /commands; it reports whether the user asked to quit.
func (c *cli) chatCommand(con *console, cl *deaddrop.Client, line string) (quit bool) {
	switch strings.TrimSpace(line) {
	case "/quit", "/exit":
		return true
	case "/status":
		status := *c // the status report, written to the console
		status.out = con.out
		if err := status.printStatus(cl); err != nil {
			fmt.Fprintf(con.out, "error: %v\n", err)
		}
	default:
		if l := strings.TrimSpace(line); strings.HasPrefix(l, "/") && !strings.HasPrefix(l, "//") {
			fmt.Fprintf(con.out, "unknown command %q, not sent: /status, /quit (start a message with // to send one that begins with /)\n", l)
		}
	}
	return false
}

func (c *cli) chatSend(ctx context.Context, con *console, cl *deaddrop.Client, contact, line string) {
	m, err := cl.Send(ctx, contact, line)
	switch {
	case errors.Is(err, sync.ErrNotStored):
		fmt.Fprintf(con.out, "  … queued: %v\n", err)
	case err != nil:
		fmt.Fprintf(con.out, "error: %v\n", err)
	default:
		fmt.Fprintf(con.out, "  ✓ stored: %s\n", short(m.Body))
	}
}

func (c *cli) showEvent(con *console, ev deaddrop.Event) {
	switch ev.Kind {
	case deaddrop.EventMessage:
		fmt.Fprintln(con.out, formatMessage(ev.Message))
	case deaddrop.EventDelivered:
		fmt.Fprintf(con.out, "  ✓✓ delivered to %s: %s\n", ev.Contact, short(ev.Message.Body))
	case deaddrop.EventReadByContact:
		fmt.Fprintf(con.out, "  ✓✓ read by %s: %s\n", ev.Contact, short(ev.Message.Body))
	case deaddrop.EventJoined:
		fmt.Fprintf(con.out, "  %s accepted your invite\n", terminalSafe(ev.Contact))
	case deaddrop.EventDeviceAdded, deaddrop.EventDeviceRemoved:
		whose, what := "your account", "added"
		if ev.Contact != "" {
			whose = terminalSafe(ev.Contact)
		}
		if ev.Kind == deaddrop.EventDeviceRemoved {
			what = "removed"
		}
		fmt.Fprintf(con.out, "  device %s %s: %s (%s)\n", what, whose, terminalSafe(ev.Device.Name), ev.Device.ID)
	case deaddrop.EventProblem:
		fmt.Fprintf(con.out, "warning: %v\n", ev.Err)
	case deaddrop.EventStoreError:
		fmt.Fprintf(con.out, "store: %v (will retry)\n", ev.Err)
	}
}

// console is chat's input and output. On a terminal, typed text stays on its
// own prompt line: output written meanwhile appears above it, and the line
// being typed is redrawn below (x/term's Terminal does this). Elsewhere
// (pipes, tests) it is plain lines in, plain lines out.
type console struct {
	out  io.Writer
	read func() (string, error)
}

// lines delivers typed lines until the input ends (EOF, Ctrl-D or Ctrl-C on
// a terminal). The goroutine ends with the process: stdin cannot be
// interrupted.
func (con *console) lines() <-chan string {
	ch := make(chan string)
	go func() {
		defer close(ch)
		for {
			line, err := con.read()
			if err != nil {
				return
			}
			ch <- line
		}
	}()
	return ch
}

func (c *cli) console() (*console, func()) {
	if in, ok := c.in.(*os.File); ok && term.IsTerminal(int(in.Fd())) {
		if out, ok := c.out.(*os.File); ok && term.IsTerminal(int(out.Fd())) {
			if old, err := term.MakeRaw(int(in.Fd())); err == nil {
				t := term.NewTerminal(struct {
					io.Reader
					io.Writer
				}{in, out}, "> ")
				return &console{out: t, read: t.ReadLine}, func() { term.Restore(int(in.Fd()), old) }
			}
		}
	}
	sc := bufio.NewScanner(c.in)
	sc.Buffer(make([]byte, 64*1024), 64*1024)
	read := func() (string, error) {
		if sc.Scan() {
			return sc.Text(), nil
		}
		if sc.Err() != nil {
			return "", sc.Err()
		}
		return "", io.EOF
	}
	return &console{out: &lockedWriter{w: c.out}, read: read}, func() {}
}

// lockedWriter serializes writes: the sender and the receiver both print.
type lockedWriter struct {
	mu gosync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// short abbreviates a message for receipts, terminal-safe (format.go).
func short(s string) string {
	s = terminalSafe(s)
	if r := []rune(s); len(r) > 40 {
		return string(r[:39]) + "…"
	}
	return s
}

// chatRemote is chat through the process holding the home (a daemon, or
// another chat): the same screen, over its socket. It follows the change
// feed rather than subscribing, so that two chats on one home both show
// every message (a subscription hands each message to one reader). It
// marks nothing seen: that is for the holder, or a later read.
func (c *cli) chatRemote(ctx context.Context, d *daemon.Conn, contact string, every time.Duration) error {
	var start daemon.ChangesResult
	if err := d.Call(ctx, "changes", map[string]any{"latest": true}, &start); err != nil {
		return err
	}
	var recent struct{ Messages []daemon.Message }
	if err := d.Call(ctx, "history", map[string]any{"contact": contact, "limit": 10}, &recent); err != nil {
		return err
	}
	con, restore := c.console()
	defer restore()
	fmt.Fprintf(con.out, "chat with %s (through the process that holds this home) — type a message and press Enter; /quit, //… sends /…\n", contact)
	for _, m := range recent.Messages {
		fmt.Fprintln(con.out, formatMessage(toMessage(m)))
	}
	sends := make(chan string, 256)
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for line := range sends {
			var res daemon.SendResult
			err := d.Call(ctx, "send", map[string]string{"contact": contact, "body": line}, &res)
			switch {
			case err != nil:
				fmt.Fprintf(con.out, "error: %v\n", err)
			case res.Queued:
				fmt.Fprintf(con.out, "  … queued: %s\n", res.Warning)
			default:
				fmt.Fprintf(con.out, "  ✓ stored: %s\n", short(res.Message.Body))
			}
		}
	}()
	lines := con.lines()
	defer func() { close(sends); <-sent }()

	cursor := start.Cursor
	shown := map[string]bool{} // incoming IDs shown, outgoing IDs reported delivered
	tick := time.NewTimer(0)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			var rec daemon.ReadResult
			if err := d.Call(ctx, "receive", nil, &rec); err != nil {
				return fmt.Errorf("the process holding the home: %w", err)
			}
			if rec.StoreError != "" {
				fmt.Fprintf(con.out, "store: %s (will retry)\n", rec.StoreError)
			}
			var chs daemon.ChangesResult
			if err := d.Call(ctx, "changes", map[string]any{"after": cursor}, &chs); err != nil {
				return fmt.Errorf("the process holding the home: %w", err)
			}
			cursor = chs.Cursor
			for _, ch := range chs.Changes {
				m := ch.Message
				switch {
				case m.Contact != contact || shown[m.ID]:
				case m.Direction == "incoming":
					shown[m.ID] = true
					fmt.Fprintln(con.out, formatMessage(toMessage(m)))
				case m.State == deaddrop.Delivered.String():
					shown[m.ID] = true
					fmt.Fprintf(con.out, "  ✓✓ delivered to %s: %s\n", contact, short(m.Body))
				case m.State == deaddrop.ReadByContact.String() && !shown["read "+m.ID]:
					shown[m.ID], shown["read "+m.ID] = true, true
					fmt.Fprintf(con.out, "  ✓✓ read by %s: %s\n", contact, short(m.Body))
				}
			}
			tick.Reset(every)
		case line, ok := <-lines:
			if !ok {
				return nil
			}
			l := strings.TrimSpace(line)
			switch {
			case l == "/quit" || l == "/exit":
				return nil
			case strings.HasPrefix(l, "//"):
				sends <- l[1:]
			case strings.HasPrefix(l, "/"):
				fmt.Fprintf(con.out, "unknown command %q, not sent: /quit (start a message with // to send one that begins with /)\n", l)
			case l != "":
				sends <- l
			}
		}
	}
}
