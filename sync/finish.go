package sync

import (
	"context"
	gosync "sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// What a send does after the user stopped waiting.
//
// Send returns once the message is durable (its outbox entry, the message
// and its staged history entry committed in one transaction) and the store
// has answered the put of its chunk: one commit and one upload. The rest runs
// here, in the background, batched over every send that finished meanwhile:
//
//   - recording each put's outcome (so that Republish waits before putting a
//     stored message again, and the message's state reads Stored), in one
//     commit for the whole batch;
//   - once sends pause for packDelay (or packEvery has passed), sealing the
//     staged history entries into blocks: packing writes and syncs the block
//     file before its commit, and a send that waited behind that commit for
//     the write lock paid two more disk flushes (1.9-2.0x a raw put, not
//     1.5x), so a burst of sends packs once, after the burst;
//   - uploading those blocks, in one wave, and recording which ones the
//     store accepted.
//
// A crash before either loses nothing: the outbox entry still says "not
// stored" and the next Republish puts the same bytes again; a staged entry
// is packed by the next flush, and an unstored block stays in its index until
// a flush puts it. Reads of the local state (History, Contacts, Outbox,
// Republish) first wait for the outcomes recorded so far (settle): what Send
// returned is what they show. They never wait for block uploads.
type finisher struct {
	mu       gosync.Mutex
	cond     *gosync.Cond // signalled when recorded moves
	pending  []putOutcome
	queued   uint64 // outcomes handed over so far
	recorded uint64 // of those, how many are committed (or given up)
	closed   bool
	blocks   bool   // a send's history entry waits to be packed
	packNow  bool   // a caller waits for the staged entries to be packed
	packed   uint64 // outcomes handed over before the last pack (or with nothing to pack)

	wake    chan struct{} // the recorder has outcomes to record
	upload  chan struct{} // the uploader has blocks to put
	stopped chan struct{} // both loops ended
	ctx     context.Context
	cancel  context.CancelFunc
}

// putOutcome is the answer of the store to one put of an outbox entry.
type putOutcome struct {
	contact string
	out     *outboxRecord
	err     error
	at      time.Time
}

// finishGrace bounds how long Close waits for background uploads before it
// cancels them (the blocks stay unstored and go out at the next flush).
const finishGrace = 10 * time.Second

func (a *Account) startFinisher() {
	ctx, cancel := context.WithCancel(context.Background())
	f := &finisher{wake: make(chan struct{}, 1), upload: make(chan struct{}, 1), stopped: make(chan struct{}), ctx: ctx, cancel: cancel}
	f.cond = gosync.NewCond(&f.mu)
	a.fin = f
	var loops gosync.WaitGroup
	loops.Go(a.recordLoop)
	loops.Go(a.uploadLoop)
	go func() { loops.Wait(); close(f.stopped) }()
}

// finishLater hands the outcomes of a send's puts to the recorder, and its
// history block to the uploader.
func (a *Account) finishLater(outcomes []putOutcome, withBlocks bool) {
	f := a.fin
	f.mu.Lock()
	if f.closed { // Close raced a send: record it here, durably or not at all
		f.mu.Unlock()
		a.recordOutcomes(outcomes, withBlocks)
		return
	}
	f.pending = append(f.pending, outcomes...)
	f.queued++
	f.blocks = f.blocks || withBlocks
	f.mu.Unlock()
	poke(f.wake)
}

func poke(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// packDelay is how long sends must pause before the finisher packs their
// history entries; packEvery bounds how long a steady stream of sends can
// put packing off.
const (
	packDelay = 25 * time.Millisecond
	packEvery = time.Second
)

// settlePacked waits until every outcome handed over before the call is
// recorded and the history entries of those sends are packed into blocks.
func (a *Account) settlePacked() {
	f := a.fin
	f.mu.Lock()
	defer f.mu.Unlock()
	want := f.queued
	if f.packed < want {
		f.packNow = true
		poke(f.wake)
	}
	for f.recorded < want || f.packed < want {
		f.cond.Wait()
	}
}

// settle waits until every outcome handed over before the call is recorded.
func (a *Account) settle() {
	f := a.fin
	f.mu.Lock()
	defer f.mu.Unlock()
	for want := f.queued; f.recorded < want; {
		f.cond.Wait()
	}
}

func (a *Account) recordLoop() {
	f := a.fin
	var owedSince time.Time // when history entries started waiting to be packed
	for {
		f.mu.Lock()
		batch, upto, closed, blocks, now := f.pending, f.queued, f.closed, f.blocks, f.packNow
		f.pending, f.blocks, f.packNow = nil, false, false
		f.mu.Unlock()
		if blocks && owedSince.IsZero() {
			owedSince = time.Now()
		}
		owed := !owedSince.IsZero()
		pack := owed && (closed || now || time.Since(owedSince) >= packEvery)
		a.recordOutcomes(batch, pack) // one commit for the outcomes and the pack
		if pack {
			owedSince, owed = time.Time{}, false
		}
		f.mu.Lock()
		f.recorded = upto
		if !owed {
			f.packed = upto
		}
		f.cond.Broadcast()
		f.mu.Unlock()
		if pack {
			poke(f.upload)
		}
		if closed {
			close(f.upload)
			return
		}
		if !owed {
			<-f.wake
			continue
		}
		select {
		case <-f.wake:
		case <-time.After(packDelay): // sends paused: pack now
			f.mu.Lock()
			f.packNow = true
			f.mu.Unlock()
		}
	}
}

// recordOutcomes commits a batch of put outcomes in one transaction and,
// with pack, seals the history entries the sends staged into blocks in the
// same commit. A failure to commit is not reported to anyone waiting: the
// entries keep saying "not stored" (Republish puts them again), and staged
// entries stay staged (the next flush packs them).
func (a *Account) recordOutcomes(batch []putOutcome, pack bool) {
	if len(batch) == 0 && !pack {
		return
	}
	a.db.Update(func(tx *bolt.Tx) error {
		for _, o := range batch {
			if err := a.recordPut(tx, o.contact, o.out, o.err, o.at); err != nil {
				return err
			}
		}
		if pack {
			return a.packStaged(tx)
		}
		return nil
	})
}

func (a *Account) uploadLoop() {
	f := a.fin
	for range f.upload {
		ctx, cancel := context.WithTimeout(f.ctx, finishGrace)
		a.putOwnBlocks(ctx, false) // failures stay unstored: the next flush retries
		cancel()
	}
}

// stopFinisher records what is pending, gives the uploads finishGrace to end,
// and stops both loops.
func (a *Account) stopFinisher() {
	f := a.fin
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	poke(f.wake)
	select {
	case <-f.stopped:
	case <-time.After(finishGrace):
		f.cancel()
		<-f.stopped
	}
	f.cancel()
}
