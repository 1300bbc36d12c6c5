package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	gosync "sync"

	"github.com/deaddrop/deaddrop"
	"github.com/deaddrop/deaddrop/daemon"
	"github.com/spf13/cobra"
)

// version is set at link time (-ldflags "-X main.version=v1.2.3"); otherwise
// the module version or VCS revision the binary was built from.
var version = ""

func versionString() string {
	if version != "" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := info.Main.Version
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && (v == "" || v == "(devel)") {
			v = "devel-" + s.Value[:min(12, len(s.Value))]
		}
	}
	if v == "" {
		v = "(devel)"
	}
	return v
}

func (c *cli) daemonCmd() *cobra.Command {
	var stdio, socket bool
	var httpAddr string
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Serve the account to other programs: JSON-RPC 2.0 on standard input/output and a Unix socket in the home",
		Long: `Serve the account to other programs over JSON-RPC 2.0, one JSON object per
line, on standard input/output and on the Unix socket <home>/rpc.sock.
While it runs, 'deaddrop send' (--file too), 'deaddrop read', 'deaddrop
save' and 'deaddrop chat' for the same home go through it. Methods: health,
send, sendFile, save, read, history, contacts, invite, invites, cancelInvite,
accept, devices, receive, changes, settings, subscribe, unsubscribe
(docs/cli.md).
With --stdio (the default) the daemon stops when standard input ends.`,
		Example: `  deaddrop daemon --stdio=false &      # serve on the socket only
  echo '{"jsonrpc":"2.0","id":1,"method":"contacts"}' | deaddrop daemon --socket=false
  deaddrop daemon --stdio=false --http 127.0.0.1:7878   # also HTTP + server-sent events`,
		Args: args(0, "no arguments"),
		RunE: func(cmd *cobra.Command, a []string) error {
			if !stdio && !socket && httpAddr == "" {
				return usageError{errors.New("--stdio=false and --socket=false: nothing to serve")}
			}
			if httpAddr != "" {
				if err := checkLoopback(httpAddr); err != nil {
					return usageError{err}
				}
			}
			ctx, cl, done, err := c.session()
			if err != nil {
				return err
			}
			defer done()
			return c.serve(ctx, cl, stdio, socket, httpAddr)
		},
	}
	cmd.Flags().StringVar(&httpAddr, "http", "", "also serve HTTP on this loopback address (e.g. 127.0.0.1:7878): POST /rpc and GET /events (server-sent events), with the token in <home>/"+httpTokenFile)
	cmd.Flags().BoolVar(&stdio, "stdio", true, "serve standard input/output (and stop when it ends)")
	cmd.Flags().BoolVar(&socket, "socket", true, "serve the Unix socket <home>/"+daemon.SocketName)
	return cmd
}

// httpTokenFile holds the HTTP transport's token, in the home (mode 0600).
const httpTokenFile = "http.token"

func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--http %s: %v", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("--http %s: %w", addr, daemon.ErrNotLoopback)
	}
	return nil
}

// httpToken returns the HTTP transport's token, made on first use.
func (c *cli) httpToken() (string, error) {
	path := filepath.Join(c.home, httpTokenFile)
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) >= 32 {
		return strings.TrimSpace(string(b)), nil
	}
	tok := daemon.NewToken()
	return tok, os.WriteFile(path, []byte(tok+"\n"), 0o600)
}

