package sync

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	gosync "sync"
	"time"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/ratchet"
	"github.com/deaddrop/deaddrop/sync/wave"
	bolt "go.etcd.io/bbolt"
)

// The poll plan. Everything a Poll reads is a reader of one wave.Gate: the
// directory, each pending invite's rendezvous slot, each conversation
// session, each other device's history log and each contact's announcement
// feed. Every reader asks for its first slots, and the gate fetches them all
// in one wave; the readers that found something ask for more, and their
// requests form the next wave, and so on. An idle account costs one wave, a
// catch-up of N messages about N/Window waves however many other readers
// there are, and a store's miss timeout is paid once per wave, not once per
// reader and round.

const (
	// firstWindow is the window of a conversation's second round: its first
	// round probes one slot per chain (an idle conversation costs two GETs
	// per session), and a hit there means more is likely. After it the
	// window doubles, or jumps to the full window when the round's lookahead
	// probe saw that much waiting (see lookahead).
	firstWindow = 8
	// nextChainProbe is how many slots of the peer's next chain (the one it
	// starts when it ratchets) a round probes: 2, so that one message lost
	// by the store does not hide the rest of a chain until its republish.
	nextChainProbe = 2
	// maxSkippedPolled bounds the skipped-key slots a session polls per Poll,
	// picked at random among its skipped keys: a header claiming a gap of a
	// thousand messages costs at most this many GETs a Poll, until its keys
	// expire (Options.SkippedKeyTTL).
	maxSkippedPolled = 16
)

