package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/deaddrop/deaddrop/feed/feedtest"
	"github.com/deaddrop/deaddrop/internal/devnode"
	"github.com/deaddrop/deaddrop/transport/mix"
)

// End to end through the mix: three mix daemons and a gateway daemon (real
// processes) in front of a real Bee node; alice and bob use only --mix (their
// own store setting points nowhere), bob is offline for 50 messages. The
// storage node's access is recorded: every request came from the gateway
// process, none from a client.
func TestMixEndToEnd(t *testing.T) {
	bee := devnode.StartBee(t)
	seen := newOwnerRecorder(t, bee.URL)
	dir := t.TempDir()
	netDir := filepath.Join(dir, "net")
	run(t, "mix", "testnet", "--dir", netDir)
	topo := filepath.Join(netDir, "topology.json")
	key := directoryKey(t, netDir)
	var gateway *exec.Cmd
	for _, name := range []string{"mix-1-0", "mix-2-0", "mix-3-0", "gateway"} {
		role := "node"
		args := []string{}
		if name == "gateway" {
			role, args = "gateway", []string{"--store", "swarm:" + seen.url}
		}
		args = append(args, "mix", role, "--config", filepath.Join(netDir, name+".json"), "--topology", topo, "--directory-key", key)
		cmd := background(t, args...)
		if name == "gateway" {
			gateway = cmd
		}
	}
	waitListening(t, netDir)
	seen.gatewayPID = gateway.Process.Pid

	us := newUsers(t, "embedded:"+filepath.Join(dir, "unused-store"), "alice", "bob")
	alice, bob := us[0], us[1]
	if _, errs, code := alice.run("--mix", topo, "--mix-directory-key", strings.Repeat("ab", 32), "status"); code == 0 || !strings.Contains(errs, "trusted directory key") {
		t.Fatalf("topology signed by another directory: exit %d, %q", code, errs)
	}
	withMix := func(u *user, args ...string) string {
		return u.ok(append([]string{"--mix", topo, "--mix-directory-key", key}, args...)...)
	}
	inv := strings.TrimSpace(withMix(alice, "invite", "bob"))
	withMix(bob, "accept", inv)
	if out := withMix(alice, "read"); !strings.Contains(out, "bob accepted your invite") {
		t.Fatalf("alice: %q", out)
	}
	for i := 1; i <= 50; i++ {
		withMix(alice, "send", "bob", fmt.Sprintf("m%d", i))
	}
	checkInOrder(t, withMix(bob, "read"), 50)
	// A file is refused through the mix, with the trade-off named, and
	// nothing leaves the client around it.
	file := filepath.Join(dir, "photo.jpg")
	os.WriteFile(file, []byte("not really a photo"), 0o600)
	if _, errs, code := alice.run("--mix", topo, "--mix-directory-key", key, "send", "bob", "--file", file); code == 0 ||
		!strings.Contains(errs, "only message chunks, not files") || !strings.Contains(errs, "reveal your node") {
		t.Fatalf("file through the mix: exit %d, %q", code, errs)
	}
	if out := withMix(alice, "read"); !strings.Contains(out, "delivered to bob: 50 messages") {
		t.Fatalf("alice's receipts: %q", out)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "unused-store")); len(entries) > 1 {
		t.Fatalf("a client wrote to its own store: %v", entries)
	}
	reqs, owners := seen.report()
	t.Logf("the storage node served %d requests, from processes %v (gateway %d; -1: connection already gone)", reqs, owners, gateway.Process.Pid)
	for _, pid := range owners {
		if pid != gateway.Process.Pid && pid != -1 {
			t.Fatalf("the storage node saw requests from process %d, not the gateway %d", pid, gateway.Process.Pid)
		}
	}
	if reqs < 100 || seen.fromGateway(gateway.Process.Pid) < reqs*9/10 {
		t.Fatalf("only %d of %d requests traced to the gateway", seen.fromGateway(gateway.Process.Pid), reqs)
	}
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(binary, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("deaddrop %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// background starts a long-running deaddrop process, stopped at the end.
func background(t *testing.T, args ...string) *exec.Cmd {
	cmd := exec.Command(binary, args...)
	logf, _ := os.Create(filepath.Join(t.TempDir(), "daemon.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("deaddrop %s:\n%s", strings.Join(args, " "), b)
		}
	})
	return cmd
}

func waitListening(t *testing.T, netDir string) {
	tn, err := mix.LoadTopologyUnpinned(filepath.Join(netDir, "topology.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range tn.Nodes {
		deadline := time.Now().Add(20 * time.Second)
		for {
			c, err := net.DialTimeout("tcp", n.Addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %s never listened on %s", n.ID[:8], n.Addr)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// ownerRecorder fronts the storage node and records, for every request, the
// process that owns the client end of the connection (from /proc).
type ownerRecorder struct {
	url        string
	gatewayPID int
	mu         sync.Mutex
	requests   int
	owners     map[int]int // pid → requests
}

func newOwnerRecorder(t *testing.T, target string) *ownerRecorder {
	r := &ownerRecorder{owners: map[int]int{}}
	p := feedtest.NewProxy(t, target)
	p.OnRequest = func(req *http.Request) {
		pid := ownerOf(req.RemoteAddr)
		r.mu.Lock()
		r.requests++
		r.owners[pid]++
		r.mu.Unlock()
	}
	r.url = p.URL
	return r
}

func (r *ownerRecorder) fromGateway(pid int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.owners[pid]
}

func (r *ownerRecorder) report() (int, []int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var owners []int
	for pid := range r.owners {
		owners = append(owners, pid)
	}
	return r.requests, owners
}

// ownerOf finds the process whose socket has local address addr, through
// /proc/net/tcp and the processes' file descriptors; -1 if not found.
func ownerOf(addr string) int {
	_, portStr, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portStr)
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return -1
	}
	defer f.Close()
	inode := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		// A closed connection can linger (TIME_WAIT) under the same port with
		// inode 0: take the live one.
		if len(fields) > 9 && strings.HasSuffix(fields[1], fmt.Sprintf(":%04X", port)) && fields[9] != "0" {
			inode = fields[9]
			break
		}
	}
	if inode == "" {
		return -1
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range procs {
		if link, err := os.Readlink(fd); err == nil && link == "socket:["+inode+"]" {
			pid, _ := strconv.Atoi(strings.Split(fd, "/")[2])
			return pid
		}
	}
	return -1
}

// directoryKey is the directory key of a testnet's topology, as its
// publisher would announce it.
func directoryKey(t *testing.T, netDir string) string {
	t.Helper()
	tn, err := mix.LoadTopologyUnpinned(filepath.Join(netDir, "topology.json"))
	if err != nil {
		t.Fatal(err)
	}
	return tn.DirectoryKey
}

// A mix topology must be pinned to a directory key: unpinned, it is refused
// before any connection, unless accepted by name for a test.
func TestMixTopologyPinned(t *testing.T) {
	netDir := filepath.Join(t.TempDir(), "net")
	out := run(t, "mix", "testnet", "--dir", netDir)
	topo := filepath.Join(netDir, "topology.json")
	key := directoryKey(t, netDir)
	expect(t, out, "--mix-directory-key "+key)
	alice := newUsers(t, "", "alice")[0]
	if _, errs, code := alice.run("--mix", topo, "status"); code != 2 || !strings.Contains(errs, "no directory key is pinned") {
		t.Fatalf("unpinned topology: exit %d, %q", code, errs)
	}
	if _, errs, code := alice.run("--mix", topo, "--mix-directory-key", strings.Repeat("ab", 32), "status"); code != 1 || !strings.Contains(errs, "not the trusted directory key") {
		t.Fatalf("topology signed by another key: exit %d, %q", code, errs)
	}
	node := []string{"mix", "node", "--config", filepath.Join(netDir, "mix-1-0.json"), "--topology", topo}
	if _, errs, code := alice.run(node...); code != 2 || !strings.Contains(errs, "--directory-key") {
		t.Fatalf("unpinned mix node: exit %d, %q", code, errs)
	}
	if _, errs, code := alice.run(append(node, "--directory-key", key, "--insecure-unpinned-topology")...); code != 2 || !strings.Contains(errs, "contradict") {
		t.Fatalf("both flags: exit %d, %q", code, errs)
	}
}
