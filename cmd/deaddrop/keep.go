package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/deaddrop/deaddrop"
	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/keep"
	"github.com/spf13/cobra"
)

// keepCmd runs a keeper: the process an always-on machine runs for an
// account so that its chunks outlive the network's memory while every
// device is off. It needs no account, only a store.
func (c *cli) keepCmd() *cobra.Command {
	var listen, dir, token string
	var interval, topUpBelow, topUpBy time.Duration
	cmd := &cobra.Command{
		Use:   "keep --store <ipfs:…|swarm:…> --listen <addr>",
		Short: "Run a keeper: hold the signed records devices push to it and put them again before the network forgets them",
		Long: `A keeper holds only signed records (IPNS records, Swarm single-owner chunks):
it can put them again byte for byte, but it cannot read them or derive any other
slot. Devices push their records with 'deaddrop keeper add <url>'. Every record is
verified when it arrives and again before every put.`,
		Args: args(0, "no arguments (the store is --store)"),
		RunE: func(cmd *cobra.Command, a []string) error {
			if c.store == "" {
				return usageError{errors.New("keep needs --store ipfs:<Kubo RPC URL> or swarm:<Bee API URL>")}
			}
			if interval < 0 || topUpBelow < 0 || topUpBy <= 0 {
				return usageError{errors.New("--interval, --topup-below and --topup-by must be positive durations")}
			}
			ctx, cancel := signalContext()
			defer cancel()
			return c.runKeeper(ctx, listen, dir, token, keep.Options{Interval: interval, TopUpBelow: topUpBelow, TopUpBy: topUpBy})
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:7423", "address to serve the keeper's API on")
	f.StringVar(&dir, "dir", defaultKeeperDir(), "directory of the keeper's database")
	f.StringVar(&token, "token", os.Getenv("DEADDROP_KEEPER_TOKEN"), "require devices to present this token ($DEADDROP_KEEPER_TOKEN)")
	f.DurationVar(&interval, "interval", 0, "put every record again this often (default: a quarter of the store's record lifetime, or 12h)")
	f.DurationVar(&topUpBelow, "topup-below", 0, "Swarm: top the postage batch up when it has less than this left to live (0: never)")
	f.DurationVar(&topUpBy, "topup-by", 30*24*time.Hour, "Swarm: how much longer a top-up makes the batch live")
	return cmd
}

func defaultKeeperDir() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ".deaddrop-keeper"
	}
	return filepath.Join(home, ".deaddrop-keeper")
}

func (c *cli) runKeeper(ctx context.Context, listen, dir, token string, opts keep.Options) error {
	store, err := openKeepable(ctx, c.store)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	logger := log.New(c.err, "", log.LstdFlags)
	opts.Logf = logger.Printf
	k, err := keep.Open(ctx, filepath.Join(dir, "keeper.db"), store, opts)
	if err != nil {
		return err
	}
	defer k.Close()
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("keeper: listening on %s: %w", listen, err)
	}
	srv := &http.Server{Handler: k.Handler(token), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	fmt.Fprintf(c.out, "keeper listening on http://%s, %d records held, putting each again every %v\n", ln.Addr(), k.Len(), k.Interval())
	err = k.Run(ctx)
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return errors.Join(err, srv.Shutdown(shutdown))
}

// openKeepable opens a store a keeper can use, waiting for its node to
// answer.
func openKeepable(ctx context.Context, spec string) (deaddrop.KeepableStore, error) {
	for {
		s, err := deaddrop.OpenKeepable(ctx, spec)
		if errors.Is(err, deaddrop.ErrNeverForgets) {
			return nil, usageError{err}
		}
		if !errors.Is(err, feed.ErrUnavailable) {
			return s, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(5 * time.Second): // the node is down: wait for it
		}
	}
}

func (c *cli) keeperCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keeper",
		Short: "Choose the keepers this device pushes its records to",
	}
	var token string
	add := &cobra.Command{
		Use:   "add <url>",
		Short: "Push this account's records to the keeper at url, now and from now on",
		Args:  args(1, "the keeper's URL, e.g. http://homeserver:7423"),
		RunE: func(cmd *cobra.Command, a []string) error {
			ctx, cl, done, err := c.session()
			if err != nil {
				return err
			}
			defer done()
			rep, err := cl.AddKeeper(ctx, deaddrop.Keeper{URL: a[0], Token: token})
			c.printPushes(rep)
			if err != nil {
				return fmt.Errorf("keeper %s added, but the first push failed (retried on every read): %w", a[0], err)
			}
			return nil
		},
	}
	add.Flags().StringVar(&token, "token", os.Getenv("DEADDROP_KEEPER_TOKEN"), "the keeper's token ($DEADDROP_KEEPER_TOKEN)")
	list := &cobra.Command{
		Use:   "list",
		Short: "List the keepers this device pushes to",
		Args:  args(0, "no arguments"),
		RunE: func(cmd *cobra.Command, a []string) error {
			_, cl, done, err := c.session()
			if err != nil {
				return err
			}
			defer done()
			ks, err := cl.Keepers()
			if err != nil {
				return err
			}
			if len(ks) == 0 {
				fmt.Fprintln(c.out, "no keepers: 'deaddrop keeper add <url>'")
			}
			for _, k := range ks {
				fmt.Fprintln(c.out, k.URL)
			}
			return nil
		},
	}
	remove := &cobra.Command{
		Use:   "remove <url>",
		Short: "Stop pushing to a keeper",
		Args:  args(1, "the keeper's URL"),
		RunE: func(cmd *cobra.Command, a []string) error {
			_, cl, done, err := c.session()
			if err != nil {
				return err
			}
			defer done()
			return cl.RemoveKeeper(a[0])
		},
	}
	cmd.AddCommand(add, list, remove)
	return cmd
}

func (c *cli) printPushes(rep *deaddrop.KeepReport) {
	if rep == nil {
		return
	}
	if rep.Refreshed {
		fmt.Fprintln(c.out, "put every kept chunk again (the store forgets records not put for a while)")
	}
	for _, p := range rep.Pushes {
		fmt.Fprintf(c.out, "keeper %s: %d records pushed, %d held, %d refused\n", p.Keeper, p.Pushed, p.Held, p.Refused)
	}
}

func (c *cli) postageCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "postage",
		Short: "Swarm: the postage batch that keeps this account's chunks alive",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "topup <duration>",
		Short: "Top the postage batch up so that it lives this much longer (e.g. 720h), paid by the Bee node's wallet",
		Args:  args(1, "how much longer the batch should live, e.g. 720h"),
		RunE: func(cmd *cobra.Command, a []string) error {
			d, err := time.ParseDuration(a[0])
			if err != nil || d <= 0 {
				return usageError{fmt.Errorf("%q is not a positive duration (e.g. 720h for 30 days)", a[0])}
			}
			ctx, cl, done, err := c.session()
			if err != nil {
				return err
			}
			defer done()
			if err := cl.ExtendPostage(ctx, d); err != nil {
				return err
			}
			fmt.Fprintf(c.out, "postage batch topped up by %v (the chain shows it within a few blocks; 'deaddrop status')\n", d)
			return nil
		},
	})
	return cmd
}
