package deaddrop

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/keep"
)

// Keeping chunks alive. On IPFS a record falls out of the DHT 48 hours after
// its last put, so the chunks a reader may still need (unacknowledged
// messages, announcements, device lists, history blocks) must be put again:
// by this device while it runs (Keep does it every half lifetime), and by
// keepers — always-on processes holding only the signed records — when no
// device runs.

// Keeper is a keeper this device pushes its records to.
type Keeper = keep.Target

// KeepReport says what Keep did.
type KeepReport struct {
	// Refreshed is true when this device put every kept chunk again.
	Refreshed bool
	// Pushes says what each keeper was sent.
	Pushes []keep.PushReport
}

// keepPushEvery throttles the pushes Receive makes to keepers: a push lists
// every kept chunk, so a chat client polling every second must not do it on
// every poll. Send and Republish push at once.
const keepPushEvery = 5 * time.Minute

const journalFile = "keep.db"

// keepableStore is a store whose network forgets (IPFS, Swarm).
type keepableStore interface {
	feed.Store
	feed.Keepable
}

// AddKeeper makes this device push its records to the keeper at url
// (authenticated with token, if the keeper has one) and pushes them now.
func (c *Client) AddKeeper(ctx context.Context, k Keeper) (*KeepReport, error) {
	if err := c.withJournal(func(j *keep.Journal) error { return j.AddTarget(k) }); err != nil {
		return nil, err
	}
	return c.Keep(ctx, true)
}

// RemoveKeeper stops pushing to the keeper at url.
func (c *Client) RemoveKeeper(url string) error {
	return c.withJournal(func(j *keep.Journal) error { return j.RemoveTarget(url) })
}

// Keepers lists the keepers this device pushes to.
func (c *Client) Keepers() (ts []Keeper, err error) {
	err = c.withJournal(func(j *keep.Journal) error { ts, err = j.Targets(); return err })
	return ts, err
}

// Keep keeps this account's chunks alive on a store that forgets: it puts
// every kept chunk again when half the store's record lifetime has passed
// since this device last did, and pushes to each keeper the records it does
// not hold yet. On a store that does not forget (the embedded store) it does
// nothing. now forces a push to the keepers.
func (c *Client) Keep(ctx context.Context, now bool) (*KeepReport, error) {
	store, err := c.keepable(ctx)
	if err != nil || store == nil {
		return &KeepReport{}, err
	}
	rep := &KeepReport{}
	err = c.withJournal(func(j *keep.Journal) error {
		return errors.Join(c.refreshIfDue(ctx, j, store, rep), c.pushIfDue(ctx, j, store, rep, now))
	})
	return rep, err
}

func (c *Client) refreshIfDue(ctx context.Context, j *keep.Journal, store feed.Keepable, rep *KeepReport) error {
	life, err := store.Lifetime(ctx)
	if err != nil || life == 0 || time.Since(j.LastRefresh()) < life/2 {
		return err
	}
	if _, err := c.RepublishAll(ctx); err != nil {
		return fmt.Errorf("keeping chunks alive: %w", err)
	}
	rep.Refreshed = true
	return j.SetLastRefresh(time.Now())
}

func (c *Client) pushIfDue(ctx context.Context, j *keep.Journal, store feed.Keepable, rep *KeepReport, now bool) error {
	if !now && time.Since(c.lastPush) < keepPushEvery {
		return nil
	}
	pushes, err := keep.Sync(ctx, j, c.Account, store, nil)
	rep.Pushes = pushes
	if err == nil {
		c.lastPush = time.Now()
	}
	return err
}

// keepable returns the client's store as a feed.Keepable, or nil when it
// does not forget (the embedded store).
func (c *Client) keepable(ctx context.Context) (feed.Keepable, error) {
	if c.keepStore != nil || strings.HasPrefix(c.store, "embedded:") {
		return c.keepStore, nil
	}
	s, err := OpenStore(ctx, c.store)
	if err != nil {
		return nil, err
	}
	k, ok := s.(keepableStore)
	if !ok {
		s.Close() // a node that is down for now: try again on the next call
		return nil, fmt.Errorf("keeping chunks alive: %w", feed.ErrUnavailable)
	}
	c.keepStore = k
	return k, nil
}

func (c *Client) withJournal(f func(*keep.Journal) error) error {
	j, err := keep.OpenJournal(filepath.Join(c.home, journalFile))
	if err != nil {
		return err
	}
	defer j.Close()
	return f(j)
}
