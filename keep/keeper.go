// Package keep keeps an account's chunks alive on a network that forgets:
// an IPFS DHT drops a record 48 hours after its last put, and a Swarm chunk
// lives only as long as the postage batch that stamped it.
//
// A Keeper is the long-running side (`deaddrop keep`): any always-on machine
// can run one for an account. It holds only signed records (feed.Signed),
// which it can put again byte for byte but can neither read nor extend: it
// has no key that opens a chunk or derives another slot. It verifies every
// record before it stores it and again before every put, so it never puts
// anything that is not a valid record for its name.
//
// The device side (Push, Collect) sends a keeper the records of the chunks
// the account needs kept (sync.Account.Kept).
package keep

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/deaddrop/deaddrop/feed"
	bolt "go.etcd.io/bbolt"
)

// Options configures a Keeper. Zero values pick the defaults.
type Options struct {
	// Interval is how often each record is put again (default: a quarter
	// of the store's Lifetime, or 12 hours when that is zero).
	Interval time.Duration
	// MaxRecords bounds how many records the keeper holds (default 1,000,000,
	// about 10 GB at the IPNS record limit).
	MaxRecords int
	// TopUpBelow, with a store that has Postage, tops the batch up when it
	// has less than this left to live, by TopUpBy (default 30 days).
	TopUpBelow, TopUpBy time.Duration
	// Now is the clock (tests).
	Now func() time.Time
	// Logf reports records dropped or failing to put (default log.Printf).
	Logf func(format string, args ...any)
}

// Postage is implemented by stores whose chunks live as long as a paid
// batch (Swarm): a keeper keeps its own batch alive.
type Postage interface {
	PostageTTL(ctx context.Context) (time.Duration, error)
	ExtendPostage(ctx context.Context, by time.Duration) error
}

// Keeper holds signed records and puts them again before the network forgets
// them.
type Keeper struct {
	db    *bolt.DB
	store feed.Keepable
	opts  Options

	toppedUp time.Time // the last top-up: the chain takes a while to show it
}

var bucketRecords = []byte("records") // name → last put (8 bytes, unix ns) ‖ record

var (
	// ErrInvalidRecord reports a record that does not verify for its name.
	ErrInvalidRecord = errors.New("keep: record does not verify")
	// ErrFull reports a keeper that already holds MaxRecords records.
	ErrFull = errors.New("keep: keeper is full")
)

// Open opens (or creates) the keeper's database at path, putting records
// again through store.
func Open(ctx context.Context, path string, store feed.Keepable, opts Options) (*Keeper, error) {
	if opts.Interval < 0 || opts.MaxRecords < 0 {
		return nil, fmt.Errorf("keep: negative interval or record limit")
	}
	if opts.Interval == 0 {
		life, err := store.Lifetime(ctx)
		if err != nil {
			return nil, fmt.Errorf("keep: asking the store how long it keeps records: %w", err)
		}
		opts.Interval = 12 * time.Hour
		if life > 0 {
			opts.Interval = life / 4
		}
	}
	if opts.TopUpBy == 0 {
		opts.TopUpBy = 30 * 24 * time.Hour
	}
	if opts.MaxRecords == 0 {
		opts.MaxRecords = 1_000_000
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logf == nil {
		opts.Logf = log.Printf
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("keep: opening %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketRecords)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("keep: %s: %w", path, err)
	}
	return &Keeper{db: db, store: store, opts: opts}, nil
}

// Close closes the keeper's database.
func (k *Keeper) Close() error { return k.db.Close() }

// Interval is how often each record is put again.
func (k *Keeper) Interval() time.Duration { return k.opts.Interval }

// Add verifies each record and stores the valid ones that are new; it
// returns how many it added and an error naming every record it refused.
// A record already held is left as it is (a slot holds one chunk for ever).
// New records are due for a put at once: the device that sent them may be
// about to go away.
func (k *Keeper) Add(recs []feed.Signed) (added int, err error) {
	added, refused, err := k.add(recs)
	if err != nil {
		return 0, err
	}
	errs := make([]error, len(refused))
	for i, r := range refused {
		errs[i] = r.err
	}
	return added, errors.Join(errs...)
}

// refusal is a record Add did not take, and why.
type refusal struct {
	name string
	err  error
}

// add verifies recs and stores the valid new ones in one transaction; it
// returns each refusal with the name of its record.
func (k *Keeper) add(recs []feed.Signed) (added int, refused []refusal, err error) {
	valid := recs[:0:0]
	for _, r := range recs {
		if verr := k.store.VerifySigned(r); verr != nil {
			refused = append(refused, refusal{r.Name, fmt.Errorf("%w: %w", ErrInvalidRecord, verr)})
			continue
		}
		valid = append(valid, r)
	}
	if len(valid) == 0 {
		return 0, refused, nil
	}
	err = k.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRecords)
		n := b.Stats().KeyN
		for _, r := range valid {
			if b.Get([]byte(r.Name)) != nil {
				continue
			}
			if n >= k.opts.MaxRecords {
				refused = append(refused, refusal{r.Name, fmt.Errorf("%w (%d records): %s", ErrFull, k.opts.MaxRecords, r.Name)})
				continue
			}
			if err := b.Put([]byte(r.Name), encodeEntry(time.Time{}, r.Data)); err != nil {
				return err
			}
			n++
			added++
		}
		return nil
	})
	if err != nil {
		return 0, nil, fmt.Errorf("keep: storing records: %w", err)
	}
	return added, refused, nil
}

