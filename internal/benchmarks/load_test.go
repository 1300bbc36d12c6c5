package benchmarks

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	gosync "sync"
	"syscall"
	"testing"
	"time"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/sync"
	"github.com/deaddrop/deaddrop/transport"
	bolt "go.etcd.io/bbolt"
)

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// BenchmarkLoad: one client ("hub", the real CLI in its own process) with
// 100 conversations; its peers write 1,000 messages each in three stages
// (10 %, 40 %, 50 %), and after each stage the hub catches up with one
// `deaddrop read`. Reported per stage: messages read, throughput, and the hub
// process's peak RSS — flat memory means the last stage (5× the first) peaks
// no higher. DEADDROP_LOAD_CONVS and DEADDROP_LOAD_MESSAGES scale it.
func BenchmarkLoad(b *testing.B) {
	convs := envInt("DEADDROP_LOAD_CONVS", 100)
	per := envInt("DEADDROP_LOAD_MESSAGES", 1000)
	ctx := context.Background()
	dir := b.TempDir()
	bin := filepath.Join(dir, "deaddrop")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/deaddrop").CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	storeDir := filepath.Join(dir, "store")
	store, err := feed.OpenEmbedded(storeDir)
	if err != nil {
		b.Fatal(err)
	}
	hubHome := filepath.Join(dir, "hub")
	hub := func(args ...string) (string, memory, time.Duration) {
		cmd := exec.Command(bin, append([]string{"--home", hubHome}, args...)...)
		var out strings.Builder
		cmd.Stdout = &out
		start := time.Now()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		mem := watchMemory(cmd.Process.Pid)
		err := cmd.Wait()
		took := time.Since(start)
		m := <-mem
		if err != nil {
			b.Fatalf("deaddrop %s: %v\n%s", strings.Join(args, " "), err, out.String())
		}
		return out.String(), m, took
	}
	hub("init", "hub", "--store", "embedded:"+storeDir)
	peers := make([]*sync.Account, convs)
	for i := range peers {
		name := fmt.Sprintf("p%03d", i)
		inv, _, _ := hub("invite", name)
		if peers[i], err = sync.Create(filepath.Join(dir, name), name, shared{transport.NewDirect(store)}, sync.Options{}); err != nil {
			b.Fatal(err)
		}
		defer peers[i].Close()
		if _, err := peers[i].Accept(ctx, strings.TrimSpace(inv), ""); err != nil {
			b.Fatal(err)
		}
	}
	hub("read")
	sent := 0
	for stage, share := range []int{10, 40, 50} {
		n := per * share / 100
		start := time.Now()
		var wg gosync.WaitGroup
		for w := 0; w < 2; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < convs; i += 2 {
					for j := 0; j < n; j++ {
						if _, err := peers[i].Send(ctx, "hub", fmt.Sprintf("stage %d message %d from %s", stage, j, peers[i].Name())); err != nil {
							b.Error(err)
							return
						}
					}
				}
			}()
		}
		wg.Wait()
		gen := time.Since(start)
		sent += n * convs
		out, mem, took := hub("read")
		got := strings.Count(out, ": stage ")
		if got != n*convs {
			b.Fatalf("stage %d: hub read %d of %d", stage, got, n*convs)
		}
		if fi, err := os.Stat(filepath.Join(hubHome, "state.db")); err == nil {
			// The state is the database and the file of the hub's own
			// history blocks, counted as the disk space they take: bbolt
			// grows its file 16 MiB at a time, ahead of use, sparsely.
			db, blocks := onDisk(filepath.Join(hubHome, "state.db")), onDisk(filepath.Join(hubHome, "logblocks.dat"))
			size := db + blocks
			b.Logf("stage %d: hub state %.1f MB on disk (%.0f bytes per message; database file %.1f MB long, %.1f MB on disk; history blocks file %.1f MB): %s",
				stage+1, float64(size)/1e6, float64(size)/float64(sent), float64(fi.Size())/1e6, float64(db)/1e6, float64(blocks)/1e6,
				stateBreakdown(filepath.Join(hubHome, "state.db")))
			b.ReportMetric(float64(size)/float64(sent), fmt.Sprintf("state-B/msg-stage%d", stage+1))
		}
		b.Logf("stage %d: %d messages written in %v; hub read them in %v: %.0f msg/s; peak RSS: anonymous %d MiB, file-backed %d MiB",
			stage+1, got, gen.Round(time.Millisecond), took.Round(time.Millisecond), float64(got)/took.Seconds(),
			mem.anon>>10, mem.file>>10)
		b.ReportMetric(float64(got)/took.Seconds(), fmt.Sprintf("msg/s-stage%d", stage+1))
		b.ReportMetric(float64(mem.anon)/1024, fmt.Sprintf("MiB-anon-stage%d", stage+1))
		b.ReportMetric(float64(mem.file)/1024, fmt.Sprintf("MiB-file-stage%d", stage+1))
	}
	b.ReportMetric(float64(sent), "messages")
}

// memory is a process's peak memory in KiB, its anonymous and file-backed
// parts sampled from /proc/<pid>/status every 2 ms. The state database is
// memory-mapped, so its pages count as file-backed RSS the kernel can
// reclaim. (The kernel's ru_maxrss is no use here: a child started from a
// large Go process reports the parent's RSS from before its exec.)
type memory struct {
	anon, file int64
}

func watchMemory(pid int) <-chan memory {
	ch := make(chan memory, 1)
	go func() {
		var m memory
		path := fmt.Sprintf("/proc/%d/status", pid)
		for {
			data, err := os.ReadFile(path)
			if err != nil || strings.Contains(string(data), "State:\tZ") {
				ch <- m
				return
			}
			for _, line := range strings.Split(string(data), "\n") {
				f := strings.Fields(line)
				if len(f) < 2 {
					continue
				}
				v, _ := strconv.ParseInt(f[1], 10, 64)
				switch f[0] {
				case "RssAnon:":
					m.anon = max(m.anon, v)
				case "RssFile:":
					m.file = max(m.file, v)
				}
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return ch
}

// stateBreakdown says where a state file's bytes go: per bucket, the bytes
// of its keys and values and of the pages holding them.
func stateBreakdown(path string) string {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return err.Error()
	}
	defer db.Close()
	var parts []string
	db.View(func(tx *bolt.Tx) error {
		parts = append(parts, fmt.Sprintf("free %d pages", tx.Stats().PageCount-int64(tx.Size()/int64(tx.DB().Info().PageSize))))
		return tx.ForEach(func(name []byte, bk *bolt.Bucket) error {
			st := bk.Stats()
			var kv int
			bk.ForEach(func(k, v []byte) error { kv += len(k) + len(v); return nil })
			pages := st.BranchPageN + st.BranchOverflowN + st.LeafPageN + st.LeafOverflowN
			if pages > 0 {
				parts = append(parts, fmt.Sprintf("%s %d keys %.1f MB in %d pages (%.1f MB)", name, st.KeyN, float64(kv)/1e6, pages, float64(pages*tx.DB().Info().PageSize)/1e6))
			}
			return nil
		})
	})
	return strings.Join(parts, "; ")
}

// onDisk is the disk space a file takes (0 if it does not exist).
func onDisk(path string) int64 {
	var st syscall.Stat_t
	if syscall.Stat(path, &st) != nil {
		return 0
	}
	return st.Blocks * 512
}
