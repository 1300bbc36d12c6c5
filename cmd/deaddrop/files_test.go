package main

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/deaddrop/deaddrop/internal/devnode"
)

var saveID = regexp.MustCompile(`deaddrop save ([a-z0-9._-]+:[0-9]+)\]`)

// fileID returns the message ID of the last file out shows.
func fileID(t *testing.T, out string) string {
	t.Helper()
	m := saveID.FindAllStringSubmatch(out, -1)
	if len(m) == 0 {
		t.Fatalf("no file listed in %q", out)
	}
	return m[len(m)-1][1]
}

func randomFile(t *testing.T, dir, name string, size int, seed uint64) []byte {
	t.Helper()
	data := make([]byte, size)
	rand.NewChaCha8([32]byte{byte(seed)}).Read(data)
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
		t.Fatal(err)
	}
	return data
}

func TestSendAndSaveFile(t *testing.T) {
	us := newUsers(t, "", "alice", "bob")
	alice, bob := us[0], us[1]
	connect(t, alice, bob, "alice", "bob")
	alice.ok("send", "bob", "hi") // alice:1 in bob's history: a text
	src := t.TempDir()
	data := randomFile(t, src, "report.pdf", 5<<20+7, 1)
	if out := alice.ok("send", "bob", "--file", filepath.Join(src, "report.pdf"), "the", "report"); !strings.Contains(out, "sent to bob") {
		t.Fatalf("send --file: %q", out)
	}
	out := bob.ok("read")
	if !strings.Contains(out, "alice: the report [file report.pdf, 5.0 MiB, application/pdf; deaddrop save alice:") {
		t.Fatalf("read shows %q", out)
	}
	id := fileID(t, out)
	if h := bob.ok("history", "alice"); fileID(t, h) != id {
		t.Fatalf("history shows %q", h)
	}
	dir := t.TempDir()
	if out := bob.ok("save", id, "--out", dir); !strings.Contains(out, "SHA-256 verified") {
		t.Fatalf("save: %q", out)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "report.pdf")); !bytes.Equal(got, data) {
		t.Fatal("saved file differs")
	}
	// --out a new file name; an existing one is never replaced.
	named := filepath.Join(dir, "mine.pdf")
	bob.ok("save", id, "--out", named)
	if got, _ := os.ReadFile(named); !bytes.Equal(got, data) {
		t.Fatal("file saved by name differs")
	}
	if _, errs, code := bob.run("save", id, "--out", named); code == 0 || !strings.Contains(errs, "never replaces") {
		t.Fatalf("save over an existing file: exit %d %q", code, errs)
	}
	// A file with no caption; the sender's history lists it too.
	alice.ok("send", "bob", "--file", filepath.Join(src, "report.pdf"))
	if h := alice.ok("history", "bob"); strings.Count(h, "[file report.pdf") != 2 {
		t.Fatalf("alice's history %q", h)
	}
	// Bad input: a text message, no such message, a missing file.
	for _, c := range [][]string{{"save", "alice:1"}, {"save", "alice:999"}, {"save", "nonsense"}} {
		if _, errs, code := bob.run(c...); code == 0 || errs == "" {
			t.Errorf("%v: exit %d %q", c, code, errs)
		}
	}
	if _, errs, code := alice.run("send", "bob", "--file", filepath.Join(src, "missing")); code == 0 || !strings.Contains(errs, "no such file") {
		t.Errorf("missing file: exit %d %q", code, errs)
	}
}

func TestSendLongText(t *testing.T) {
	us := newUsers(t, "", "alice", "bob")
	alice, bob := us[0], us[1]
	connect(t, alice, bob, "alice", "bob")
	long := strings.Repeat("a long line of text ", 3000) // 60,000 bytes
	alice.okIn(long, "send", "bob", "-")
	out := bob.ok("read")
	if !strings.Contains(out, "alice: "+strings.TrimSpace(long)) {
		t.Fatalf("bob read %d bytes, not the long message", len(out))
	}
	if _, errs, code := alice.runIn(strings.Repeat("x", 70000), "send", "bob", "-"); code == 0 || !strings.Contains(errs, "too large") {
		t.Fatalf("over the limit: exit %d %q", code, errs)
	}
}

// A file through a real node: uploaded as the node's bulk content (Kubo:
// blocks added and pinned; Bee: /bytes), saved by the reader through the
// same node, bytes identical.
func TestFileOverKubo(t *testing.T) {
	node := devnode.StartKubo(t)
	fileOverNode(t, "ipfs:"+node.URL)
}

func TestFileOverBee(t *testing.T) {
	node := devnode.StartBee(t)
	fileOverNode(t, "swarm:"+node.URL)
}

func fileOverNode(t *testing.T, store string) {
	us := newUsers(t, store, "alice", "bob")
	alice, bob := us[0], us[1]
	connect(t, alice, bob, "alice", "bob")
	src := t.TempDir()
	data := randomFile(t, src, "clip.mp4", 9<<20+3, 2)
	alice.ok("send", "bob", "--file", filepath.Join(src, "clip.mp4"), "a clip")
	long := strings.Repeat("über lang ", 2000)
	alice.okIn(long, "send", "bob", "-")
	out := bob.ok("read")
	if !strings.Contains(out, "[file clip.mp4, 9.0 MiB, video/mp4;") || !strings.Contains(out, strings.TrimSpace(long)) {
		t.Fatalf("bob read %q", out[:min(len(out), 400)])
	}
	dir := t.TempDir()
	bob.ok("save", fileID(t, out), "--out", dir)
	if got, _ := os.ReadFile(filepath.Join(dir, "clip.mp4")); !bytes.Equal(got, data) {
		t.Fatal("saved file differs")
	}
}

