package sync_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/feed/feedtest"
	"github.com/deaddrop/deaddrop/sync"
)

// The network profile of the poll-plan tests: delays long enough that the
// requests of one wave overlap on a loaded machine, short enough to run in
// CI. The tests assert on counts, never on time.
const (
	testRTT  = 20 * time.Millisecond
	testMiss = 30 * time.Millisecond
)

// star is one account ("me") with n contacts, all on one in-memory store
// behind a network profile that is quiet (no delays) while it is set up.
type star struct {
	net   *feedtest.Network
	me    *sync.Account
	peers []*sync.Account
}

func newStar(t *testing.T, n int) *star {
	t.Helper()
	s := &star{net: feedtest.NewNetwork(feed.NewMemory(), 0, 0)}
	open := func(name string) *sync.Account {
		a, err := sync.Create(t.TempDir(), name, direct(s.net), sync.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close() })
		return a
	}
	s.me = open("me")
	for i := range n {
		name := fmt.Sprintf("peer%d", i)
		peer := open(name)
		inv, err := s.me.Invite(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := peer.Accept(ctx, inv, ""); err != nil {
			t.Fatal(err)
		}
		s.peers = append(s.peers, peer)
	}
	// Everyone reads until the first-contact traffic (hello, device lists,
	// acks) has settled.
	for range 3 {
		poll(t, s.me)
		for _, p := range s.peers {
			poll(t, p)
		}
	}
	poll(t, s.me)
	return s
}

// measure runs one Poll of a behind the network profile and returns the
// result and the counts.
func (s *star) measure(t *testing.T, a *sync.Account) (*sync.PollResult, feedtest.NetworkStats) {
	t.Helper()
	s.net.RTT, s.net.Miss = testRTT, testMiss
	defer func() { s.net.RTT, s.net.Miss = 0, 0 }()
	s.net.Reset()
	res := poll(t, a)
	return res, s.net.Stats()
}

// An account with 50 idle contacts (history on) polls in about one wave and
// at most three GETs per contact: one probe of each chain of the session and
// one of the contact's announcement feed, not windows of 8 + 8.
func TestIdlePollOneWave(t *testing.T) {
	const contacts = 50
	s := newStar(t, contacts)
	res, st := s.measure(t, s.me)
	t.Logf("idle poll of %d contacts: %d waves, %d GETs (%d misses), %d PUTs, at most %d in flight; result: %d fetched, %d rounds",
		contacts, st.Waves, st.Gets, st.Misses, st.Puts, st.MaxInFlight, res.Fetched, res.Rounds)
	if res.NewCount != 0 {
		t.Fatalf("idle poll delivered %d messages", res.NewCount)
	}
	if st.Waves > 3 {
		t.Errorf("idle poll took %d waves, want ≤ 3", st.Waves)
	}
	if st.Gets > 3*contacts {
		t.Errorf("idle poll took %d GETs for %d contacts, want ≤ 3 per contact", st.Gets, contacts)
	}
}

// Contacts who each sent messages are read side by side: the waves are
// those of one contact's catch-up (about N/Window plus the slow start), not
// the sum over contacts.
func TestCatchUpWavesIndependentOfContacts(t *testing.T) {
	const contacts, n, window = 4, 200, 64
	s := newStar(t, contacts)
	for i, p := range s.peers {
		for k := range n {
			send(t, p, "me", fmt.Sprintf("%d/%d", i, k))
		}
	}
	res, st := s.measure(t, s.me)
	t.Logf("catch-up of %d contacts × %d: %d waves (%d of GETs), %d GETs (%d misses), %d PUTs, at most %d in flight",
		contacts, n, st.Waves, res.Rounds, st.Gets, st.Misses, st.Puts, st.MaxInFlight)
	if res.NewCount != contacts*n {
		t.Fatalf("got %d of %d messages", res.NewCount, contacts*n)
	}
	next := map[string]int{}
	for _, m := range res.New {
		var i, k int
		fmt.Sscanf(m.Body, "%d/%d", &i, &k)
		if k != next[m.Contact] {
			t.Fatalf("%s: message %d after %d: out of order", m.Contact, k, next[m.Contact]-1)
		}
		next[m.Contact]++
	}
	// Slow start 1, 8, 16, 32, then 64 a round, and the acks' PUTs.
	if want := (n+window-1)/window + 5; st.Waves > want {
		t.Errorf("catch-up took %d waves, want ≤ ⌈N/W⌉ + 5 = %d", st.Waves, want)
	}
}

// dropPuts is a store that, while drop is set, acknowledges puts it never
// stores: messages the network lost.
type dropPuts struct {
	feed.Store
	drop atomic.Bool
}