// Poll fetches everything new, in waves (see above). Each conversation round
// is applied and committed in its own short write transaction after its
// fetch, never across one, and acknowledged only after its commit.
func (a *Account) Poll(ctx context.Context, progress Progress) (*PollResult, error) {
	res := new(PollResult)
	defer func() { res.Problems = append(res.Problems, a.takeProblems()...) }()
	sessions, err := a.keysOf(bucketConvs)
	if err != nil {
		return res, err
	}
	contacts, err := a.keysOf(bucketContacts)
	if err != nil {
		return res, err
	}
	var logs []string
	if a.historyOn {
		l, err := a.deviceList()
		if err != nil {
			return res, err
		}
		for _, id := range logDevices(l) {
			if id != a.device {
				logs = append(logs, id)
			}
		}
	}
	if progress != nil {
		var mu gosync.Mutex
		p := progress
		progress = func(contact string, delivered int) {
			mu.Lock()
			defer mu.Unlock()
			p(contact, delivered)
		}
	}

	g := wave.New(a.tr.Get, a.opts.MaxInFlight)
	get := func(ctx context.Context, slots []feed.Slot) []fetched {
		out := make([]fetched, len(slots))
		for i, r := range g.Get(ctx, slots) {
			out[i] = fetched{slots[i], r.Chunk, r.Err}
		}
		return out
	}
	probe := func(ctx context.Context, slots []feed.Slot, ahead feed.Slot) ([]fetched, bool) {
		results, p := g.GetProbe(ctx, slots, ahead)
		out := make([]fetched, len(slots))
		for i, r := range results {
			out[i] = fetched{slots[i], r.Chunk, r.Err}
		}
		return out, p.Err == nil
	}
	type part struct {
		res PollResult
		err error
	}
	var parts []*part
	shared := new(listing)
	start := func(read func(res *PollResult) error) {
		p := &part{res: PollResult{shared: shared}}
		parts = append(parts, p)
		g.Go(func() { p.err = read(&p.res) })
	}
	dirDone := make(chan struct{})
	if a.historyOn {
		start(func(*PollResult) error { defer close(dirDone); return a.syncDirectoryWith(ctx, get) })
	}
	readSession := func(name string, res *PollResult) error {
		err := a.catchUp(ctx, get, probe, name, res, progress)
		if errors.Is(err, ErrUnknownContact) {
			return nil // the session was dropped meanwhile (its device was removed)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	}
	start(func(res *PollResult) error {
		if err := a.pollInvites(ctx, get, res); err != nil {
			return err
		}
		// A joiner may have written more after the first message.
		var errs []error
		for _, name := range res.joinedSessions {
			errs = append(errs, readSession(name, res))
		}
		return errors.Join(errs...)
	})
	for _, name := range sessions {
		start(func(res *PollResult) error { return readSession(name, res) })
	}
	for _, id := range logs {
		start(func(*PollResult) error { return a.syncLog(ctx, get, id, func() { g.Await(func() { <-dirDone }) }) })
	}
	for _, name := range contacts {
		start(func(*PollResult) error { return a.announcementsOf(ctx, get, name) })
	}
	g.Wait()

	var errs []error
	res.New, res.Read = keepLast(res.New, shared.news), keepLast(res.Read, shared.read)
	for _, p := range parts {
		res.NewCount += p.res.NewCount
		res.ReadCount += p.res.ReadCount
		res.Joined = append(res.Joined, p.res.Joined...)
		res.Problems = append(res.Problems, p.res.Problems...)
		res.Fetched += p.res.Fetched
		errs = append(errs, p.err)
	}
	res.Rounds, _ = g.Stats()
	errs = append(errs, a.writeAfterPoll(ctx))
	return res, errors.Join(errs...)
}

// writeAfterPoll writes what a Poll leaves owed, all in one wave: an ack to
// every conversation that received something no message of ours has acked
// yet (queued in one transaction), the history blocks of what was received,
// and the device directory if it changed.
func (a *Account) writeAfterPoll(ctx context.Context) error {
	names, outs, err := a.queueOwedAcks()
	if err != nil {
		return fmt.Errorf("ack: %w", err)
	}
	// Messages a verified meta released from a device session's gate.
	rnames, routs, err := a.takeReleased()
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	names, outs = append(names, rnames...), append(outs, routs...)
	// Everything is sealed and committed first, so that all the puts leave
	// together: one round trip, not one per kind of write.
	if err := a.packLog(); err != nil {
		return err
	}
	var dirErr, logErr error
	var wg gosync.WaitGroup
	wg.Go(func() { dirErr = a.flushDirectory(ctx) })
	wg.Go(func() { logErr = a.putOwnBlocks(ctx, false) })
	a.putCopies(ctx, names, outs, false) // a failed ack stays queued: Republish retries it
	wg.Wait()
	return errors.Join(dirErr, logErr)
}

// catchUp reads one conversation session's new messages. Each round it
// computes the slots to fetch from the session as last committed, fetches
// them (in the Poll's wave), then applies what it found in slot order in one
// write transaction that reloads the session: a Send in between changes only
// the sending side, and a chunk that no longer fits is reported and skipped.
// It fetches no slot twice per call and nothing in a chain past a slot found
// empty.
func (a *Account) catchUp(ctx context.Context, get fetcher, probe prober, name string, res *PollResult, progress Progress) error {
	sess, err := a.tendSkipped(name, res)
	if err != nil {
		return err
	}
	plan := newFetchPlan()
	window, delivered := 1, 0
	for round := 0; ; round++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		targets := plan.next(pollTargets(sess, window, round == 0))
		if len(targets) == 0 {
			return nil
		}
		slots := make([]feed.Slot, len(targets))
		for i, t := range targets {
			slots[i] = t.Slot
		}
		res.Fetched += len(slots)
		var results []fetched
		aheadFound := false
		if ahead, ok := lookahead(sess, window, a.opts.Window, round); ok {
			res.Fetched++
			results, aheadFound = probe(ctx, slots, ahead)
		} else {
			results = get(ctx, slots)
		}
		found, err := splitFetched(results)
		if err != nil {
			return err
		}
		plan.record(targets, results)
		if len(found) == 0 {
			return nil
		}
		r := &catchUpRound{a: a, name: name}
		if err := r.begin(); err != nil {
			return err
		}
		if err := r.apply(found); err != nil {
			r.rollback()
			return err
		}
		n := len(r.result.New)
		if _, err := r.commit(res, false); err != nil {
			r.rollback()
			return err
		}
		delivered += n
		if progress != nil {
			progress(contactOfSession(name), delivered)
		}
		sess = r.sess
		window = nextWindow(window, a.opts.Window, aheadFound)
	}
}

// lookahead returns the slot a round probes beside its window to size the
// next one: the last slot of a full window (Options.Window) right after this
// round's. If it holds a message, at least a full window more is waiting and
// the next round fetches the whole window (no misses wasted); if not, the
// window only doubles. So a long catch-up reaches the full window after the
// 8-slot round (1, 8, 64, 64, …: ⌈N/W⌉ + 2 waves of GETs), while a burst of a
// few dozen messages grows 1, 8, 16, 32 and costs few misses past its end,
// plus this one GET a round. The probe rides the wave only while the wave's
// other GETs take (wave.Gate.GetProbe): a probe that misses never adds a
// miss timeout to a wave of hits. Its chunk is not applied (it is out of
// order): a later window fetches its slot again, in order. The first round
// has none: an idle session costs only its two probes.
func lookahead(sess *ratchet.Session, window, full, round int) (feed.Slot, bool) {
	if round == 0 || window >= full {
		return feed.Slot{}, false
	}
	var last feed.Slot
	found := false
	for _, t := range sess.PollTargets(window + full) {
		if t.Kind == ratchet.Current {
			last, found = t.Slot, true
		}
	}
	return last, found
}

// nextWindow is the window of the round after one of the given window that
// found messages; aheadFound says whether its lookahead probe found one.
func nextWindow(window, full int, aheadFound bool) int {
	if aheadFound {
		return full
	}
	return min(max(2*window, firstWindow), full)
}

// pollTargets is what a session polls in a round: window slots of its
// current chain, the first slots of the peer's next chain, and, in the first round only,
// at most maxSkippedPolled of its skipped-key slots.
func pollTargets(s *ratchet.Session, window int, withSkipped bool) []ratchet.Target {
	var out, skipped []ratchet.Target
	for _, t := range s.PollTargets(window) {
		switch {
		case t.Kind == ratchet.Skipped:
			skipped = append(skipped, t)
		case t.Kind == ratchet.Next && t.Index >= nextChainProbe:
			// Once the next chain's first slot is found, the session
			// moves to it and it is the current chain, read with the
			// growing window; until then a wide window there is all misses.
		default:
			out = append(out, t)
		}
	}
	if !withSkipped {
		return out
	}
	if len(skipped) > maxSkippedPolled {
		// Not a secret: which slots are polled is visible to the store
		// anyway; the pick only has to be fair over Polls.
		rand.Shuffle(len(skipped), func(i, j int) { skipped[i], skipped[j] = skipped[j], skipped[i] })
		skipped = skipped[:maxSkippedPolled]
	}
	return append(out, skipped...)
}

// tendSkipped returns the session of conversation name as committed, after
// recording when each of its skipped keys was first seen and dropping those
// older than SkippedKeyTTL. It writes only when something changed: an idle
// conversation costs one read transaction.
func (a *Account) tendSkipped(name string, res *PollResult) (*ratchet.Session, error) {
	var sess *ratchet.Session
	changed := false
	err := a.db.View(func(tx *bolt.Tx) error {
		c, err := loadConv(tx, name)
		if err != nil {
			return err
		}
		if sess, err = loadSession(c); err != nil {
			return err
		}
		changed = a.expireSkipped(c, sess)
		return nil
	})
	if err != nil || !changed {
		return sess, err
	}
	err = a.db.Update(func(tx *bolt.Tx) error {
		c, err := loadConv(tx, name)
		if err != nil {
			return err
		}
		if sess, err = loadSession(c); err != nil {
			return err
		}
		if !a.expireSkipped(c, sess) {
			return nil
		}
		released, err := a.releaseLostGap(tx, c, sess)
		if err != nil {
			return err
		}
		res.list(released, nil)
		return saveConv(tx, c, sess)
	})
	return sess, err
}

// releaseLostGap delivers the messages held behind a gap that can no longer
// fill. Messages are delivered in seq order, so one that arrives after a gap
// waits for the missing one; the missing one can only come from a slot whose
// key is cached as skipped. Once the session has no skipped key left (they
// expired after SkippedKeyTTL), nothing can fill the gap: the messages after
// it are delivered, and the loss is reported, rather than holding them (and
// everything after them) for ever.
func (a *Account) releaseLostGap(tx *bolt.Tx, c *convRecord, sess *ratchet.Session) ([]Message, error) {
	for _, t := range sess.PollTargets(0) {
		if t.Kind == ratchet.Skipped {
			return nil, nil // the gap may still fill
		}
	}
	prefix := contactPrefix(c.Name)
	k, _ := tx.Bucket(bucketHeld).Cursor().Seek(prefix)
	if k == nil || !bytes.HasPrefix(k, prefix) || len(k) != len(prefix)+8 {
		return nil, nil
	}
	first := binary.BigEndian.Uint64(k[len(prefix):])
	a.problem(fmt.Errorf("%s: %d message(s) never arrived within %v (their keys expired); the messages after them are delivered",
		contactOfSession(c.Name), first-c.RecvContig-1, a.opts.SkippedKeyTTL))
	c.RecvContig = first - 1
	var out []Message
	held := tx.Bucket(bucketHeld)
	for {
		env, err := takeHeld(held, c.Name, c.RecvContig+1)
		if err != nil || env == nil {
			return out, err
		}
		m, err := a.deliver(tx, c, env)
		if err != nil {
			return out, err
		}
		if m != nil {
			out = append(out, *m)
		}
	}
}

// expireSkipped updates c.SkippedSeen from sess's skipped keys and drops
// the expired ones from sess; it reports whether anything changed.
func (a *Account) expireSkipped(c *convRecord, sess *ratchet.Session) bool {
	now := a.opts.Now()
	changed := false
	live := map[string]bool{}
	for _, t := range sess.PollTargets(0) {
		key := t.Slot.String()
		first, ok := c.SkippedSeen[key]
		switch {
		case !ok:
			if c.SkippedSeen == nil {
				c.SkippedSeen = map[string]int64{}
			}
			c.SkippedSeen[key], changed = now.Unix(), true
			live[key] = true
		case now.Sub(time.Unix(first, 0)) > a.opts.SkippedKeyTTL:
			sess.DropSkipped(t.Slot)
			changed = true
		default:
			live[key] = true
		}
	}
	for key := range c.SkippedSeen {
		if !live[key] {
			delete(c.SkippedSeen, key)
			changed = true
		}
	}
	return changed
}
