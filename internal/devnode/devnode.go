// Package devnode starts real storage nodes on loopback for tests, benchmarks
// and the demo: a Bee dev node (Swarm) and a private Kubo node (IPFS). The
// binaries come from $DEADDROP_BEE / $DEADDROP_KUBO or are built from the Go
// module proxy by scripts/bee.sh and scripts/kubo.sh into a cache outside the
// repository; a missing binary is built, never a reason to skip.
package devnode

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Node is a running storage node process.
type Node struct {
	// URL is the API the stores talk to (Bee API, Kubo RPC).
	URL string

	kind    string
	bin     string
	dir     string // the node's working directory (logs, repo)
	args    []string
	env     []string
	health  string // path answering 2xx once the node is ready
	method  string
	logPath string

	// onStart runs after every start once the node answers (a Kubo network
	// node reconnects to its peers there, so Restart and Wipe rejoin).
	onStart func() error

	mu  sync.Mutex
	cmd *exec.Cmd
}

var buildMu sync.Mutex

// binary returns the node binary: $env, or the path scripts/<script> prints
// (building it on first use).
func binary(env, script string) (string, error) {
	if p := os.Getenv(env); p != "" {
		return p, nil
	}
	buildMu.Lock()
	defer buildMu.Unlock()
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	cmd := exec.Command("bash", filepath.Join(root, "scripts", script))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("building with scripts/%s: %w", script, err)
	}
	return strings.TrimSpace(string(out)), nil
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "scripts", "build-tool.sh")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cannot find the deaddrop repository root (scripts/build-tool.sh)")
		}
		dir = parent
	}
}

// FreePort returns a loopback TCP port that is free now.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// start launches the process, waits until it answers its health check, then
// runs onStart.
func (n *Node) start() error {
	if err := n.launch(); err != nil {
		return err
	}
	if n.onStart == nil {
		return nil
	}
	if err := n.onStart(); err != nil {
		return fmt.Errorf("%s started, but: %w", n.kind, err)
	}
	return nil
}

// launch starts the process and waits until it answers its health check.
func (n *Node) launch() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	logf, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(n.bin, n.args...)
	cmd.Dir = n.dir
	cmd.Env = append(os.Environ(), n.env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting %s: %w", n.kind, err)
	}
	n.cmd = cmd
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); logf.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		if n.healthy(ctx) {
			go func() { <-exited }()
			return nil
		}
		select {
		case err := <-exited:
			n.cmd = nil
			return fmt.Errorf("%s exited at start (%v); log:\n%s", n.kind, err, n.LogTail())
		case <-ctx.Done():
			n.killLocked()
			return fmt.Errorf("%s did not become ready in 60s; log:\n%s", n.kind, n.LogTail())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (n *Node) healthy(ctx context.Context) bool {
	req, _ := http.NewRequestWithContext(ctx, n.method, n.URL+n.health, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode/100 == 2
}

// Stop ends the node gracefully (SIGTERM, then SIGKILL after 10 s).
func (n *Node) Stop() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return
	}
	syscall.Kill(-n.cmd.Process.Pid, syscall.SIGTERM)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if syscall.Kill(n.cmd.Process.Pid, 0) != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	n.killLocked()
}

// Kill ends the node at once, as a crash would.
func (n *Node) Kill() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.killLocked()
}

func (n *Node) killLocked() {
	if n.cmd == nil {
		return
	}
	syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
	for i := 0; i < 200 && syscall.Kill(n.cmd.Process.Pid, 0) == nil; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	n.cmd = nil
}

// Restart stops the node and starts it again on the same address.
func (n *Node) Restart() error {
	n.Stop()
	return n.start()
}

// LogTail returns the end of the node's log.
func (n *Node) LogTail() string {
	b, _ := os.ReadFile(n.logPath)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// Dir is the node's working directory.
func (n *Node) Dir() string { return n.dir }

// Bee starts `bee dev` (in-memory, no chain, no peers) on a free loopback
// port, with its files in dir. A restart comes back empty.
func Bee(dir string) (*Node, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	bin, err := binary("DEADDROP_BEE", "bee.sh")
	if err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	n := &Node{URL: "http://" + addr, kind: "bee", bin: bin, dir: dir, health: "/health", method: http.MethodGet,
		args:    []string{"dev", "--api-addr", addr, "--verbosity", "2", "--config", filepath.Join(dir, "bee.yaml")},
		env:     []string{"HOME=" + dir},
		logPath: filepath.Join(dir, "bee.log")}
	if err := os.WriteFile(filepath.Join(dir, "bee.yaml"), nil, 0o644); err != nil {
		return nil, err
	}
	return n, n.start()
}

// StartBee starts a Bee dev node for a test and stops it when the test ends.
func StartBee(t testing.TB) *Node {
	t.Helper()
	n, err := Bee(t.TempDir())
	if err != nil {
		t.Fatalf("Bee dev node: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("bee log tail:\n%s", n.LogTail())
		}
		n.Stop()
	})
	return n
}

// Kubo initialises a private Kubo node (test profile: loopback only, no
// bootstrap peers, no mDNS; DHT routing so that IPNS records are accepted and
// served) with its repository in dir, and starts it on free loopback ports.
// Its datastore is on disk, so records survive a restart.
func Kubo(dir string) (*Node, error) {
	n, err := kuboInit(dir, 0)
	if err != nil {
		return nil, err
	}
	return n, n.start()
}

// kuboInit creates a Kubo repository in dir with free API and gateway ports
// and the swarm on swarmPort (0: any), and returns the node, not started.
func kuboInit(dir string, swarmPort int) (*Node, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	bin, err := binary("DEADDROP_KUBO", "kubo.sh")
	if err != nil {
		return nil, err
	}
	api, err := FreePort()
	if err != nil {
		return nil, err
	}
	gw, err := FreePort()
	if err != nil {
		return nil, err
	}
	n := &Node{URL: fmt.Sprintf("http://127.0.0.1:%d", api), kind: "kubo", bin: bin, dir: dir,
		health: "/api/v0/version", method: http.MethodPost, args: []string{"daemon"},
		env:     []string{"IPFS_PATH=" + filepath.Join(dir, "repo"), "HOME=" + dir},
		logPath: filepath.Join(dir, "kubo.log")}
	for _, args := range [][]string{
		{"init", "--profile", "test"},
		{"config", "Routing.Type", "dht"},
		{"config", "Addresses.API", fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", api)},
		{"config", "Addresses.Gateway", fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", gw)},
		{"config", "--json", "Addresses.Swarm", fmt.Sprintf(`["/ip4/127.0.0.1/tcp/%d"]`, swarmPort)},
		{"config", "--json", "Bootstrap", `[]`},
		{"config", "--json", "Discovery.MDNS.Enabled", `false`},
	} {
		if _, err := n.ipfs(args...); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// ipfs runs the Kubo binary on the node's repository (the daemon need not
// run) and returns its output.
func (n *Node) ipfs(args ...string) (string, error) {
	cmd := exec.Command(n.bin, args...)
	cmd.Env = append(os.Environ(), n.env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("ipfs %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// StartKubo starts a private Kubo node for a test and stops it when the test
// ends.
func StartKubo(t testing.TB) *Node {
	t.Helper()
	n, err := Kubo(t.TempDir())
	if err != nil {
		t.Fatalf("Kubo node: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kubo log tail:\n%s", n.LogTail())
		}
		n.Stop()
	})
	return n
}
