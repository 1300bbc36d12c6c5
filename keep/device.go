package keep

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/deaddrop/deaddrop/feed"
	bolt "go.etcd.io/bbolt"
)

// Source lists the chunks an account needs kept (sync.Account.Kept).
type Source interface {
	Kept(keep func(slot feed.Slot, chunk []byte) error) error
}

// Journal is a device's record of its keepers and of what it pushed to each,
// kept beside its state (a cache: losing it only means pushing again).
type Journal struct {
	db *bolt.DB
}

var (
	bucketMeta   = []byte("meta")   // "targets" → JSON; "refreshed" → unix ns
	bucketPushed = []byte("pushed") // keeper URL \0 slot tag → marker
)

// OpenJournal opens (or creates) the journal at path. Open it for one
// operation and close it: another process of the same account may want it.
func OpenJournal(path string) (*Journal, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 10 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("keep: opening journal %s: %w", path, err)
	}
	if err := initJournal(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("keep: journal %s: %w", path, err)
	}
	return &Journal{db: db}, nil
}

// initJournal creates the journal's buckets the first time. A journal is
// opened on every send and read: when it exists already, no write
// transaction (and so no fsync) is spent on it.
func initJournal(db *bolt.DB) error {
	ready := false
	db.View(func(tx *bolt.Tx) error {
		ready = tx.Bucket(bucketMeta) != nil && tx.Bucket(bucketPushed) != nil
		return nil
	})
	if ready {
		return nil
	}
	return db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketPushed} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if meta.Get([]byte("refreshed")) == nil {
			return meta.Put([]byte("refreshed"), binary.BigEndian.AppendUint64(nil, uint64(time.Now().UnixNano())))
		}
		return nil
	})
}

// Close closes the journal.
func (j *Journal) Close() error { return j.db.Close() }

// Targets returns the keepers this device pushes to.
func (j *Journal) Targets() (ts []Target, err error) {
	err = j.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketMeta).Get([]byte("targets"))
		if v == nil {
			return nil
		}
		if err := json.Unmarshal(v, &ts); err != nil {
			return fmt.Errorf("keep: journal's keeper list is damaged: %v", err)
		}
		return nil
	})
	return ts, err
}

func (j *Journal) setTargets(tx *bolt.Tx, ts []Target) error {
	data, err := json.Marshal(ts)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketMeta).Put([]byte("targets"), data)
}

// AddTarget adds a keeper (or replaces its token).
func (j *Journal) AddTarget(t Target) error {
	ts, err := j.Targets()
	if err != nil {
		return err
	}
	ts = slices.DeleteFunc(ts, func(x Target) bool { return x.URL == t.URL })
	return j.db.Update(func(tx *bolt.Tx) error { return j.setTargets(tx, append(ts, t)) })
}

// RemoveTarget stops pushing to a keeper and forgets what was pushed to it.
func (j *Journal) RemoveTarget(url string) error {
	ts, err := j.Targets()
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(ts, func(x Target) bool { return x.URL == url }) {
		return fmt.Errorf("keep: no keeper %s", url)
	}
	ts = slices.DeleteFunc(ts, func(x Target) bool { return x.URL == url })
	return j.db.Update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketPushed).Cursor()
		prefix := append([]byte(url), 0)
		for k, _ := c.Seek(prefix); k != nil && len(k) >= len(prefix) && string(k[:len(prefix)]) == string(prefix); k, _ = c.Seek(prefix) {
			if err := c.Delete(); err != nil {
				return err
			}
		}
		return j.setTargets(tx, ts)
	})
}

// LastRefresh is when this device last put every kept chunk again itself.
// A new journal counts as refreshed when it is created: a device's chunks
// were put moments before its first journal exists.
func (j *Journal) LastRefresh() (t time.Time) {
	j.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get([]byte("refreshed")); len(v) == 8 {
			t = time.Unix(0, int64(binary.BigEndian.Uint64(v)))
		}
		return nil
	})
	return t
}

// SetLastRefresh records a refresh.
func (j *Journal) SetLastRefresh(t time.Time) error {
	return j.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put([]byte("refreshed"), binary.BigEndian.AppendUint64(nil, uint64(t.UnixNano())))
	})
}

// slotTag names a slot in the journal without writing the slot itself down.
func slotTag(s feed.Slot) []byte {
	t := feed.DeriveKey(s, "keep")
	return t[:16]
}

func pushedKey(url string, tag []byte) []byte {
	return append(append([]byte(url), 0), tag...)
}

// PushReport says what a Sync did.
type PushReport struct {
	Keeper  string
	Pushed  int // records sent this time
	Held    int // records the keeper holds now
	Refused int
}

// Sync pushes to every keeper in the journal the records of kept chunks it
// has not taken yet. A keeper that fails is reported and tried again on the
// next Sync; the others still get their records.
func Sync(ctx context.Context, j *Journal, src Source, store feed.Keepable, client *http.Client) ([]PushReport, error) {
	targets, err := j.Targets()
	if err != nil || len(targets) == 0 {
		return nil, err
	}
	var reports []PushReport
	var errs []error
	for _, t := range targets {
		rep, err := syncOne(ctx, j, src, store, client, t)
		reports = append(reports, rep)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return reports, errors.Join(errs...)
}

func syncOne(ctx context.Context, j *Journal, src Source, store feed.Keepable, client *http.Client, t Target) (PushReport, error) {
	rep := PushReport{Keeper: t.URL}
	recs, tags, err := collectNew(j, src, store, t.URL)
	if err != nil || len(recs) == 0 {
		return rep, err
	}
	res, perr := Push(ctx, client, t, recs)
	rep.Pushed, rep.Held, rep.Refused = len(recs), res.Held, len(res.Refused)
	if perr != nil && len(res.Refused) == 0 {
		return rep, perr // nothing reached the keeper: push all of it again next time
	}
	refused := map[string]bool{}
	for _, r := range res.Refused {
		refused[r.Name] = true
	}
	err = j.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPushed)
		for i, r := range recs {
			if !refused[r.Name] {
				if err := b.Put(pushedKey(t.URL, tags[i]), []byte{1}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return rep, errors.Join(perr, err)
}

// collectNew signs the kept chunks not yet pushed to url.
func collectNew(j *Journal, src Source, store feed.Keepable, url string) (recs []feed.Signed, tags [][]byte, err error) {
	tx, err := j.db.Begin(false)
	if err != nil {
		return nil, nil, err
	}
	defer tx.Rollback()
	pushed := tx.Bucket(bucketPushed)
	err = src.Kept(func(slot feed.Slot, chunk []byte) error {
		tag := slotTag(slot)
		if pushed.Get(pushedKey(url, tag)) != nil {
			return nil
		}
		r, err := store.Sign(slot, chunk)
		if err != nil {
			return err
		}
		recs, tags = append(recs, r), append(tags, tag)
		return nil
	})
	return recs, tags, err
}

// Collect signs every chunk src needs kept.
func Collect(src Source, store feed.Keepable) ([]feed.Signed, error) {
	var recs []feed.Signed
	err := src.Kept(func(slot feed.Slot, chunk []byte) error {
		r, err := store.Sign(slot, chunk)
		recs = append(recs, r)
		return err
	})
	return recs, err
}
