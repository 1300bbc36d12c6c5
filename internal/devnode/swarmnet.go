package devnode

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// SwarmNet is a private Swarm network: a `geth --dev` chain with the storage
// incentives contracts and n full Bee nodes (v2.7.0, `bee start`, postage on
// that chain), all inside one loopback-only network namespace so that no node
// can send a packet anywhere but to the others. Each node's API is forwarded
// to a port on the host's loopback (SwarmNode.URL), as is the chain's RPC
// (ChainURL).
type SwarmNet struct {
	Nodes []*SwarmNode
	// ChainURL is the dev chain's JSON-RPC endpoint.
	ChainURL string
	// Contracts are the deployed contract addresses.
	Contracts contracts
	// Ready is how long the network took to start (nodes joined, postage
	// price set, nodes funded).
	Ready time.Duration

	dir string
	ctl *launcher
}

// SwarmNode is one Bee node of a SwarmNet.
type SwarmNode struct {
	// URL is the node's API on the host's loopback.
	URL string
	// Ethereum is the node's wallet address; Underlay its p2p address
	// inside the namespace.
	Ethereum, Underlay string

	name    string
	logPath string
	ctl     *launcher
}

// networkID is the Swarm network id of test networks (any id but mainnet's 1
// and testnet's 10).
const networkID = 1917

// In-namespace ports: the namespace is private, so fixed ports never clash.
const (
	gethPort    = 8545
	beeAPIBase  = 11630
	beeP2PBase  = 12630
	readyBudget = 240 * time.Second
)

// StartSwarmNetwork starts a private Bee network of n full nodes (n >= 3)
// with a local dev chain and working postage, for a test; it is stopped at
// cleanup.
func StartSwarmNetwork(t testing.TB, n int) *SwarmNet {
	t.Helper()
	s, err := SwarmNetwork(t.TempDir(), n)
	if err != nil {
		t.Fatalf("Swarm network: %v", err)
	}
	t.Logf("Swarm network of %d nodes ready in %v", n, s.Ready.Round(time.Millisecond))
	t.Cleanup(func() {
		if t.Failed() {
			for i, node := range s.Nodes {
				t.Logf("bee %d log tail:\n%s", i, node.LogTail())
			}
		}
		s.Stop()
	})
	return s
}

// SwarmNetwork starts a private Bee network of n full nodes with its files
// in dir; the caller must Stop it. For benchmarks and tools.
func SwarmNetwork(dir string, n int) (*SwarmNet, error) {
	if n < 1 {
		return nil, errors.New("a Swarm network needs at least one node")
	}
	// Bringing a network up is CPU-heavy (key derivation in bee init, the
	// chain's deployments, warm-up); go test runs packages in parallel, and
	// three networks starting at once on two cores missed their readiness
	// budget. One at a time on this machine; running networks are light.
	unlock, err := lockBringUp()
	if err != nil {
		return nil, err
	}
	defer unlock()
	start := time.Now()
	bins, err := networkBinaries(dir)
	if err != nil {
		return nil, err
	}
	ctl, hostPorts, err := startLauncher(dir, bins.netns, n+1)
	if err != nil {
		return nil, err
	}
	s := &SwarmNet{dir: dir, ctl: ctl, ChainURL: fmt.Sprintf("http://127.0.0.1:%d", hostPorts[0])}
	ctx, cancel := context.WithTimeout(context.Background(), readyBudget)
	defer cancel()
	if err := s.bringUp(ctx, bins, hostPorts[1:]); err != nil {
		s.Stop()
		return nil, fmt.Errorf("%w%s", err, s.logTails())
	}
	s.Ready = time.Since(start)
	return s, nil
}

// lockBringUp takes a machine-wide lock (a file lock, so across test
// processes) for starting a network.
func lockBringUp() (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "deaddrop-swarmnet.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking Swarm network start-up: %w", err)
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

func (s *SwarmNet) logTails() string {
	var b strings.Builder
	for _, name := range []string{"geth"} {
		fmt.Fprintf(&b, "\n%s log tail:\n%s", name, tail(filepath.Join(s.dir, name+".log")))
	}
	for _, node := range s.Nodes {
		fmt.Fprintf(&b, "\n%s log tail:\n%s", node.name, node.LogTail())
	}
	return b.String()
}