// Len returns how many records the keeper holds.
func (k *Keeper) Len() (n int) {
	k.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketRecords).Stats().KeyN
		return nil
	})
	return n
}

// Has reports whether the keeper holds a record for name.
func (k *Keeper) Has(name string) (has bool) {
	k.db.View(func(tx *bolt.Tx) error {
		has = tx.Bucket(bucketRecords).Get([]byte(name)) != nil
		return nil
	})
	return has
}

// Refresh puts again every record whose last put is at least Interval old
// (all of them when all is set). A record that no longer verifies (its
// validity ended) is dropped; a put that fails is tried on the next Refresh.
func (k *Keeper) Refresh(ctx context.Context, all bool) (put int, err error) {
	due, err := k.due(all)
	if err != nil {
		return 0, err
	}
	var errs []error
	var done []string
	var drop []string
	for _, r := range due {
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			break
		}
		if verr := k.store.VerifySigned(r); verr != nil {
			k.opts.Logf("keep: dropping %s: %v", r.Name, verr)
			drop = append(drop, r.Name)
			continue
		}
		if perr := k.store.PutSigned(ctx, r); perr != nil && !errors.Is(perr, feed.ErrSlotUsed) {
			errs = append(errs, perr)
			continue
		}
		done = append(done, r.Name)
	}
	if err := k.record(done, drop); err != nil {
		errs = append(errs, err)
	}
	return len(done), errors.Join(errs...)
}

// due lists the records to put now.
func (k *Keeper) due(all bool) ([]feed.Signed, error) {
	cutoff := k.opts.Now().Add(-k.opts.Interval)
	var due []feed.Signed
	err := k.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRecords).ForEach(func(name, v []byte) error {
			last, data, err := decodeEntry(v)
			if err != nil {
				return fmt.Errorf("keep: record %s: %w", name, err)
			}
			if all || !last.After(cutoff) {
				due = append(due, feed.Signed{Name: string(name), Data: data})
			}
			return nil
		})
	})
	return due, err
}

// record notes the time of the puts that succeeded and removes dropped
// records, in one commit.
func (k *Keeper) record(done, drop []string) error {
	if len(done)+len(drop) == 0 {
		return nil
	}
	now := k.opts.Now()
	return k.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRecords)
		for _, name := range done {
			v := b.Get([]byte(name))
			if v == nil {
				continue
			}
			_, data, err := decodeEntry(v)
			if err != nil {
				return err
			}
			if err := b.Put([]byte(name), encodeEntry(now, data)); err != nil {
				return err
			}
		}
		for _, name := range drop {
			if err := b.Delete([]byte(name)); err != nil {
				return err
			}
		}
		return nil
	})
}

// Run refreshes due records every tick until ctx ends. The tick is a tenth
// of the interval (at most a minute), so a new record waits at most that long
// for its first put by the keeper.
func (k *Keeper) Run(ctx context.Context) error {
	tick := min(k.opts.Interval/10, time.Minute)
	tick = max(tick, 10*time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		if n, err := k.Refresh(ctx, false); err != nil && ctx.Err() == nil {
			k.opts.Logf("keep: %d records put, and: %v", n, err)
		}
		if err := k.TopUp(ctx); err != nil && ctx.Err() == nil {
			k.opts.Logf("keep: %v", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// TopUp extends the store's postage batch by TopUpBy when it has less than
// TopUpBelow left; it does nothing on a store without postage or when
// TopUpBelow is zero.
func (k *Keeper) TopUp(ctx context.Context) error {
	p, ok := k.store.(Postage)
	if !ok || k.opts.TopUpBelow <= 0 || k.opts.Now().Sub(k.toppedUp) < time.Hour {
		return nil
	}
	ttl, err := p.PostageTTL(ctx)
	if err != nil || ttl >= k.opts.TopUpBelow {
		return err
	}
	if err := p.ExtendPostage(ctx, k.opts.TopUpBy); err != nil {
		k.toppedUp = k.opts.Now() // a refused top-up is not retried every tick either
		return fmt.Errorf("postage batch has %v left, topping it up failed: %w", ttl.Round(time.Minute), err)
	}
	k.toppedUp = k.opts.Now()
	k.opts.Logf("keep: postage batch had %v left, extended by %v", ttl.Round(time.Minute), k.opts.TopUpBy)
	return nil
}

func encodeEntry(last time.Time, data []byte) []byte {
	out := make([]byte, 8+len(data))
	if !last.IsZero() {
		binary.BigEndian.PutUint64(out, uint64(last.UnixNano()))
	}
	copy(out[8:], data)
	return out
}

// decodeEntry splits a stored entry, copying the record out of bbolt's
// memory map.
func decodeEntry(v []byte) (last time.Time, data []byte, err error) {
	if len(v) < 8 {
		return last, nil, errors.New("stored entry is truncated")
	}
	if ns := binary.BigEndian.Uint64(v); ns != 0 {
		last = time.Unix(0, int64(ns))
	}
	return last, append([]byte(nil), v[8:]...), nil
}
