package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"syscall"
	"time"

	"github.com/deaddrop/deaddrop"
	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/transport/mix"
	"github.com/spf13/cobra"
)

func (c *cli) mixCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mix",
		Short: "Run or set up the mix network (Loopix-style) that hides who reads and writes which slot",
	}
	cmd.AddCommand(c.mixTestnetCmd(), c.mixNodeCmd("node"), c.mixNodeCmd("gateway"))
	return cmd
}

func (c *cli) mixTestnetCmd() *cobra.Command {
	var dir string
	var perLayer int
	var epoch time.Duration
	cmd := &cobra.Command{
		Use:   "testnet",
		Short: "Generate a local mix network: node configs and a signed topology on free loopback ports",
		Args:  args(0, "no arguments"),
		RunE: func(cmd *cobra.Command, a []string) error {
			if dir == "" || perLayer < 1 || perLayer > 16 || epoch < time.Second {
				return usageError{errors.New("need --dir, --per-layer between 1 and 16, --epoch of at least 1s")}
			}
			tn, err := mix.GenerateTestnet(dir, perLayer, epoch, epoch/4, int(72*time.Hour/epoch)+2)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.out, "topology %s/topology.json (directory key %s)\n", dir, tn.Topology.DirectoryKey)
			fmt.Fprintf(c.err, "pin the directory key: clients take --mix-directory-key %s, nodes --directory-key %s\n",
				tn.Topology.DirectoryKey, tn.Topology.DirectoryKey)
			for _, n := range tn.Nodes {
				fmt.Fprintln(c.out, n)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "directory for the configs and topology.json")
	cmd.Flags().IntVar(&perLayer, "per-layer", 1, "mixes in each of the three layers")
	cmd.Flags().DurationVar(&epoch, "epoch", 20*time.Minute, "key rotation period")
	return cmd
}

// mixNodeCmd runs a mix node or the gateway until interrupted.
func (c *cli) mixNodeCmd(role string) *cobra.Command {
	var config, topology, trusted string
	var unpinned bool
	cmd := &cobra.Command{
		Use:   role,
		Short: map[string]string{"node": "Run a mix node", "gateway": "Run the gateway: executes feed operations against --store"}[role],
		Args:  args(0, "no arguments"),
		RunE: func(cmd *cobra.Command, a []string) error {
			if config == "" || topology == "" {
				return usageError{errors.New("need --config and --topology")}
			}
			topo, err := loadTopology(c.err, topology, trusted, unpinned, "--directory-key")
			if err != nil {
				return err
			}
			cfg, err := mix.LoadNodeConfig(config)
			if err != nil {
				return err
			}
			id, key, err := cfg.Keys()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			var store feed.Store
			if role == "gateway" {
				if c.store == "" {
					return usageError{errors.New("the gateway needs --store")}
				}
				if store, err = deaddrop.OpenStore(ctx, c.store); err != nil {
					return err
				}
				defer store.Close()
			}
			n, err := mix.NewNode(id, key, topo, mix.DefaultParams(), store)
			if err != nil {
				return err
			}
			n.Persist(func(k mix.EpochKey) error { return cfg.SaveKey(config, k) })
			if err := n.Listen(""); err != nil {
				return err
			}
			defer n.Close()
			fmt.Fprintf(c.err, "mix %s %x listening on %s\n", role, id[:4], cfg.Addr)
			tick := time.NewTicker(10 * time.Second)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					fmt.Fprintf(c.err, "mix %s %x stopping: %s\n", role, id[:4], &n.Stats)
					return nil
				case <-tick.C:
					fmt.Fprintf(c.err, "mix %s %x: %s\n", role, id[:4], &n.Stats)
				}
			}
		},
	}
	cmd.Flags().StringVar(&config, "config", "", "the node's config (from 'deaddrop mix testnet')")
	cmd.Flags().StringVar(&topology, "topology", "", "the signed topology file")
	cmd.Flags().StringVar(&trusted, "directory-key", "", "the directory key (hex) the topology must be signed by: required")
	cmd.Flags().BoolVar(&unpinned, "insecure-unpinned-topology", false, "accept a topology signed by whatever key it names (tests only)")
	return cmd
}

// loadTopology loads a mix topology pinned to the directory key trusted; an
// unpinned one only when the user asked for it by name, with a warning.
func loadTopology(warn io.Writer, path, trusted string, unpinned bool, keyFlag string) (*mix.Topology, error) {
	switch {
	case trusted != "" && unpinned:
		return nil, usageError{fmt.Errorf("%s and --insecure-unpinned-topology contradict each other", keyFlag)}
	case trusted != "":
		return mix.LoadTopology(path, trusted)
	case !unpinned:
		return nil, usageError{fmt.Errorf("mix topology %s: %w (%s <hex>, or --insecure-unpinned-topology)", path, mix.ErrUnpinned, keyFlag)}
	}
	topo, err := mix.LoadTopologyUnpinned(path)
	if err == nil {
		fmt.Fprintf(warn, "warning: mix topology %s is not pinned to a directory key (signed by %s): whoever can write it picks your route\n", path, topo.DirectoryKey)
	}
	return topo, err
}