// bringUp starts the chain, deploys the contracts, then starts, funds and
// joins the Bee nodes.
func (s *SwarmNet) bringUp(ctx context.Context, bins binaries, apiPorts []int) error {
	if err := s.ctl.run(command{Op: "run", Name: "geth", Dir: s.dir, Log: filepath.Join(s.dir, "geth.log"), Argv: []string{
		bins.geth, "--dev", "--dev.period", "1", "--nodiscover", "--maxpeers", "0", "--port", "0", "--ipcdisable",
		"--http", "--http.addr", "127.0.0.1", "--http.port", strconv.Itoa(gethPort), "--http.api", "eth,net,web3",
		"--datadir", filepath.Join(s.dir, "geth"), "--verbosity", "2"}}); err != nil {
		return err
	}
	c := &chain{url: s.ChainURL}
	if err := waitFor(ctx, "geth", func() error {
		var accts []string
		if err := c.call(ctx, "eth_accounts", nil, &accts); err != nil {
			return err
		}
		if len(accts) == 0 {
			return errors.New("no developer account")
		}
		c.from = accts[0]
		return nil
	}); err != nil {
		return err
	}
	k, err := deployContracts(ctx, c, bins.contracts, networkID)
	if err != nil {
		return fmt.Errorf("deploying the storage incentives contracts: %w", err)
	}
	s.Contracts = k
	for i := range apiPorts {
		node, err := s.startNode(ctx, bins.bee, i, apiPorts[i])
		if err != nil {
			return err
		}
		s.Nodes = append(s.Nodes, node)
	}
	var addrs []string
	for _, node := range s.Nodes {
		addrs = append(addrs, node.Ethereum)
	}
	if err := fund(ctx, c, k.Token, addrs); err != nil {
		return fmt.Errorf("funding the nodes: %w", err)
	}
	return s.join(ctx)
}

// startNode initialises node i and starts it against the dev chain.
func (s *SwarmNet) startNode(ctx context.Context, bee string, i, hostPort int) (*SwarmNode, error) {
	name := fmt.Sprintf("bee%d", i)
	dir := filepath.Join(s.dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "bee.yaml")
	if err := os.WriteFile(cfg, nil, 0o644); err != nil {
		return nil, err
	}
	common := []string{"--config", cfg, "--data-dir", filepath.Join(dir, "data"), "--password", "deaddrop-test"}
	init := exec.Command(bee, append([]string{"init"}, common...)...)
	init.Env = append(os.Environ(), "HOME="+dir)
	if out, err := init.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("bee init: %v\n%s", err, out)
	}
	k := s.Contracts
	argv := append([]string{bee, "start"}, common...)
	argv = append(argv,
		"--api-addr", fmt.Sprintf("127.0.0.1:%d", beeAPIBase+i),
		"--p2p-addr", fmt.Sprintf("127.0.0.1:%d", beeP2PBase+i),
		"--full-node", "--mainnet=false", fmt.Sprintf("--network-id=%d", networkID),
		"--bootnode=", "--allow-private-cidrs", "--block-time=1",
		"--swap-enable=false", "--chequebook-enable=false", "--storage-incentives-enable=false",
		"--warmup-time=5s", "--neighborhood-suggester=", "--verbosity=3",
		"--blockchain-rpc-endpoint", fmt.Sprintf("http://127.0.0.1:%d", gethPort),
		"--postage-stamp-address", k.PostageStamp,
		"--postage-stamp-start-block", strconv.FormatUint(k.StartBlock, 10),
		"--price-oracle-address", k.PriceOracle,
		"--staking-address", k.Staking,
		"--redistribution-address", k.Redistribution)
	node := &SwarmNode{URL: fmt.Sprintf("http://127.0.0.1:%d", hostPort), name: name,
		logPath: filepath.Join(dir, "bee.log"), ctl: s.ctl}
	if err := s.ctl.run(command{Op: "run", Name: name, Dir: dir, Log: node.logPath, Argv: argv, Env: []string{"HOME=" + dir}}); err != nil {
		return nil, err
	}
	if err := node.waitHealthy(ctx); err != nil {
		return nil, fmt.Errorf("%w\n%s log tail:\n%s", err, name, node.LogTail())
	}
	var addrs struct {
		Ethereum string   `json:"ethereum"`
		Underlay []string `json:"underlay"`
	}
	if err := waitFor(ctx, name+" addresses", func() error { return getJSON(ctx, node.URL+"/addresses", &addrs) }); err != nil {
		return nil, err
	}
	node.Ethereum = addrs.Ethereum
	for _, u := range addrs.Underlay {
		if strings.HasPrefix(u, "/ip4/127.0.0.1/") {
			node.Underlay = u
		}
	}
	if node.Underlay == "" {
		return nil, fmt.Errorf("%s has no loopback underlay address: %v", name, addrs.Underlay)
	}
	return node, nil
}

