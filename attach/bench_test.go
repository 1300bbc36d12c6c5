package attach_test

import (
	"bufio"
	"context"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deaddrop/deaddrop/attach"
	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/feed/ipfs"
	"github.com/deaddrop/deaddrop/feed/swarm"
	"github.com/deaddrop/deaddrop/internal/devnode"
)

// BenchmarkAttach moves one file through each store, raw (one PutBulk of
// the plaintext, one GetBulk read to the end: Bee's /bytes, Kubo's
// add/cat) and as an attachment (Upload; Download to io.Discard; Save to
// disk), and reports the ratios and the peak heap and RSS of the process.
// Save is compared with both the raw download (x-raw-save) and its fair
// baseline, the raw download written to a file and fsynced
// (x-rawfile-save).
// 100 MiB always; 1 GiB with DEADDROP_BENCH_1GIB=1 (a Bee dev node keeps
// everything in memory: mind the machine).
//
//	go test -run XXX -bench Attach -benchtime 1x ./attach
func BenchmarkAttach(b *testing.B) {
	sizes := []int64{100 << 20}
	if os.Getenv("DEADDROP_BENCH_1GIB") == "1" {
		sizes = append(sizes, 1<<30)
	}
	for _, st := range benchStores(b) {
		for _, size := range sizes {
			b.Run(st.name+"/"+strconv.FormatInt(size>>20, 10)+"MiB", func(b *testing.B) {
				benchAttach(b, st.store, size)
			})
		}
	}
}

// benchOptions are the attachment options of a run: the defaults, or
// DEADDROP_BENCH_PARALLEL and DEADDROP_BENCH_SEGMENT_MIB to compare others.
func benchOptions(size int64) attach.Options {
	o := attach.Options{MaxSize: size}
	o.Parallel, _ = strconv.Atoi(os.Getenv("DEADDROP_BENCH_PARALLEL"))
	if mib, _ := strconv.ParseInt(os.Getenv("DEADDROP_BENCH_SEGMENT_MIB"), 10, 64); mib > 0 {
		o.SegmentSize = mib << 20
	}
	return o
}

type namedStore struct {
	name  string
	store feed.BulkStore
}

func benchStores(b *testing.B) []namedStore {
	ctx := context.Background()
	emb, err := feed.OpenEmbedded(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	bee := devnode.StartBee(b)
	sw, err := swarm.Open(ctx, bee.URL, swarm.Options{})
	if err != nil {
		b.Fatal(err)
	}
	kubo := devnode.StartKubo(b)
	ip, err := ipfs.Open(ctx, kubo.URL, ipfs.Options{})
	if err != nil {
		b.Fatal(err)
	}
	all := []namedStore{{"embedded", emb}, {"swarm", sw}, {"ipfs", ip}}
	// DEADDROP_BENCH_STORES=swarm,ipfs runs only those.
	if only := os.Getenv("DEADDROP_BENCH_STORES"); only != "" {
		var some []namedStore
		for _, st := range all {
			if slices.Contains(strings.Split(only, ","), st.name) {
				some = append(some, st)
			}
		}
		return some
	}
	return all
}

func benchAttach(b *testing.B, s feed.BulkStore, size int64) {
	ctx := context.Background()
	var rawUp, rawDown, rawSave, up, down, save time.Duration
	peak := startPeak()
	for i := range b.N {
		seed := uint64(i)
		t0 := time.Now()
		ref, err := s.PutBulk(ctx, randomReader(seed, size))
		must(b, err)
		rawUp += time.Since(t0)

		t0 = time.Now()
		rc, err := s.GetBulk(ctx, ref)
		must(b, err)
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		must(b, err)
		if n != size {
			b.Fatalf("raw read %d of %d bytes", n, size)
		}
		rawDown += time.Since(t0)

		// Save's fair baseline: the raw download written to a file and
		// fsynced, as Save's bytes are before it names the file.
		rawDir := b.TempDir()
		t0 = time.Now()
		must(b, rawSaveFile(ctx, s, ref, rawDir))
		rawSave += time.Since(t0)
		os.RemoveAll(rawDir)

		t0 = time.Now()
		m, err := attach.Upload(ctx, s, randomReader(seed+1<<32, size), "bench.bin", "", benchOptions(size))
		must(b, err)
		up += time.Since(t0)

		t0 = time.Now()
		must(b, attach.Download(ctx, s, m, io.Discard, benchOptions(size)))
		down += time.Since(t0)

		dir := b.TempDir()
		t0 = time.Now()
		_, err = attach.Save(ctx, s, m, dir, benchOptions(size))
		must(b, err)
		save += time.Since(t0)
		os.RemoveAll(dir)
	}
	heap, rss := peak()
	b.ReportMetric(up.Seconds()/rawUp.Seconds(), "x-raw-up")
	b.ReportMetric(down.Seconds()/rawDown.Seconds(), "x-raw-down")
	b.ReportMetric(save.Seconds()/rawDown.Seconds(), "x-raw-save")
	b.ReportMetric(save.Seconds()/rawSave.Seconds(), "x-rawfile-save")
	mib := float64(size) / (1 << 20) * float64(b.N)
	b.ReportMetric(mib/rawUp.Seconds(), "raw-up-MiB/s")
	b.ReportMetric(mib/rawDown.Seconds(), "raw-down-MiB/s")
	b.ReportMetric(mib/up.Seconds(), "up-MiB/s")
	b.ReportMetric(mib/down.Seconds(), "down-MiB/s")
	b.ReportMetric(heap, "peak-heap-MiB")
	b.ReportMetric(rss, "peak-rss-MiB")
}

// rawSaveFile reads the object at ref into a new file in dir and fsyncs it.
func rawSaveFile(ctx context.Context, s feed.BulkStore, ref []byte, dir string) error {
	rc, err := s.GetBulk(ctx, ref)
	if err != nil {
		return err
	}
	defer rc.Close()
	f, err := os.Create(dir + "/raw.bin")
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, rc); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func must(b *testing.B, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
}

// randomReader yields size pseudo-random bytes, generated as read: the
// file is never in memory.
func randomReader(seed uint64, size int64) io.Reader {
	var key [32]byte
	key[0] = byte(seed)
	key[1] = byte(seed >> 32)
	return io.LimitReader(rand.NewChaCha8(key), size)
}

// startPeak samples the heap in use every 5 ms and resets the kernel's
// RSS high-water mark; the returned function stops sampling and reports
// both peaks in MiB.
func startPeak() func() (heap, rss float64) {
	os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	var maxHeap atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > maxHeap.Load() {
				maxHeap.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return func() (float64, float64) {
		close(stop)
		wg.Wait()
		return float64(maxHeap.Load()) / (1 << 20), float64(vmHWM()) / (1 << 20)
	}
}

// vmHWM is the process's peak resident set since the last reset, in bytes.
func vmHWM() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
