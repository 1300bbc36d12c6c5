package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/deaddrop/deaddrop"
	"github.com/deaddrop/deaddrop/transport/mix"
	"github.com/spf13/cobra"
)

// cli holds what every command shares: streams and global flags.
type cli struct {
	in        io.Reader
	out, err  io.Writer
	home      string
	store     string
	window    int
	mix       string
	mixKey    string
	unpinned  bool // --insecure-unpinned-topology
	noHistory bool
	json      bool // --json, on listing commands
}

func newRootCmd(in io.Reader, out, errOut io.Writer) *cobra.Command {
	c := &cli{in: in, out: out, err: errOut}
	root := &cobra.Command{
		Use:           "deaddrop",
		Short:         "End-to-end encrypted chat over decentralized storage, for when the other side is offline",
		Version:       versionString(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(in)
	root.SetOut(out)
	root.SetErr(errOut)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	var quiet bool
	pf.BoolVarP(&quiet, "quiet", "q", false, "print results and errors only (no hints, progress or warnings)")
	root.PersistentPreRun = func(*cobra.Command, []string) {
		if quiet {
			c.err = io.Discard
		}
	}
	pf.StringVar(&c.home, "home", defaultHome(), "account directory ($DEADDROP_HOME)")
	pf.StringVar(&c.store, "store", "", "store: embedded:<dir>, swarm:<Bee API URL> or ipfs:<Kubo RPC URL> (default: the account's)")
	pf.IntVar(&c.window, "window", 0, "catch-up window: slots fetched in parallel (default 64)")
	pf.StringVar(&c.mix, "mix", "", "route every store operation through the mix network of this topology file")
	pf.StringVar(&c.mixKey, "mix-directory-key", "", "the directory key (hex) the mix topology must be signed by: required with --mix")
	pf.BoolVar(&c.unpinned, "insecure-unpinned-topology", false, "accept a mix topology signed by whatever key it names (tests only: whoever can write the file picks your route)")
	root.AddCommand(c.initCmd(), c.inviteCmd(), c.acceptCmd(), c.sendCmd(), c.saveCmd(), c.readCmd(),
		c.chatCmd(), c.contactsCmd(), c.statusCmd(), c.historyCmd(), c.republishCmd(), c.restoreCmd(), c.deviceCmd(), c.mixCmd(),
		c.keepCmd(), c.keeperCmd(), c.postageCmd(), c.daemonCmd(), c.readReceiptsCmd(), c.compactCmd())
	requireSubcommand(root)
	return root
}

// requireSubcommand makes every command that only groups others (device,
// mix, keeper…) fail as a usage error when called with an unknown
// subcommand or none: cobra would print its help and exit 0, so a typo such
// as 'device lnk' looked like success.
func requireSubcommand(cmd *cobra.Command) {
	for _, sub := range cmd.Commands() {
		requireSubcommand(sub)
	}
	if cmd.Runnable() || !cmd.HasSubCommands() {
		return
	}
	cmd.Args = cobra.ArbitraryArgs
	cmd.RunE = func(cmd *cobra.Command, a []string) error {
		if len(a) == 0 {
			cmd.Help()
			return usageError{fmt.Errorf("%s needs a subcommand", cmd.CommandPath())}
		}
		msg := fmt.Sprintf("unknown command %q for %q", a[0], cmd.CommandPath())
		if s := cmd.SuggestionsFor(a[0]); len(s) > 0 {
			msg += fmt.Sprintf(" (did you mean %q?)", s[0])
		}
		return usageError{errors.New(msg)}
	}
}

func defaultHome() string {
	if h := os.Getenv("DEADDROP_HOME"); h != "" {
		return h
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".deaddrop"
	}
	return filepath.Join(home, ".deaddrop")
}

func (c *cli) config() deaddrop.Config {
	return deaddrop.Config{Store: c.store, Window: c.window, NoHistory: c.noHistory}
}

// open opens the account, or explains why not.
func (c *cli) open(ctx context.Context) (*deaddrop.Client, error) {
	if c.window < 0 || c.window > 1024 {
		return nil, usageError{fmt.Errorf("--window must be between 1 and 1024, got %d", c.window)}
	}
	cfg := c.config()
	if c.mix != "" {
		topo, err := loadTopology(c.err, c.mix, c.mixKey, c.unpinned, "--mix-directory-key")
		if err != nil {
			return nil, err
		}
		if cfg.Transport, err = mix.Dial(ctx, topo, mix.DefaultParams()); err != nil {
			return nil, err
		}
	}
	return deaddrop.Open(ctx, c.home, cfg)
}

// session opens the account for one command, with a context cancelled by
// Ctrl-C; done releases both.
func (c *cli) session() (context.Context, *deaddrop.Client, func(), error) {
	ctx, cancel := signalContext()
	cl, err := c.open(ctx)
	if err != nil {
		cancel()
		return nil, nil, nil, err
	}
	return ctx, cl, func() { cl.Close(); cancel() }, nil
}

// signalContext is cancelled by Ctrl-C or SIGTERM, so that a command stops at
// a transaction boundary rather than mid-write.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// args checks a command's positional arguments, as a usage error.
func args(n int, what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, a []string) error {
		if len(a) != n {
			return usageError{errors.New("expected " + what)}
		}
		return nil
	}
}