// SIGKILL the sender (then the reader) at a random point of a 100 MiB
// upload (download); the next run resumes and the bytes arrive identical.
// A few trials by default; DEADDROP_KILL_TRIALS=50 for the figure.
func TestKilledTransferResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("100 MiB transfers")
	}
	trials := 2
	if n, err := strconv.Atoi(os.Getenv("DEADDROP_KILL_TRIALS")); err == nil && n > 0 {
		trials = n
	}
	us := newUsers(t, "", "alice", "bob")
	alice, bob := us[0], us[1]
	connect(t, alice, bob, "alice", "bob")
	src := t.TempDir()
	rng := rand.New(rand.NewPCG(3, uint64(time.Now().UnixNano())))
	resumedUp, resumedDown := 0, 0
	for trial := range trials {
		name := fmt.Sprintf("big%d.bin", trial)
		data := randomFile(t, src, name, 100<<20, uint64(trial)+10)
		start := time.Now()
		killAfter(t, alice.cmd("send", "bob", "--file", filepath.Join(src, name)), filepath.Join(alice.home, "uploads", "*.journal"), time.Second, rng)
		killed := time.Since(start)
		uploads, _ := filepath.Glob(filepath.Join(alice.home, "uploads", "*.journal"))
		alice.ok("send", "bob", "--file", filepath.Join(src, name))
		if len(uploads) > 0 {
			resumedUp++
		}
		out := bob.ok("read")
		id := fileID(t, out)
		dir := t.TempDir()
		killAfter(t, bob.cmd("save", id, "--out", dir), filepath.Join(dir, ".deaddrop-*.journal"), 600*time.Millisecond, rng)
		if parts, _ := filepath.Glob(filepath.Join(dir, ".deaddrop-*.journal")); len(parts) > 0 {
			resumedDown++
		}
		if names, _ := filepath.Glob(filepath.Join(dir, "big*")); len(names) > 0 {
			// Killed after the file was published: it must be whole.
			if got, _ := os.ReadFile(names[0]); !bytes.Equal(got, data) {
				t.Fatalf("trial %d: a file under its name after a kill differs", trial)
			}
			os.Remove(names[0])
		}
		bob.ok("save", id, "--out", dir)
		if got, _ := os.ReadFile(filepath.Join(dir, name)); !bytes.Equal(got, data) {
			t.Fatalf("trial %d: saved file differs", trial)
		}
		os.Remove(filepath.Join(src, name))
		t.Logf("trial %d: upload killed after %v", trial, killed.Round(time.Millisecond))
	}
	t.Logf("%d trials: %d uploads and %d downloads killed part way and resumed from a journal", trials, resumedUp, resumedDown)
}

// killAfter starts cmd and, once a file matching journal appears (the
// transfer started), SIGKILLs it at a random moment of the next within
// (about a whole transfer on an idle machine, so most kills land part way).
func killAfter(t *testing.T, c *exec.Cmd, journal string, within time.Duration, rng *rand.Rand) {
	t.Helper()
	c.Stdout, c.Stderr = io.Discard, io.Discard
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { c.Wait(); close(exited) }()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if m, _ := filepath.Glob(journal); len(m) > 0 {
			break
		}
	}
	select {
	case <-time.After(time.Duration(rng.Int64N(int64(within)))):
		c.Process.Signal(syscall.SIGKILL)
		<-exited
	case <-exited:
	}
}

// A file damaged on the store: save fails with a clear error and nothing
// appears under the file's name, not even a partial file.
func TestSaveDamagedFile(t *testing.T) {
	us := newUsers(t, "", "alice", "bob")
	alice, bob := us[0], us[1]
	connect(t, alice, bob, "alice", "bob")
	src := t.TempDir()
	randomFile(t, src, "x.bin", 300<<10, 3)
	alice.ok("send", "bob", "--file", filepath.Join(src, "x.bin"))
	id := fileID(t, bob.ok("read"))
	objects, _ := filepath.Glob(filepath.Join(strings.TrimPrefix(alice.store, "embedded:"), "bulk", "*", "*"))
	if len(objects) == 0 {
		t.Fatal("no bulk objects in the store")
	}
	for _, o := range objects {
		b, _ := os.ReadFile(o)
		b[len(b)/2] ^= 1
		os.WriteFile(o, b, 0o600)
	}
	dir := t.TempDir()
	_, errs, code := bob.run("save", id, "--out", dir)
	if code != 1 || !strings.Contains(errs, "nothing was saved: the file on the store is not") || strings.Contains(errs, "goroutine") {
		t.Fatalf("save of a damaged file: exit %d %q", code, errs)
	}
	if names, _ := filepath.Glob(filepath.Join(dir, "x*")); len(names) != 0 {
		t.Fatalf("a damaged file left %v", names)
	}
	t.Logf("%s", strings.TrimSpace(errs))
}

func TestProgressBar(t *testing.T) {
	var buf bytes.Buffer
	b := &bar{w: &buf, label: "uploading x", total: 10 << 20}
	b.add(4 << 20)
	b.add(6 << 20)
	b.done(nil)
	if out := buf.String(); !strings.Contains(out, "uploading x [") || !strings.Contains(out, "100%") || !strings.HasSuffix(out, "\n") {
		t.Fatalf("bar drew %q", out)
	}
	c := &cli{err: &buf}
	if c.progressBar("x", 1).w != nil {
		t.Fatal("a bar drawn to a buffer, not a terminal")
	}
}
