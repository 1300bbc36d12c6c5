package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/deaddrop/deaddrop/internal/devnode"
)

// The crash-consistency harness: real deaddrop processes SIGKILLed at random
// moments of send, republish, read and ack, with store data loss mixed in.
// After each trial the invariant must hold: every message alice's history
// says she sent reaches bob's history exactly once, in order, and is marked
// read on alice's side; and a device restored from alice's recovery phrase
// has all of them, in order. Trials are seeded: a failure names its seed.
//
// DEADDROP_CRASH_TRIALS sets the number of trials per store (default 200 on
// each store); make stress raises it to 2,000.

func trials(def int) int {
	if n, err := strconv.Atoi(os.Getenv("DEADDROP_CRASH_TRIALS")); err == nil && n > 0 {
		return n
	}
	return def
}

func TestCrashConsistencyEmbedded(t *testing.T) {
	runTrials(t, trials(200), func(t *testing.T) (string, func(*rand.Rand)) {
		dir := filepath.Join(t.TempDir(), "store")
		return "embedded:" + dir, func(rng *rand.Rand) { loseChunks(t, dir, rng) }
	})
}

func TestCrashConsistencySwarm(t *testing.T) {
	runTrials(t, trials(200), func(t *testing.T) (string, func(*rand.Rand)) {
		node := devnode.StartBee(t)
		return "swarm:" + node.URL, func(*rand.Rand) {
			if err := node.Restart(); err != nil { // comes back empty
				t.Fatal(err)
			}
		}
	})
}

// runTrials runs n seeded trials, two at a time.
func runTrials(t *testing.T, n int, setup func(t *testing.T) (store string, lose func(*rand.Rand))) {
	var mu sync.Mutex
	stats := map[string]int{}
	for seed := 0; seed < n; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			store, lose := setup(t)
			s := crashTrial(t, rand.New(rand.NewPCG(uint64(seed), 7)), store, lose)
			mu.Lock()
			for k, v := range s {
				stats[k] += v
			}
			mu.Unlock()
		})
	}
	t.Cleanup(func() { t.Logf("%d trials: %v", n, stats) })
}

func crashTrial(t *testing.T, rng *rand.Rand, store string, lose func(*rand.Rand)) map[string]int {
	stats := map[string]int{}
	us := newUsers(t, store, "alice", "bob")
	alice, bob := us[0], us[1]
	connect(t, alice, bob, "alice", "bob")
	next := 0
	for step := 0; step < 8; step++ {
		switch rng.IntN(6) {
		case 0, 1, 2:
			for j := 0; j < 1+rng.IntN(3); j++ {
				next++
				maybeKill(alice, rng, stats, "send", "bob", fmt.Sprintf("m%d", next))
			}
		case 3:
			maybeKill(bob, rng, stats, "read")
		case 4:
			maybeKill(alice, rng, stats, "read")
		case 5:
			maybeKill(alice, rng, stats, "republish")
		}
		if rng.IntN(10) == 0 {
			lose(rng)
			stats["store losses"]++
		}
	}
	// Heal: no more faults. Both sides republish at once rather than wait
	// for their back-off (30 s and up) to restore what the store lost.
	for i := 0; i < 2; i++ {
		alice.run("republish")
		bob.run("republish")
		bob.run("read")
		alice.run("read")
	}
	checkInvariant(t, alice, bob)
	checkRestore(t, alice, store)
	stats["trials"]++
	return stats
}

// checkRestore restores alice from her recovery phrase on a new device: the
// history log, put back by the healing republish wherever the store lost it,
// must hold every message she sent, in order.
func checkRestore(t *testing.T, alice *user, store string) {
	t.Helper()
	m := phrasePattern.FindStringSubmatch(alice.initOut)
	if m == nil {
		t.Fatal("no recovery phrase")
	}
	restored := &user{t: t, home: filepath.Join(t.TempDir(), "restored"), store: store}
	restored.okIn(m[1], "restore", "--store", store)
	sentBodies := func(u *user) string {
		var out []string
		for _, l := range strings.Split(u.ok("history", "bob"), "\n") {
			if m := outgoingLine.FindStringSubmatch(l); m != nil {
				out = append(out, m[1])
			}
		}
		return strings.Join(out, ",")
	}
	if want, got := sentBodies(alice), sentBodies(restored); want != got {
		t.Fatalf("restored history differs:\nalice    %s\nrestored %s", want, got)
	}
}

// maybeKill runs a command, and half the time SIGKILLs it 0–25 ms in.
func maybeKill(u *user, rng *rand.Rand, stats map[string]int, args ...string) {
	if rng.IntN(2) == 0 {
		u.run(args...)
		return
	}
	c := u.cmd(args...)
	c.Stdout, c.Stderr = io.Discard, io.Discard
	if err := c.Start(); err != nil {
		u.t.Fatal(err)
	}
	time.Sleep(time.Duration(rng.IntN(25000)) * time.Microsecond)
	c.Process.Signal(syscall.SIGKILL)
	if err := c.Wait(); err != nil {
		stats["kills during "+args[0]]++
	}
}

var (
	outgoingLine = regexp.MustCompile(`me → bob: (m\d+)  \((\w+)\)$`)
	incomingLine = regexp.MustCompile(`alice: (m\d+)$`)
)

func checkInvariant(t *testing.T, alice, bob *user) {
	t.Helper()
	var sent, states, got []string
	for _, l := range strings.Split(alice.ok("history", "bob"), "\n") {
		if m := outgoingLine.FindStringSubmatch(l); m != nil {
			sent, states = append(sent, m[1]), append(states, m[2])
		}
	}
	for _, l := range strings.Split(bob.ok("history", "alice"), "\n") {
		if m := incomingLine.FindStringSubmatch(l); m != nil {
			got = append(got, m[1])
		}
	}
	if strings.Join(sent, ",") != strings.Join(got, ",") {
		t.Fatalf("alice sent %v\nbob has   %v", sent, got)
	}
	for i, s := range states {
		if s != "delivered" {
			t.Fatalf("alice's %s is %q after healing, want delivered", sent[i], s)
		}
	}
	if out := alice.ok("status"); strings.Contains(out, " data: ") {
		t.Fatalf("alice's outbox still holds data messages:\n%s", out)
	}
}

// loseChunks deletes about a third of the embedded store's chunk files, as a
// store losing data would.
func loseChunks(t *testing.T, dir string, rng *rand.Rand) {
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && filepath.Base(filepath.Dir(p)) != "tmp" && rng.IntN(3) == 0 {
			os.Remove(p)
		}
		return nil
	})
}
