package devnode

import (
	"testing"
	"time"
)

// The network comes up with every node connected to every other, its API
// reachable from the host, and a node survives a crash and a restart.
func TestSwarmNetwork(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain and three Bee nodes")
	}
	s := StartSwarmNetwork(t, 3)
	for i, n := range s.Nodes {
		if err := n.hasPeers(t.Context(), 2); err != nil {
			t.Errorf("node %d: %v", i, err)
		}
	}
	n := s.Nodes[2]
	if err := n.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := getJSON(t.Context(), n.URL+"/health", nil); err == nil {
		t.Fatal("a killed node still answers")
	}
	start := time.Now()
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Logf("a killed node is ready again in %v", time.Since(start).Round(time.Millisecond))
	if err := waitFor(t.Context(), "peers after restart", func() error { return n.hasPeers(t.Context(), 1) }); err != nil {
		t.Fatal(err)
	}
}
