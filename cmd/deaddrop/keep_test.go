package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/deaddrop/deaddrop/internal/devnode"
)

// TestKeeperOutlivesTheDevice: alice's only device pushes its records to a
// keeper on another machine (here another Kubo node), sends three messages
// to bob, who is offline, and goes away for good with its node. Then the
// network forgets every record — the expiry is simulated by wiping the
// datastore of every remaining node, which is what the DHT does to a record
// 48 hours after its last put. The keeper puts its records back (its interval
// is shortened to 2 s for the test): bob reads all three messages, and
// alice's history restores from her phrase through a node she never used.
func TestKeeperOutlivesTheDevice(t *testing.T) {
	nodes := devnode.StartKuboNetwork(t, 3)
	keeperURL, keeper, _ := startKeeper(t, "ipfs:"+nodes[2].URL, "2s")

	alice := &user{t: t, home: filepath.Join(t.TempDir(), "alice"), store: "ipfs:" + nodes[0].URL}
	bob := &user{t: t, home: filepath.Join(t.TempDir(), "bob"), store: "ipfs:" + nodes[1].URL}
	alice.initOut = alice.ok("init", "alice", "--store", alice.store)
	bob.ok("init", "bob", "--store", bob.store)
	m := phrasePattern.FindStringSubmatch(alice.initOut)
	if m == nil {
		t.Fatalf("init showed no recovery phrase: %q", alice.initOut)
	}
	connect(t, alice, bob, "alice", "bob")
	expect(t, alice.ok("keeper", "add", keeperURL), "keeper "+keeperURL+": ")
	for i := 1; i <= 3; i++ {
		alice.ok("send", "bob", fmt.Sprintf("kept %d", i))
	}
	expect(t, alice.ok("status"), "keeper  "+keeperURL, "forgets a record 48h0m0s after its last put")

	// Alice's device and node go away; the network forgets, while the
	// keeper is paused so that the forgetting shows.
	if err := keeper.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	nodes[0].Kill()
	if err := os.RemoveAll(alice.home); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes[1:] {
		if err := n.Wipe(); err != nil {
			t.Fatal(err)
		}
	}

	// Bob comes back: the messages are gone until the keeper runs again.
	if out, _, _ := bob.run("read"); strings.Contains(out, "alice: kept") {
		t.Fatalf("bob read alice's messages after every node forgot them (the test proves nothing):\n%s", out)
	}
	if err := keeper.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	out := readUntil(t, bob, "alice: kept 3", 30*time.Second)
	checkOrder(t, out, "alice: kept 1", "alice: kept 2", "alice: kept 3")

	// Alice restores from her phrase alone, through a node she never used.
	alice2 := &user{t: t, home: filepath.Join(t.TempDir(), "alice2"), store: bob.store}
	expect(t, alice2.okIn(m[1], "restore", "--store", bob.store), "restored account alice")
	checkOrder(t, alice2.ok("history", "bob"), "kept 1", "kept 2", "kept 3")
}

// readUntil runs 'read' until its output contains want.
func readUntil(t *testing.T, u *user, want string, limit time.Duration) string {
	t.Helper()
	var all strings.Builder
	deadline := time.Now().Add(limit)
	for {
		out, errs, _ := u.run("read")
		all.WriteString(out)
		if strings.Contains(all.String(), want) {
			return all.String()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%q not read after %v; read:\n%s\nlast errors: %s", want, limit, all.String(), errs)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// startKeeper runs 'deaddrop keep' for the test and returns its URL and
// process; its log is written to logs.
func startKeeper(t *testing.T, store, interval string, extra ...string) (string, *exec.Cmd, *syncBuffer) {
	t.Helper()
	port, err := devnode.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	k := (&user{t: t, home: t.TempDir()}).cmd("keep", "--store", store, "--dir", t.TempDir(),
		"--listen", fmt.Sprintf("127.0.0.1:%d", port), "--interval", interval)
	k.Args = append(k.Args, extra...)
	k.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := k.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logs := new(syncBuffer)
	k.Stderr = logs
	if err := k.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		k.Process.Signal(syscall.SIGCONT)
		k.Process.Signal(syscall.SIGTERM)
		k.Wait()
		if t.Failed() {
			t.Logf("keeper log:\n%s", logs.String())
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.Contains(line, "keeper listening on ") {
		t.Fatalf("keeper did not start: %q, %v\n%s", line, err, logs.String())
	}
	return fmt.Sprintf("http://127.0.0.1:%d", port), k, logs
}

// syncBuffer is a buffer a process writes to while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