// join connects every node to every earlier one (B→A, C→A, C→B, …), which
// is what makes them use each other for pushing and retrieval; --bootnode
// alone left nodes unused.
func (s *SwarmNet) join(ctx context.Context) error {
	for i, node := range s.Nodes {
		for _, peer := range s.Nodes[:i] {
			if err := waitFor(ctx, node.name+" connect", func() error {
				return post(ctx, node.URL+"/connect"+peer.Underlay)
			}); err != nil {
				return err
			}
		}
	}
	for _, node := range s.Nodes {
		if err := waitFor(ctx, node.name+" peers", func() error { return node.hasPeers(ctx, len(s.Nodes)-1) }); err != nil {
			return err
		}
		if err := waitFor(ctx, node.name+" postage price", func() error { return node.hasPrice(ctx) }); err != nil {
			return err
		}
	}
	return nil
}

// hasPrice reports whether the node has read the postage price from the
// chain; until it has, it cannot price a batch.
func (n *SwarmNode) hasPrice(ctx context.Context) error {
	var cs struct {
		CurrentPrice json.Number `json:"currentPrice"`
	}
	if err := getJSON(ctx, n.URL+"/chainstate", &cs); err != nil {
		return err
	}
	if cs.CurrentPrice == "" || cs.CurrentPrice == "0" {
		return fmt.Errorf("price %q", cs.CurrentPrice)
	}
	return nil
}

func (n *SwarmNode) hasPeers(ctx context.Context, want int) error {
	var peers struct {
		Peers []struct{} `json:"peers"`
	}
	if err := getJSON(ctx, n.URL+"/peers", &peers); err != nil {
		return err
	}
	if len(peers.Peers) < want {
		return fmt.Errorf("%d peers, want %d", len(peers.Peers), want)
	}
	return nil
}

// Stop ends the whole network: every node, the chain and the launcher.
func (s *SwarmNet) Stop() { s.ctl.close() }

// Kill ends the node at once, as a crash would.
func (n *SwarmNode) Kill() error { return n.ctl.run(command{Op: "kill", Name: n.name}) }

// Stop ends the node gracefully (SIGTERM, then SIGKILL after 10 s).
func (n *SwarmNode) Stop() error { return n.ctl.run(command{Op: "stop", Name: n.name}) }

// Start starts a stopped node again with its data and waits until its API
// answers and it has a peer.
func (n *SwarmNode) Start() error {
	if err := n.ctl.run(command{Op: "start", Name: n.name}); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), readyBudget)
	defer cancel()
	if err := n.waitHealthy(ctx); err != nil {
		return fmt.Errorf("%w; log:\n%s", err, n.LogTail())
	}
	return nil
}

// Restart stops the node and starts it again.
func (n *SwarmNode) Restart() error {
	if err := n.Stop(); err != nil {
		return err
	}
	return n.Start()
}

// LogTail returns the end of the node's log.
func (n *SwarmNode) LogTail() string { return tail(n.logPath) }

// waitHealthy waits for /readiness: the node is warmed up and synced with
// the chain's postage events.
func (n *SwarmNode) waitHealthy(ctx context.Context) error {
	return waitFor(ctx, n.name+" readiness", func() error { return getJSON(ctx, n.URL+"/readiness", nil) })
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// waitFor retries f every 100 ms until it succeeds or ctx ends.
func waitFor(ctx context.Context, what string, f func() error) error {
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %v", what, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func getJSON(ctx context.Context, url string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	return doJSON(req, out)
}

func post(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return err
	}
	return doJSON(req, nil)
}

func doJSON(req *http.Request, out any) error {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %d %s", req.Method, req.URL.Path, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(b, out)
}

type binaries struct {
	bee, geth, netns string
	contracts        map[string]string
}

// networkBinaries returns Bee and geth (built on first use), the contracts'
// bytecode and the namespace launcher (built into dir).
func networkBinaries(dir string) (binaries, error) {
	var b binaries
	var err error
	if b.bee, err = binary("DEADDROP_BEE", "bee.sh"); err != nil {
		return b, err
	}
	if b.geth, err = binary("DEADDROP_GETH", "geth.sh"); err != nil {
		return b, err
	}
	root, err := repoRoot()
	if err != nil {
		return b, err
	}
	out, err := runOut(root, "bash", "scripts/build-tool.sh", "geth", "v0.9.4", "./contracts", "storage-contracts")
	if err != nil {
		return b, fmt.Errorf("building the contracts printer: %w", err)
	}
	printed, err := runOut(root, strings.TrimSpace(out))
	if err != nil {
		return b, err
	}
	if err := json.Unmarshal([]byte(printed), &b.contracts); err != nil {
		return b, fmt.Errorf("contracts bytecode: %w", err)
	}
	b.netns = filepath.Join(dir, "netns")
	if _, err := runOut(root, "go", "build", "-o", b.netns, "./internal/devnode/netns"); err != nil {
		return b, fmt.Errorf("building the namespace launcher: %w", err)
	}
	return b, nil
}

