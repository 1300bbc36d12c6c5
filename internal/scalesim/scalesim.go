// Package scalesim simulates one deaddrop user's day against the network, to
// count the load a user puts on Swarm or on the IPFS DHT (docs/scale.md).
//
// It drives real sync.Accounts — the subject ("me") and one account per
// contact — over one shared in-memory store, with a virtual clock
// (sync.Options.Now) stepped a minute at a time through a simulated day. Each
// account reaches the store through its own Counter, so what is counted is
// exactly the subject's traffic: GETs, hits and misses, PUTs of new chunks and
// PUTs of chunks already stored (republishes), and the bytes each moves. The
// subject does what deaddrop.Client.Receive does while the app is open: a
// Poll and a Republish every PollEvery. Contacts are modelled only as far as
// they matter to the subject: they send their messages to the subject, and
// poll (and so acknowledge) while their own app is open.
//
// What a day costs the subject is then scaled to a million users by
// arithmetic (docs/scale.md); the benchmark BenchmarkScale reports the
// per-day counts.
package scalesim

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/sync"
	"github.com/deaddrop/deaddrop/transport"
)

// Profile is one kind of user.
type Profile struct {
	Name     string
	Contacts int
	// Sent and Received are messages a day, sent by the subject to contacts
	// chosen at random, and sent to the subject by contacts chosen at random.
	Sent, Received int
	// The subject's app is open from OpenFrom (after midnight) for Open, and
	// polls every PollEvery while open. Each contact's app is open for Open
	// too, starting at OpenFrom plus a random offset within ±Spread.
	OpenFrom, Open, Spread time.Duration
	PollEvery              time.Duration
	History                bool
	Seed                   uint64
	// EveryPeerPoll runs every poll of every contact while open, idle or
	// not (slow; the default runs only those that can find something, and
	// a test checks that both count the same).
	EveryPeerPoll bool
	// Slow profiles run in the benchmark only when asked (see BenchmarkScale).
	Slow bool
}

// Counts is what one account sent to the store.
type Counts struct {
	Gets, Hits, Misses int
	NewPuts, RePuts    int   // PUTs of a slot not yet stored / already stored
	BytesUp, BytesDown int64 // chunk bytes (payloads, not protocol overhead)
}

// Puts is every PUT.
func (c Counts) Puts() int { return c.NewPuts + c.RePuts }

func (c Counts) sub(d Counts) Counts {
	return Counts{c.Gets - d.Gets, c.Hits - d.Hits, c.Misses - d.Misses,
		c.NewPuts - d.NewPuts, c.RePuts - d.RePuts, c.BytesUp - d.BytesUp, c.BytesDown - d.BytesDown}
}

// Counter is a feed.Store in front of a shared store that counts one
// account's requests. Close does not close the shared store.
type Counter struct {
	inner feed.Store
	mu    gosync.Mutex
	c     Counts
}

// Get implements feed.Store.
func (s *Counter) Get(ctx context.Context, slot feed.Slot) ([]byte, error) {
	chunk, err := s.inner.Get(ctx, slot)
	s.mu.Lock()
	s.c.Gets++
	switch {
	case err == nil:
		s.c.Hits++
		s.c.BytesDown += int64(len(chunk))
	case errors.Is(err, feed.ErrNotFound):
		s.c.Misses++
	}
	s.mu.Unlock()
	return chunk, err
}

// Put implements feed.Store.
func (s *Counter) Put(ctx context.Context, slot feed.Slot, chunk []byte) error {
	_, gerr := s.inner.Get(ctx, slot) // uncounted: is this a republish?
	err := s.inner.Put(ctx, slot, chunk)
	s.mu.Lock()
	if gerr == nil {
		s.c.RePuts++
	} else {
		s.c.NewPuts++
	}
	s.c.BytesUp += int64(len(chunk))
	s.mu.Unlock()
	return err
}

// Close implements feed.Store; the shared store stays open.
func (s *Counter) Close() error { return nil }

// Counts returns the counts so far.
func (s *Counter) Counts() Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c
}

