package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/deaddrop/deaddrop"
	"github.com/deaddrop/deaddrop/daemon"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func (c *cli) restoreCmd() *cobra.Command {
	var device string
	cmd := &cobra.Command{
		Use:   "restore",
		Short: "Restore your account and its whole history on this device from the recovery phrase alone (read from standard input)",
		Args: func(_ *cobra.Command, a []string) error {
			if len(a) == 1 && a[0] == "-" {
				return nil // standard input, as always
			}
			if len(a) > 0 {
				return usageError{errSecretOnCommandLine}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, a []string) error {
			phrase, err := c.readSecret("recovery phrase")
			if err != nil {
				return err
			}
			ctx, cancel := signalContext()
			defer cancel()
			cl, stats, err := deaddrop.Restore(ctx, c.home, phrase, device, c.config())
			if err != nil {
				return err
			}
			defer cl.Close()
			fmt.Fprintf(c.out, "restored account %s (%s) in %s as device %s\n", cl.Name(), cl.Fingerprint(), c.home, cl.DeviceID())
			c.printStats(stats)
			fmt.Fprintln(c.out, "your contacts' devices start sessions with this one when they next read; 'deaddrop read' picks them up")
			return nil
		},
	}
	cmd.Flags().StringVar(&device, "device", "restored", "a name for this device")
	return cmd
}

func (c *cli) printStats(s *deaddrop.RestoreStats) {
	fmt.Fprintf(c.out, "history: %s, %s from %s of %s in %s\n",
		plural(s.Contacts, "contact"), plural(s.Messages, "message"), plural(s.Blocks, "block"), plural(s.Devices, "device log"), s.Duration.Round(time.Millisecond))
	for _, d := range s.Evicted {
		fmt.Fprintf(c.out, "removed device %s (%s) to make room for this one: the account had the most devices allowed\n", d.ID, d.Name)
	}
	for _, p := range s.Problems {
		fmt.Fprintf(c.out, "skipped: %v\n", p)
	}
}

func (c *cli) deviceCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "device",
		Short: "Use the account on several devices: link, join, list, remove",
	}
	cmd.AddCommand(c.deviceLinkCmd(), c.deviceJoinCmd(), c.deviceListCmd(), c.deviceRemoveCmd())
	return cmd
}

func (c *cli) deviceLinkCmd() *cobra.Command {
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "link <device name>",
		Short: "Add a device to the account: prints a one-time code for 'deaddrop device join' on it",
		Args:  args(1, "one argument: a name for the new device, e.g. 'laptop'"),
		RunE: func(cmd *cobra.Command, a []string) error {
			if ttl <= 0 || ttl > 7*24*time.Hour {
				return usageError{fmt.Errorf("--ttl must be between 1s and 168h, got %s", ttl)}
			}
			ctx, cl, done, err := c.session()
			if err != nil {
				return err
			}
			defer done()
			lk, err := cl.LinkDevice(ctx, a[0], ttl)
			if err != nil {
				return err
			}
			fmt.Fprintln(c.out, lk.Code)
			fmt.Fprintf(c.err, "on the new device run: deaddrop device join %s\n(device %s %q; the code works once, for %s)\nwaiting for the new device to join...\n", lk.Code, lk.Device.ID, lk.Device.Name, ttl)
			dev, err := cl.WaitLink(ctx, lk, func(d *deaddrop.Device) error {
				fmt.Fprintf(c.out, "device %q asks to join with fingerprint %s\n", d.Name, d.Fingerprint())
				f, ok := c.in.(*os.File)
				if !ok || !term.IsTerminal(int(f.Fd())) {
					return nil // compare afterwards; 'device remove' undoes it
				}
				fmt.Fprintf(c.err, "does 'device join' on the new device show the same fingerprint? [y/N] ")
				line, _ := bufio.NewReader(c.in).ReadString('\n')
				if ans := strings.ToLower(strings.TrimSpace(line)); ans != "y" && ans != "yes" {
					return errors.New("join refused: the fingerprints differ (someone else may have the code)")
				}
				return nil
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(c.out, "linked device %s %q, fingerprint %s\n", dev.ID, dev.Name, dev.Fingerprint())
			fmt.Fprintf(c.err, "if 'device join' on the new device showed another fingerprint, someone else used the code: run 'deaddrop device remove %s' now\n", dev.ID)
			return nil
		},
	}
	cmd.Flags().DurationVar(&ttl, "ttl", 15*time.Minute, "how long the code stays valid")
	return cmd
}

func (c *cli) deviceJoinCmd() *cobra.Command {
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "join <code>",
		Short: "Make this device one of your account's, with the code 'deaddrop device link' printed",
		Args:  args(1, "one argument: the code 'deaddrop device link' printed"),
		RunE: func(cmd *cobra.Command, a []string) error {
			sctx, cancel := signalContext()
			defer cancel()
			ctx, stop := context.WithTimeout(sctx, wait)
			defer stop()
			fmt.Fprintln(c.err, "waiting for the linking device ('deaddrop device link' must be running there)...")
			cl, stats, err := deaddrop.JoinDevice(ctx, c.home, a[0], c.config())
			if err != nil {
				return err
			}
			defer cl.Close()
			fmt.Fprintf(c.out, "joined account %s (%s) in %s as device %s\n", cl.Name(), cl.Fingerprint(), c.home, cl.DeviceID())
			fmt.Fprintf(c.out, "this device's fingerprint: %s (the linking device shows it too: compare)\n", cl.DeviceFingerprint())
			c.printStats(stats)
			return nil
		},
	}
	cmd.Flags().DurationVar(&wait, "wait", 15*time.Minute, "how long to wait for the linking device's answer")
	return cmd
}

func (c *cli) deviceListCmd() *cobra.Command {
	return c.jsonFlag(&cobra.Command{
		Use:   "list",
		Short: "List the account's devices",
		Args:  args(0, "no arguments"),
		RunE: func(cmd *cobra.Command, a []string) error {
			_, cl, done, err := c.session()
			if err != nil {
				return err
			}
			defer done()
			devices, version, err := cl.Devices()
			if err != nil {
				return err
			}
			if c.json {
				return c.printJSON(daemon.FromDevices(devices, version))
			}
			for _, d := range devices {
				this := ""
				if d.This {
					this = "  (this device)"
				}
				fmt.Fprintf(c.out, "%s  %-12s added %s%s\n", d.ID, d.Name, d.Added.Local().Format(time.DateTime), this)
			}
			fmt.Fprintf(c.out, "device list version %d, signed by the account key\n", version)
			heads, err := cl.LogHeads()
			if err != nil {
				return err
			}
			// Two devices showing the same heads hold the same history.
			for _, h := range heads {
				fmt.Fprintf(c.out, "history log of %s: %s, merkle root %x\n", h.Device, plural(int(h.Size), "block"), h.Root[:8])
			}
			return nil
		},
	})
}

func (c *cli) deviceRemoveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "remove <device ID or name>",
		Short: "Remove a device: your contacts stop sending to it",
		Args:  args(1, "one argument: the device's ID or name (see 'deaddrop device list')"),
		RunE: func(cmd *cobra.Command, a []string) error {
			ctx, cl, done, err := c.session()
			if err != nil {
				return err
			}
			defer done()
			d, err := cl.RemoveDevice(ctx, a[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(c.out, "removed device %s %q: contacts drop it when they next read\n", d.ID, d.Name)
			return nil
		},
	}
}
