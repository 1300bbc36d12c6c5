package sync

import (
	"context"
	"errors"
	"time"

	"github.com/deaddrop/deaddrop/transport"
)

// linkAndJoin links a device called name to a's account and joins it in
// dir: the join (which waits for the answer) runs beside the link's wait,
// as 'device join' on the new device runs beside 'device link'.
func linkAndJoin(ctx context.Context, a *Account, name string, ttl time.Duration, dir string, tr transport.Transport, opts Options) (*Account, *RestoreStats, *Device, error) {
	lk, err := a.LinkDevice(ctx, name, ttl)
	if err != nil {
		return nil, nil, nil, err
	}
	return joinLink(ctx, a, lk, dir, tr, opts)
}

// joinLink joins dir with lk's code while a waits for it.
func joinLink(ctx context.Context, a *Account, lk *Link, dir string, tr transport.Transport, opts Options) (*Account, *RestoreStats, *Device, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	type joined struct {
		a     *Account
		stats *RestoreStats
		err   error
	}
	done := make(chan joined, 1)
	go func() {
		j, stats, err := JoinDevice(ctx, dir, lk.Code, tr, opts)
		done <- joined{j, stats, err}
	}()
	dev, werr := a.WaitLink(ctx, lk, nil)
	if werr != nil {
		cancel()
	}
	j := <-done
	if err := errors.Join(werr, j.err); err != nil {
		if j.a != nil {
			j.a.Close()
		}
		return nil, nil, nil, err
	}
	return j.a, j.stats, dev, nil
}
