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

// KeepableStore is a store whose network forgets (IPFS, Swarm).
type KeepableStore interface {
	feed.Store
	feed.Keepable
}

// ErrNeverForgets reports a keeping operation on the embedded store, which
// keeps every chunk for ever.
var ErrNeverForgets = errors.New("the embedded store never forgets a chunk: keeping is for ipfs: and swarm: stores")

// OpenKeepable opens a store whose network forgets, for signing records and
// putting them again. A node that does not answer yet is ErrUnavailable (try
// again later); the embedded store is ErrNeverForgets.
func OpenKeepable(ctx context.Context, spec string) (KeepableStore, error) {
	if strings.HasPrefix(spec, "embedded:") {
		return nil, ErrNeverForgets
	}
	s, err := OpenStore(ctx, spec)
	if err != nil {
		return nil, err
	}
	k, ok := s.(KeepableStore)
	if !ok {
		s.Close() // feed.Lazy: the node is down for now
		return nil, fmt.Errorf("keeping chunks alive: %w", feed.ErrUnavailable)
	}
	return k, nil
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
	c.keepMu.Lock() // Watch keeps from its goroutine, a send from the caller's
	defer c.keepMu.Unlock()
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
	if _, err := c.acct.RepublishAll(ctx); err != nil {
		return fmt.Errorf("keeping chunks alive: %w", err)
	}
	rep.Refreshed = true
	return j.SetLastRefresh(time.Now())
}

func (c *Client) pushIfDue(ctx context.Context, j *keep.Journal, store feed.Keepable, rep *KeepReport, now bool) error {
	if !now && time.Since(c.lastPush) < keepPushEvery {
		return nil
	}
	pushes, err := keep.Sync(ctx, j, c.acct, store, nil)
	rep.Pushes = pushes
	if err == nil {
		c.lastPush = time.Now()
	}
	return err
}

// keepable returns the client's store as a feed.Keepable, or nil when it
// does not forget (the embedded store).
func (c *Client) keepable(ctx context.Context) (feed.Keepable, error) {
	c.storeMu.Lock()
	defer c.storeMu.Unlock()
	if c.keepStore != nil {
		return c.keepStore, nil
	}
	k, err := OpenKeepable(ctx, c.store)
	if errors.Is(err, ErrNeverForgets) {
		return nil, nil
	}
	if err != nil {
		return nil, err
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

// postageWarnBefore is how long before a Swarm postage batch runs out that
// the client warns: every chunk the batch stamped disappears with it.
const postageWarnBefore = 14 * 24 * time.Hour

// StoreStatus says how long the store keeps this account's chunks, and what
// keeps them alive.
type StoreStatus struct {
	// RecordLifetime is how long the network keeps a record after its last
	// put (IPFS: 48 hours); zero when a put does not bound it.
	RecordLifetime time.Duration
	// LastRefresh is when this device last put every kept chunk again.
	LastRefresh time.Time
	// Keepers are the keepers this device pushes its records to.
	Keepers []Keeper
	// Postage is the Swarm postage batch this device stamps with (nil on
	// other stores).
	Postage *feed.BatchStatus
	// Warnings are what needs the user's attention, in words.
	Warnings []string
}

// StoreStatus reports how long the store keeps this account's chunks.
func (c *Client) StoreStatus(ctx context.Context) (*StoreStatus, error) {
	st := &StoreStatus{}
	store, err := c.keepable(ctx)
	if err != nil || store == nil {
		return st, err
	}
	if st.RecordLifetime, err = store.Lifetime(ctx); err != nil {
		return st, err
	}
	err = c.withJournal(func(j *keep.Journal) error {
		st.LastRefresh = j.LastRefresh()
		st.Keepers, err = j.Targets()
		return err
	})
	if err != nil {
		return st, err
	}
	if b, ok := store.(interface {
		BatchStatus(context.Context) (feed.BatchStatus, error)
	}); ok {
		ps, err := b.BatchStatus(ctx)
		if err != nil {
			return st, err
		}
		st.Postage = &ps
		st.Warnings = postageWarnings(ps)
	}
	if st.RecordLifetime > 0 && len(st.Keepers) == 0 {
		st.Warnings = append(st.Warnings, fmt.Sprintf("no keeper: if every device of this account stays off for %v, the store forgets its history and unread messages ('deaddrop keeper add <url>')", st.RecordLifetime.Round(time.Hour)))
	}
	return st, nil
}

func postageWarnings(b feed.BatchStatus) []string {
	var w []string
	if b.TTL < postageWarnBefore {
		w = append(w, fmt.Sprintf("postage batch %.8s… runs out in %v: every chunk it stamped (history, unread messages) disappears then; top it up ('deaddrop postage topup')", b.ID, b.TTL.Round(time.Hour)))
	}
	if b.BucketCapacity > 0 && b.Utilization*10 >= b.BucketCapacity*9 {
		w = append(w, fmt.Sprintf("postage batch %.8s… is %d%% full: when full, uploads fail", b.ID, 100*b.Utilization/b.BucketCapacity))
	}
	return w
}

// ErrNoPostage reports a postage operation on a store without postage.
var ErrNoPostage = errors.New("this store has no postage batch (only Swarm stores pay for storage)")

// ExtendPostage tops up the Swarm postage batch this device stamps with so
// that it lives d longer, paid by the node's wallet.
func (c *Client) ExtendPostage(ctx context.Context, d time.Duration) error {
	store, err := c.keepable(ctx)
	if err != nil {
		return err
	}
	p, ok := store.(keep.Postage)
	if !ok {
		return ErrNoPostage
	}
	return p.ExtendPostage(ctx, d)
}