func (d *dropPuts) Put(ctx context.Context, s feed.Slot, c []byte) error {
	if d.drop.Load() {
		return nil
	}
	return d.Store.Put(ctx, s, c)
}

// A header that claims a long gap (here: 300 messages the network lost,
// which is what an attacker's header with a large previous-chain count
// looks like to the reader) leaves hundreds of skipped keys. Each Poll
// polls at most 16 of them, and they expire after SkippedKeyTTL.
func TestSkippedKeysCappedAndExpire(t *testing.T) {
	const lost = 300
	now := time.Now()
	clock := func() time.Time { return now }
	net := feedtest.NewNetwork(feed.NewMemory(), 0, 0)
	store := &dropPuts{Store: net}
	open := func(name string) *sync.Account {
		a, err := sync.Create(t.TempDir(), name, direct(store), sync.Options{NoSync: true, Now: clock})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close() })
		return a
	}
	alice, bob := open("alice"), open("bob")
	inv, _ := alice.Invite("bob")
	if _, err := bob.Accept(ctx, inv, ""); err != nil {
		t.Fatal(err)
	}
	poll(t, alice)
	poll(t, bob)
	gets := func() int {
		net.Reset()
		poll(t, bob)
		return net.Stats().Gets
	}
	idle := gets()

	send(t, alice, "bob", "hi")
	store.drop.Store(true)
	for i := range lost {
		alice.Send(ctx, "bob", fmt.Sprint("lost ", i))
	}
	store.drop.Store(false)
	if got := bodies(poll(t, bob).New); len(got) != 1 || got[0] != "hi" {
		t.Fatalf("bob got %q", got)
	}
	send(t, bob, "alice", "yo")
	poll(t, alice)
	send(t, alice, "bob", "on a new chain") // its header: the previous chain had 300 more
	poll(t, bob)

	gap := 0
	for i := range 3 {
		gap = gets()
		t.Logf("poll %d after the gap: %d GETs (idle: %d)", i, gap, idle)
		if gap > idle+16 {
			t.Fatalf("poll %d after the gap: %d GETs, idle was %d: more than 16 skipped slots polled", i, gap, idle)
		}
	}
	if held := bodies(poll(t, bob).New); len(held) != 0 {
		t.Fatalf("delivered past the gap before it was given up: %q", held)
	}
	now = now.Add(31 * 24 * time.Hour)
	net.Reset()
	res, err := bob.Poll(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if g := net.Stats().Gets; g > idle || g > gap-16 {
		t.Fatalf("after the keys expired: %d GETs, idle was %d and with the skipped keys %d", g, idle, gap)
	}
	// Nothing can fill the gap now: what waited behind it is delivered, and
	// the loss is reported.
	if got := bodies(res.New); len(got) != 1 || got[0] != "on a new chain" {
		t.Fatalf("after the keys expired bob got %q, want the message held behind the gap", got)
	}
	if len(res.Problems) == 0 || !strings.Contains(fmt.Sprint(res.Problems), "300 message(s) never arrived") {
		t.Fatalf("the lost messages were not reported: %v", res.Problems)
	}
}

// A long catch-up reaches the full window after its 8-slot round (the
// lookahead probe saw a full window waiting), so 1,000 messages from one
// contact cost ⌈N/W⌉ + 3 waves, the acks' and history blocks' PUTs included;
// a burst of 50 still grows 1, 8, 16, 32 and wastes few GETs past its end.
func TestCatchUpWaves(t *testing.T) {
	const window = 64
	for _, tc := range []struct{ n, maxWaves, maxMisses int }{
		{1000, (1000+window-1)/window + 3, window + 4}, // the last window overshoots
		{50, 6, 16},
	} {
		t.Run(fmt.Sprint("N=", tc.n), func(t *testing.T) {
			s := newStar(t, 1)
			for k := range tc.n {
				send(t, s.peers[0], "me", fmt.Sprint(k))
			}
			s.peers[0].Close() // its history blocks are out: none of its puts is counted
			res, st := s.measure(t, s.me)
			t.Logf("catch-up of %d: %d waves, %d GETs (%d misses), %d PUTs", tc.n, st.Waves, st.Gets, st.Misses, st.Puts)
			if res.NewCount != tc.n {
				t.Fatalf("got %d of %d messages", res.NewCount, tc.n)
			}
			if st.Waves > tc.maxWaves {
				t.Errorf("catch-up of %d took %d waves, want ≤ %d", tc.n, st.Waves, tc.maxWaves)
			}
			if st.Misses > tc.maxMisses {
				t.Errorf("catch-up of %d missed %d GETs, want ≤ %d", tc.n, st.Misses, tc.maxMisses)
			}
		})
	}
}
