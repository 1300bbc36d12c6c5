package devnode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A private Kubo network: n nodes on loopback, DHT routing, no bootstrap
// peers and no mDNS, so they know only each other. Each node's swarm port is
// fixed for its life, so a node that is killed, restarted or wiped comes back
// at the same address and reconnects to the others itself (see connectPeers).

// StartKuboNetwork starts n (>= 3) private Kubo nodes, every node connected
// to every other, and stops them when the test ends.
func StartKuboNetwork(t testing.TB, n int) []*Node {
	t.Helper()
	nodes, err := KuboNetwork(t.TempDir(), n)
	if err != nil {
		t.Fatalf("Kubo network: %v", err)
	}
	t.Cleanup(func() {
		for i, node := range nodes {
			if t.Failed() {
				t.Logf("kubo node %d log tail:\n%s", i, node.LogTail())
			}
			node.Stop()
		}
	})
	return nodes
}

// KuboNetwork starts n (>= 3) private Kubo nodes under dir, every node
// connected to every other. The caller stops them.
func KuboNetwork(dir string, n int) ([]*Node, error) {
	if n < 3 {
		return nil, fmt.Errorf("a Kubo network needs at least 3 nodes, not %d", n)
	}
	nodes := make([]*Node, n)
	peers := make([]string, n) // each node's swarm multiaddr with its peer id
	for i := range nodes {
		node, addr, err := kuboNetNode(filepath.Join(dir, fmt.Sprintf("kubo%d", i)))
		if err != nil {
			stopAll(nodes)
			return nil, fmt.Errorf("node %d: %w", i, err)
		}
		nodes[i], peers[i] = node, addr
	}
	for i, node := range nodes {
		node.onStart = func() error { return connectPeers(node, nodes, peers) }
		// Each node dials those started before it, so at the end every
		// pair is connected.
		if err := node.start(); err != nil {
			stopAll(nodes)
			return nil, fmt.Errorf("starting node %d: %w", i, err)
		}
	}
	return nodes, nil
}

// kuboNetNode initialises one network node on a fixed free swarm port and
// returns it, not started, with its swarm multiaddr.
func kuboNetNode(dir string) (*Node, string, error) {
	port, err := FreePort()
	if err != nil {
		return nil, "", err
	}
	node, err := kuboInit(dir, port)
	if err != nil {
		return nil, "", err
	}
	id, err := node.ipfs("config", "Identity.PeerID")
	if err != nil {
		return nil, "", err
	}
	return node, fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/%s", port, id), nil
}

func stopAll(nodes []*Node) {
	for _, n := range nodes {
		if n != nil {
			n.Stop()
		}
	}
}

// connectPeers connects node to every other running node of the network.
// Nodes that are down are skipped: they dial in themselves when they start.
func connectPeers(node *Node, nodes []*Node, peers []string) error {
	var errs []error
	for i, other := range nodes {
		if other == node || other == nil || !other.running() {
			continue
		}
		if err := swarmConnect(node.URL, peers[i]); err != nil {
			errs = append(errs, fmt.Errorf("connecting to node %d: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

// swarmConnect asks the Kubo node at api to connect to the peer at addr.
func swarmConnect(api, addr string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost,
		api+"/api/v0/swarm/connect?arg="+url.QueryEscape(addr), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1000))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("swarm/connect %s: %s %s", addr, resp.Status, body)
	}
	return nil
}

func (n *Node) running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd != nil
}

// Wipe stops a Kubo node, deletes its datastore and blocks (keeping its
// identity and config) and starts it again, empty and reconnected to the
// others: a node that lost everything, or a DHT that forgot its records.
func (n *Node) Wipe() error {
	if n.kind != "kubo" {
		return fmt.Errorf("wipe: only Kubo nodes, not %s", n.kind)
	}
	n.Stop()
	repo := filepath.Join(n.dir, "repo")
	for _, d := range []string{"datastore", "blocks"} {
		if err := os.RemoveAll(filepath.Join(repo, d)); err != nil {
			return fmt.Errorf("wiping %s: %w", d, err)
		}
	}
	return n.start()
}