func runOut(dir, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}

// command is a request to the launcher (see internal/devnode/netns).
type command struct {
	Op   string   `json:"op"`
	Name string   `json:"name"`
	Argv []string `json:"argv,omitempty"`
	Dir  string   `json:"dir,omitempty"`
	Log  string   `json:"log,omitempty"`
	Env  []string `json:"env,omitempty"`
}

// launcher is the netns process: it lives in its own network namespace,
// runs the nodes there and forwards the host loopback listeners it inherited
// to their ports.
type launcher struct {
	mu     sync.Mutex
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Scanner
	once   sync.Once
	exited chan struct{}
}

// startLauncher creates count host loopback listeners, starts the launcher
// in a new network namespace with them and returns their host ports. The
// first forwards to the chain's RPC port, the others to the Bee APIs.
func startLauncher(dir, bin string, count int) (*launcher, []int, error) {
	var files []*os.File
	var ports []int
	args := []string{strconv.Itoa(gethPort)}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	for i := 0; i < count; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, err
		}
		f, err := l.(*net.TCPListener).File()
		l.Close() // the duplicate in f keeps the socket listening
		if err != nil {
			return nil, nil, err
		}
		files = append(files, f)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
		if i > 0 {
			args = append(args, strconv.Itoa(beeAPIBase+i-1))
		}
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.ExtraFiles = files
	cmd.SysProcAttr = namespaceAttr()
	logf, err := os.Create(filepath.Join(dir, "netns.log"))
	if err != nil {
		return nil, nil, err
	}
	defer logf.Close()
	cmd.Stderr = logf
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, nil, err
	}
	outp, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("starting the namespace launcher: %w", err)
	}
	l := &launcher{cmd: cmd, in: in, out: bufio.NewScanner(outp), exited: make(chan struct{})}
	go func() { cmd.Wait(); close(l.exited) }()
	if err := l.answer(); err != nil {
		l.close()
		return nil, nil, fmt.Errorf("namespace launcher: %w\n%s", err, tail(filepath.Join(dir, "netns.log")))
	}
	return l, ports, nil
}

// namespaceAttr puts the launcher in a new network namespace; without root
// it also needs a user namespace in which it is root.
func namespaceAttr() *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Cloneflags: syscall.CLONE_NEWNET}
	if os.Geteuid() != 0 {
		a.Cloneflags |= syscall.CLONE_NEWUSER
		a.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
		a.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
	}
	return a
}

func (l *launcher) run(c command) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, _ := json.Marshal(c)
	if _, err := l.in.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("launcher: %w", err)
	}
	if err := l.answer(); err != nil {
		return fmt.Errorf("%s %s: %w", c.Op, c.Name, err)
	}
	return nil
}

func (l *launcher) answer() error {
	if !l.out.Scan() {
		return errors.New("the launcher exited")
	}
	var a struct{ Err string }
	if err := json.Unmarshal(l.out.Bytes(), &a); err != nil {
		return fmt.Errorf("launcher answered %q", l.out.Text())
	}
	if a.Err != "" {
		return errors.New(a.Err)
	}
	return nil
}

// close ends the launcher, which kills every process it runs; if it does not
// exit in 15 s its process group is killed.
func (l *launcher) close() {
	l.once.Do(func() {
		l.in.Close()
		select {
		case <-l.exited:
		case <-time.After(15 * time.Second):
			syscall.Kill(-l.cmd.Process.Pid, syscall.SIGKILL)
			<-l.exited
		}
	})
}

// Settle waits until every node holds the same number of chunks in its
// reserve and that number has not changed for a second: with every node in
// one neighbourhood, each then holds every chunk uploaded so far. Uploads
// answer before their chunks are pushed, so a test that kills the uploader
// must settle first. Stopped nodes are skipped.
func (s *SwarmNet) Settle(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyBudget)
	defer cancel()
	var last []uint64
	return waitFor(ctx, "the reserves to settle", func() error {
		var sizes []uint64
		for _, n := range s.Nodes {
			var st struct {
				ReserveSize uint64 `json:"reserveSize"`
			}
			if getJSON(ctx, n.URL+"/status", &st) == nil {
				sizes = append(sizes, st.ReserveSize)
			}
		}
		prev := last
		last = sizes
		if len(sizes) == 0 || !slices.Equal(sizes, prev) {
			time.Sleep(time.Second)
			return fmt.Errorf("reserve sizes %v, a second before %v", sizes, prev)
		}
		if slices.Min(sizes) != slices.Max(sizes) {
			return fmt.Errorf("reserve sizes %v differ", sizes)
		}
		return nil
	})
}