// clock is the virtual clock every account reads.
type clock struct{ ns atomic.Int64 }

func (c *clock) Now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Add(d time.Duration) { c.ns.Add(int64(d)) }

// Result is one simulated day of one profile.
type Result struct {
	Profile Profile
	Day     Counts // the subject's traffic during the day
	Polls   int    // polls the subject made
	// SendPuts, PollPuts and RepublishPuts split the day's PUTs by the call
	// that made them (history blocks also go out in the background after a
	// send: they land in whichever phase runs then).
	SendPuts, PollPuts, RepublishPuts int
	// PollGets is GETs per poll: all of them, and those of polls that
	// found nothing new.
	IdlePolls, IdlePollGets int
	// Kept is the chunks the subject must keep alive at the end of the day
	// (sync.Account.Kept: unacknowledged messages, announcements, device
	// lists, history blocks), and KeptStart the same at its start.
	Kept, KeptStart  int
	Delivered, Acked int // messages the subject received, and saw acknowledged
	Elapsed          time.Duration
}

// Run simulates one day of p after a set-up day (invites, first contact,
// and one day of the same traffic, so that the measured day starts from a
// steady state). dir holds the accounts' state files.
func Run(ctx context.Context, dir string, p Profile) (*Result, error) {
	start := time.Now()
	store := feed.NewMemory()
	clk := new(clock)
	clk.Add(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).Sub(time.Unix(0, 0)))
	opts := sync.Options{Now: clk.Now, NoSync: true, NoHistory: !p.History}
	rng := rand.New(rand.NewPCG(p.Seed, 17))

	meStore := &Counter{inner: store}
	me, err := sync.Create(filepath.Join(dir, "me"), "me", transport.NewDirect(meStore), opts)
	if err != nil {
		return nil, err
	}
	defer me.Close()
	type peer struct {
		acc      *sync.Account
		name     string // the peer as the subject calls it
		me       string // the subject as the peer calls it
		openFrom time.Duration
		dirty    bool // the subject wrote since its last poll
	}
	peers := make([]*peer, p.Contacts)
	var watchMu gosync.Mutex
	for i := range peers {
		name := fmt.Sprintf("c%d", i)
		cs := &Counter{inner: store}
		acc, err := sync.Create(filepath.Join(dir, name), name, transport.NewDirect(cs), opts)
		if err != nil {
			return nil, err
		}
		defer acc.Close()
		inv, err := me.Invite(name)
		if err != nil {
			return nil, err
		}
		meName, err := acc.Accept(ctx, inv, "me")
		if err != nil {
			return nil, err
		}
		off := time.Duration(0)
		if p.Spread > 0 {
			off = time.Duration(rng.Int64N(int64(2*p.Spread))) - p.Spread
		}
		peers[i] = &peer{acc: acc, name: name, me: meName, openFrom: p.OpenFrom + off}
	}
	for range 3 { // first contact settles
		if _, err := me.Poll(ctx, nil); err != nil {
			return nil, err
		}
		for _, pe := range peers {
			if _, err := pe.acc.Poll(ctx, nil); err != nil {
				return nil, err
			}
		}
	}
	kept := func() (n int) {
		me.Kept(func(feed.Slot, []byte) error { n++; return nil })
		return n
	}

	const day = 24 * time.Hour
	open := func(from time.Duration, t time.Duration) bool {
		t = (t - from + 2*day) % day
		return t < p.Open
	}
	res := &Result{Profile: p}
	steps := int(day / p.PollEvery)
	wrote := meStore.Counts().Puts()
	for d := range 2 { // day 0 warms up, day 1 is measured
		// Today's sends, each at a step: the subject's in its open time,
		// each contact's in the contact's.
		mine := map[int][]int{}
		for range p.Sent {
			at := int((p.OpenFrom + time.Duration(rng.Int64N(int64(p.Open)))) % day / p.PollEvery)
			mine[at] = append(mine[at], rng.IntN(p.Contacts))
		}
		theirs := map[int][]int{}
		for range p.Received {
			i := rng.IntN(p.Contacts)
			at := int((peers[i].openFrom + time.Duration(rng.Int64N(int64(p.Open))) + day) % day / p.PollEvery)
			theirs[at] = append(theirs[at], i)
		}
		var base Counts
		if d == 1 {
			base = meStore.Counts()
			res.KeptStart = kept()
		}
		for step := range steps {
			t := time.Duration(step) * p.PollEvery
			for _, i := range theirs[step] {
				pe := peers[i]
				if _, err := pe.acc.Send(ctx, pe.me, fmt.Sprintf("day %d step %d from %s", d, step, pe.name)); err != nil {
					return nil, err
				}
				watchMu.Lock()
				pe.dirty = true // what its next poll probes has changed
				watchMu.Unlock()
			}
			if open(p.OpenFrom, t) {
				for _, i := range mine[step] {
					c0 := meStore.Counts()
					if _, err := me.Send(ctx, peers[i].name, fmt.Sprintf("day %d step %d to %s", d, step, peers[i].name)); err != nil {
						return nil, err
					}
					if d == 1 {
						res.SendPuts += meStore.Counts().sub(c0).Puts()
					}
				}
				c0 := meStore.Counts()
				r, err := me.Poll(ctx, nil)
				if err != nil {
					return nil, err
				}
				c1 := meStore.Counts()
				if _, err := me.Republish(ctx); err != nil {
					return nil, err
				}
				c2 := meStore.Counts()
				if d == 1 {
					res.Polls++
					res.Delivered += r.NewCount
					res.Acked += r.ReadCount
					res.PollPuts += c1.sub(c0).Puts()
					res.RepublishPuts += c2.sub(c1).Puts()
					if r.NewCount == 0 && r.ReadCount == 0 {
						res.IdlePolls++
						res.IdlePollGets += c1.sub(c0).Gets
					}
				}
			}
			// Contacts poll every step while open. A contact's poll that
			// finds nothing changes nothing the subject sees, so only the
			// polls that may find something are run: after the subject
			// wrote anything (a message, an ack, a republish, a block), and
			// after the contact sent (what its poll probes changed).
			// EveryPeerPoll checks that this counts the same.
			if c := meStore.Counts(); c.Puts() > wrote {
				wrote = c.Puts()
				watchMu.Lock()
				for _, pe := range peers {
					pe.dirty = true
				}
				watchMu.Unlock()
			}
			for _, pe := range peers {
				watchMu.Lock()
				due := (pe.dirty || p.EveryPeerPoll) && open(pe.openFrom, t)
				watchMu.Unlock()
				if due {
					if _, err := pe.acc.Poll(ctx, nil); err != nil {
						return nil, err
					}
					watchMu.Lock()
					pe.dirty = false
					watchMu.Unlock()
				}
			}
			clk.Add(p.PollEvery)
		}
		if d == 1 {
			res.Day = meStore.Counts().sub(base)
			res.Kept = kept()
		}
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

// Profiles are the stated profiles of docs/scale.md.
var Profiles = []Profile{
	{Name: "light", Contacts: 10, Sent: 20, Received: 20, OpenFrom: 9 * time.Hour, Open: 2 * time.Hour, Spread: 4 * time.Hour, PollEvery: time.Minute, History: true, Seed: 1},
	{Name: "typical", Contacts: 50, Sent: 100, Received: 100, OpenFrom: 8 * time.Hour, Open: 8 * time.Hour, Spread: 4 * time.Hour, PollEvery: time.Minute, History: true, Seed: 2},
	{Name: "typical-nohistory", Contacts: 50, Sent: 100, Received: 100, OpenFrom: 8 * time.Hour, Open: 8 * time.Hour, Spread: 4 * time.Hour, PollEvery: time.Minute, History: false, Seed: 2, Slow: true},
	{Name: "always-open", Contacts: 50, Sent: 100, Received: 100, OpenFrom: 0, Open: 24 * time.Hour, Spread: 0, PollEvery: time.Minute, History: true, Seed: 3, Slow: true},
}
