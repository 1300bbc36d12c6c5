package main

import (
	"errors"
	"fmt"

	"github.com/deaddrop/deaddrop"
	"github.com/deaddrop/deaddrop/sync"
	"github.com/spf13/cobra"
)

func (c *cli) compactCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "compact",
		Example: `  deaddrop compact`,
		Short:   "Rewrite the state file without its free pages (it never shrinks by itself); the home must not be in use",
		Args:    args(0, "no arguments"),
		RunE: func(cmd *cobra.Command, a []string) error {
			res, err := sync.Compact(c.home)
			if errors.Is(err, deaddrop.ErrHomeInUse) {
				return fmt.Errorf("%w: stop the daemon or chat using it first, then compact", err)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(c.out, "state file compacted: %s before, %s after\n", mib(res.Before), mib(res.After))
			return nil
		},
	}
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