func (c *cli) serve(ctx context.Context, cl *deaddrop.Client, stdio, socket bool, httpAddr string) error {
	srv := daemon.New(cl, daemon.Options{Version: versionString()})
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg gosync.WaitGroup
	var sockErr, httpErr error
	if httpAddr != "" {
		tok, err := c.httpToken()
		if err != nil {
			return err
		}
		wg.Go(func() {
			httpErr = srv.ServeHTTP(ctx, httpAddr, daemon.HTTPOptions{Token: tok, Ready: func(a net.Addr) {
				fmt.Fprintf(c.err, "serving HTTP on http://%s (token in %s)\n", a, filepath.Join(c.home, httpTokenFile))
			}})
			if httpErr != nil {
				cancel()
			}
		})
	}
	if socket {
		wg.Go(func() {
			sockErr = srv.ServeUnix(ctx, daemon.SocketPath(c.home))
			if sockErr != nil {
				cancel()
			}
		})
	}
	var err error
	if stdio {
		err = srv.Serve(ctx, c.in, c.out)
		cancel()
	} else {
		if socket {
			fmt.Fprintf(c.err, "serving %s on %s\n", cl.Name(), daemon.SocketPath(c.home))
		}
		<-ctx.Done()
	}
	wg.Wait()
	return errors.Join(err, sockErr, httpErr)
}

// serveSocket serves the daemon's socket while a long-running command (chat)
// holds the home, so that send and read from other terminals go through it;
// the returned function stops it.
func (c *cli) serveSocket(ctx context.Context, cl *deaddrop.Client) func() {
	ctx, cancel := context.WithCancel(ctx)
	srv := daemon.New(cl, daemon.Options{Version: versionString()})
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.ServeUnix(ctx, daemon.SocketPath(c.home)); err != nil {
			fmt.Fprintf(c.err, "warning: other commands cannot use this home while chat runs: %v\n", err)
		}
	}()
	return func() { cancel(); <-done }
}

// viaDaemon runs f against the daemon of the home when another process holds
// it (err from opening it is ErrHomeInUse); otherwise it returns err.
func (c *cli) viaDaemon(openErr error, f func(ctx context.Context, d *daemon.Conn) error) error {
	if !errors.Is(openErr, deaddrop.ErrHomeInUse) {
		return openErr
	}
	ctx, cancel := signalContext()
	defer cancel()
	d, err := daemon.Dial(ctx, c.home)
	if err != nil {
		return fmt.Errorf("%w; start 'deaddrop daemon' there to share the home with other commands", openErr)
	}
	defer d.Close()
	return f(ctx, d)
}

// printRead shows what a daemon's read returned as read shows it.
func (c *cli) printRead(res daemon.ReadResult) error {
	for _, name := range res.Joined {
		fmt.Fprintf(c.out, "%s accepted your invite\n", name)
	}
	var order []string
	counts := map[string]int{}
	for _, m := range res.Delivered {
		if counts[m.Contact] == 0 {
			order = append(order, m.Contact)
		}
		counts[m.Contact]++
	}
	for _, name := range order {
		fmt.Fprintf(c.out, "delivered to %s: %s\n", name, plural(counts[name], "message"))
	}
	for _, p := range res.Problems {
		fmt.Fprintf(c.err, "warning: %s\n", p)
	}
	for _, m := range res.Messages {
		fmt.Fprintln(c.out, formatMessage(toMessage(m)))
	}
	if res.StoreError != "" {
		return fmt.Errorf("not everything could be fetched or republished (nothing is lost: the next read, chat or daemon tries again): %s", res.StoreError)
	}
	return nil
}

// toMessage is the inverse of daemon.FromMessage, for formatMessage.
func toMessage(m daemon.Message) deaddrop.Message {
	out := deaddrop.Message{ID: m.ID, Contact: m.Contact, Body: m.Body, Sent: m.Sent, Seen: m.Seen, Local: m.Local, Dir: deaddrop.Outgoing}
	if f := m.File; f != nil { // as formatAttachment shows it (the manifest stays with the daemon)
		out.Body = strings.TrimLeft(fmt.Sprintf("%s [file %s, %s, %s; deaddrop save %s:%d]", m.Body, f.Name, formatSize(f.Size), f.MediaType, m.Contact, m.Local), " ")
	}
	if m.Direction == deaddrop.Incoming.String() {
		out.Dir = deaddrop.Incoming
	}
	for _, s := range []deaddrop.MessageState{deaddrop.Queued, deaddrop.Stored, deaddrop.Delivered, deaddrop.Received} {
		if s.String() == m.State {
			out.State = s
		}
	}
	return out
}
