package benchmarks

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/sync"
	"github.com/deaddrop/deaddrop/transport"
)

// BenchmarkLongLived: one account ("hub") that has received M messages from
// C contacts (M/C each) on the embedded store, history on; then, each by the
// real CLI in its own process with its peak RSS sampled: an idle read, a
// catch-up of new messages, `history` of one contact (the last page, a time
// range), `compact`, `device link` + `device join` (both processes), and
// `restore` from the phrase. DEADDROP_LONG_MESSAGES and
// DEADDROP_LONG_CONTACTS scale it (default 100,000 across 100; the
// one-million figures in docs/benchmarks.md are 1,000,000 across 1,000).
// With DEADDROP_LONG_PROFILES=<dir>, each CLI process writes a heap profile
// at its peak to <dir>/<operation>.pprof.
//
// The set-up goes through the real code paths, fast: the hub (in this
// process, through the sync package, fsync off) invites every contact; the
// contacts (history off, fsync off) send their messages, two at a time, and
// the hub catches up after every group of contacts.
func BenchmarkLongLived(b *testing.B) {
	total := envInt("DEADDROP_LONG_MESSAGES", 100000)
	contacts := envInt("DEADDROP_LONG_CONTACTS", 100)
	per := total / contacts
	profiles := os.Getenv("DEADDROP_LONG_PROFILES")
	// DEADDROP_LONG_DIR keeps the set-up there and uses it again on the
	// next run (the catch-up adds its messages each time).
	dir := os.Getenv("DEADDROP_LONG_DIR")
	if dir == "" {
		dir = b.TempDir()
	}
	bin := filepath.Join(dir, "deaddrop")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/deaddrop").CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	storeDir := filepath.Join(dir, "store")
	storeArg := "embedded:" + storeDir
	hubHome := filepath.Join(dir, "hub")

	// run runs the CLI on home and returns what it printed, its peak memory
	// and wall time.
	var run runFunc = func(op, home, stdin string, args ...string) (string, memory, time.Duration) {
		b.Helper()
		cmd := exec.Command(bin, append([]string{"--home", home}, args...)...)
		if profiles != "" {
			cmd.Env = append(os.Environ(), "DEADDROP_HEAPPROFILE="+filepath.Join(profiles, op+".pprof"))
		}
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr, cmd.Stdin = &out, &errb, strings.NewReader(stdin)
		start := time.Now()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		mem := watchMemory(cmd.Process.Pid)
		err := cmd.Wait()
		took := time.Since(start)
		m := <-mem
		if err != nil {
			b.Fatalf("deaddrop %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
		}
		return out.String(), m, took
	}
	report := func(op string, m memory, took time.Duration, what string) {
		b.Logf("%-16s %9v  peak RSS anonymous %3d MiB, file-backed %4d MiB  %s", op, took.Round(time.Millisecond), m.anon>>10, m.file>>10, what)
		b.ReportMetric(float64(took.Microseconds())/1000, "ms-"+op)
		b.ReportMetric(float64(m.anon)/1024, "MiB-anon-"+op)
	}

	// Set-up.
	setup := time.Now()
	var done setupDone
	if data, err := os.ReadFile(filepath.Join(dir, "setup.json")); err == nil {
		if err := json.Unmarshal(data, &done); err != nil {
			b.Fatal(err)
		}
	}
	if done.Messages != contacts*per || done.Contacts != contacts {
		os.RemoveAll(storeDir)
		os.RemoveAll(hubHome)
		done = setupLongLived(b, dir, bin, run, contacts, per)
		data, _ := json.Marshal(done)
		if err := os.WriteFile(filepath.Join(dir, "setup.json"), data, 0o600); err != nil {
			b.Fatal(err)
		}
	} else {
		b.Logf("set-up of %d messages across %d contacts kept from an earlier run in %s", done.Messages, contacts, dir)
	}
	b.ReportMetric(time.Since(setup).Seconds(), "s-setup")
	store, err := feed.OpenEmbedded(storeDir)
	if err != nil {
		b.Fatal(err)
	}
	store.NoSync = true // the contacts' sends only: the CLI processes measured sync
	tr := shared{transport.NewDirect(store)}
	names := make([]string, contacts)
	for i := range names {
		names[i] = fmt.Sprintf("p%04d", i)
	}
	phrase, midFrom, midTo := done.Phrase, done.MidFrom, done.MidTo
	send := func(from, to, n int, label string) { sendFrom(b, dir, tr, names, from, to, n, label) }
	for _, d := range []string{"joined", "restored"} {
		os.RemoveAll(filepath.Join(dir, d))
	}

	// The operations, each in a CLI process of its own.
	b.ResetTimer()
	out, m, took := run("idle-read", hubHome, "", "read")
	_ = out
	report("idle-read", m, took, "nothing new")

	catchContacts := min(contacts, 10)
	catchPer := 10000 / catchContacts
	send(0, catchContacts, catchPer, "new")
	out, m, took = run("catch-up", hubHome, "", "read")
	if got := strings.Count(out, ": new "); got != catchContacts*catchPer {
		b.Fatalf("catch-up read %d of %d", got, catchContacts*catchPer)
	}
	report("catch-up", m, took, fmt.Sprintf("%d new messages from %d contacts: %.0f msg/s", catchContacts*catchPer, catchContacts, float64(catchContacts*catchPer)/took.Seconds()))

	out, m, took = run("history-page", hubHome, "", "history", names[0], "--limit", "20")
	if n := strings.Count(out, "\n"); n != 20 {
		b.Fatalf("history --limit 20 printed %d lines", n)
	}
	report("history-page", m, took, fmt.Sprintf("the last 20 of %s's messages (whole process)", names[0]))
	out, m, took = run("history-range", hubHome, "", "history", names[0], "--since", "1d")
	report("history-range", m, took, fmt.Sprintf("--since 1d: %d messages (whole process)", strings.Count(out, "\n")))

	// The same queries in this process, without the process's start and
	// the account's open.
	hub, err := sync.Open(hubHome, tr, sync.Options{})
	if err != nil {
		b.Fatal(err)
	}
	for _, q := range []struct {
		name string
		q    sync.Query
	}{{"page", sync.Query{Limit: 20}}, {"range", sync.Query{Since: midFrom, Until: midTo}}, {"range-page", sync.Query{Since: midFrom, Until: midTo, Limit: 20}}} {
		start := time.Now()
		msgs, err := hub.History(names[0], q.q)
		if err != nil {
			b.Fatal(err)
		}
		took := time.Since(start)
		b.Logf("History(%s) %-10s %9v  %d messages", names[0], q.name, took.Round(time.Microsecond), len(msgs))
		b.ReportMetric(float64(took.Microseconds())/1000, "ms-query-"+q.name)
	}
	hub.Close()

	state := filepath.Join(hubHome, "state.db")
	disk := onDisk(state)
	out, m, took = run("compact", hubHome, "", "compact")
	report("compact", m, took, fmt.Sprintf("%s (on disk %.1f → %.1f MB)", strings.TrimSpace(out), float64(disk)/1e6, float64(onDisk(state))/1e6))
	_, m, took = run("history-after", hubHome, "", "history", names[0], "--limit", "20")
	report("history-after", m, took, "the last page again, after compaction")

	// A kept set-up: the devices earlier runs added go (an account has at
	// most 5).
	for _, name := range []string{"laptop", "restored"} {
		for i := 0; i < 5; i++ {
			if exec.Command(bin, "--home", hubHome, "device", "remove", name).Run() != nil {
				break
			}
		}
	}

	// device link (here) + device join (a new home), both running.
	if os.Getenv("DEADDROP_LONG_NOJOIN") == "" {
		joinHome := filepath.Join(dir, "joined")
		link := exec.Command(bin, "--home", hubHome, "device", "link", "laptop")
		if profiles != "" {
			link.Env = append(os.Environ(), "DEADDROP_HEAPPROFILE="+filepath.Join(profiles, "device-link.pprof"))
		}
		pipe, err := link.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		var linkErr strings.Builder
		link.Stderr = &linkErr
		start := time.Now()
		if err := link.Start(); err != nil {
			b.Fatal(err)
		}
		linkMem := watchMemory(link.Process.Pid)
		lines := bufio.NewScanner(pipe)
		if !lines.Scan() {
			b.Fatalf("device link printed no code: %s", linkErr.String())
		}
		code := strings.TrimSpace(lines.Text())
		go func() {
			for lines.Scan() {
			}
		}()
		out, m, took = run("device-join", joinHome, "", "device", "join", code, "--store", storeArg)
		if err := link.Wait(); err != nil {
			b.Fatalf("device link: %v\n%s", err, linkErr.String())
		}
		linkTook := time.Since(start)
		lm := <-linkMem
		report("device-join", m, took, firstLines(out, 3))
		report("device-link", lm, linkTook, "the linking side, from start to the join's answer")
	}

	restored := filepath.Join(dir, "restored")
	out, m, took = run("restore", restored, phrase+"\n", "restore", "--store", storeArg)
	report("restore", m, took, firstLines(out, 2))
	b.Logf("figures: %d messages across %d contacts", contacts*per, contacts)
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(strings.TrimSpace(s), "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "; ")
}

// setupDone is what a finished set-up of BenchmarkLongLived leaves in
// setup.json.
type setupDone struct {
	Messages, Contacts int
	Phrase             string
	MidFrom, MidTo     time.Time // when contact 0 sent the middle half of its messages
}

type runFunc func(op, home, stdin string, args ...string) (string, memory, time.Duration)

// setupLongLived makes the hub (by the CLI's init, then through the sync
// package in this process, fsync off) and its contacts (history off, fsync
// off), has the contacts send per messages each, two at a time, and the hub
// catch up after every group of contacts (~50,000 messages).
func setupLongLived(b *testing.B, dir, bin string, run runFunc, contacts, per int) setupDone {
	ctx := context.Background()
	setup := time.Now()
	storeDir := filepath.Join(dir, "store")
	hubHome := filepath.Join(dir, "hub")
	out, _, _ := run("init", hubHome, "", "init", "hub", "--store", "embedded:"+storeDir)
	phrase := regexp.MustCompile(`recovery phrase: (.*)`).FindStringSubmatch(out)
	if phrase == nil {
		b.Fatalf("init printed no phrase: %q", out)
	}
	done := setupDone{Messages: contacts * per, Contacts: contacts, Phrase: phrase[1]}
	store, err := feed.OpenEmbedded(storeDir)
	if err != nil {
		b.Fatal(err)
	}
	store.NoSync = true // set-up only: the CLI processes measured sync
	tr := shared{transport.NewDirect(store)}
	hub, err := sync.Open(hubHome, tr, sync.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	names := make([]string, contacts)
	for i := range names {
		names[i] = fmt.Sprintf("p%04d", i)
		peer, err := sync.Create(filepath.Join(dir, names[i]), names[i], tr, sync.Options{NoSync: true, NoHistory: true})
		if err != nil {
			b.Fatal(err)
		}
		inv, err := hub.Invite(names[i])
		if err != nil {
			b.Fatal(err)
		}
		if _, err := peer.Accept(ctx, inv, ""); err != nil {
			b.Fatal(err)
		}
		peer.Close()
		if i%100 == 99 || i == contacts-1 {
			mustPoll(b, hub)
		}
	}
	b.Logf("set-up: %d contacts joined in %v", contacts, time.Since(setup).Round(time.Second))
	send := func(from, to, n int) { sendFrom(b, dir, tr, names, from, to, n, "message") }
	group := max(1, 50000/max(per, 1))
	var sendTime, readTime time.Duration
	for g := 0; g < contacts; g += group {
		t0 := time.Now()
		if g == 0 {
			send(0, 1, per/4)
			done.MidFrom = time.Now()
			send(0, 1, per/2)
			done.MidTo = time.Now()
			send(0, 1, per-per/4-per/2)
			send(1, min(contacts, group), per)
		} else {
			send(g, min(contacts, g+group), per)
		}
		t1 := time.Now()
		mustPoll(b, hub)
		sendTime += t1.Sub(t0)
		readTime += time.Since(t1)
		if g/group%4 == 3 || g+group >= contacts {
			fmt.Fprintf(os.Stderr, "BenchmarkLongLived "+
				"set-up: %d of %d messages after %v\n", min(contacts, g+group)*per, contacts*per, time.Since(setup).Round(time.Second))
			b.Logf("set-up: %d of %d messages after %v (contacts sent in %v, hub read in %v)", min(contacts, g+group)*per, contacts*per,
				time.Since(setup).Round(time.Second), sendTime.Round(time.Second), readTime.Round(time.Second))
		}
	}
	hub.Close()
	b.Logf("set-up: %d messages from %d contacts in %v (contacts sending %v, hub catching up %v); hub state %.1f MB on disk, blocks file %.1f MB",
		contacts*per, contacts, time.Since(setup).Round(time.Second), sendTime.Round(time.Second), readTime.Round(time.Second),
		float64(onDisk(filepath.Join(hubHome, "state.db")))/1e6, float64(onDisk(filepath.Join(hubHome, "logblocks.dat")))/1e6)
	return done
}

// sendFrom has contacts [from, to) send n messages each to the hub, two at
// a time (DEADDROP_LONG_WORKERS), each opening its home for it (fsync off).
func sendFrom(b *testing.B, dir string, tr transport.Transport, names []string, from, to, n int, label string) {
	ctx := context.Background()
	var wg gosync.WaitGroup
	workers := envInt("DEADDROP_LONG_WORKERS", 2)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := from + w; i < to; i += workers {
				peer, err := sync.Open(filepath.Join(dir, names[i]), tr, sync.Options{NoSync: true})
				if err != nil {
					b.Error(err)
					return
				}
				for j := 0; j < n; j++ {
					if _, err := peer.Send(ctx, "hub", fmt.Sprintf("%s %d from %s", label, j, names[i])); err != nil {
						b.Error(err)
						break
					}
				}
				peer.Close()
			}
		}()
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
}
