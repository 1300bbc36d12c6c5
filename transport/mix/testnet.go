package mix

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/deaddrop/deaddrop/feed"
)

// NodeConfig is a node's private configuration file.
type NodeConfig struct {
	ID    string `json:"id"`
	Seed  string `json:"seed"` // hex; the epoch keys derive from it
	Layer int    `json:"layer"`
	Addr  string `json:"addr"`
}

// Keys returns the node's ID and seed.
func (c *NodeConfig) Keys() (id, seed [32]byte, err error) {
	if id, err = decodeID(c.ID); err != nil {
		return
	}
	s, err := hex.DecodeString(c.Seed)
	if err != nil || len(s) != 32 {
		return id, seed, fmt.Errorf("mix: node config: bad seed")
	}
	return id, [32]byte(s), nil
}

// LoadNodeConfig reads a node's configuration.
func LoadNodeConfig(path string) (*NodeConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c := new(NodeConfig)
	if err := json.Unmarshal(data, c); err != nil {
		return nil, fmt.Errorf("mix: node config %s: %v", path, err)
	}
	return c, nil
}

// Testnet describes a generated local network.
type Testnet struct {
	Dir      string
	Topology *Topology
	Nodes    []string // node config paths
}

// GenerateTestnet creates a network of perLayer mixes in each of the three
// layers and one gateway on free loopback ports, each with a private config
// under dir, and the topology signed by a fresh directory key, publishing
// every node's keys for epochs (epoch) rotating every epochDuration.
func GenerateTestnet(dir string, perLayer int, epochDuration, grace time.Duration, epochs int) (*Testnet, error) {
	_, dirKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	topo := &Topology{Epoch0: time.Now().Truncate(time.Second), EpochDuration: epochDuration, Grace: grace}
	net := &Testnet{Dir: dir, Topology: topo}
	add := func(name string, layer int) error {
		var id, seed [32]byte
		rand.Read(id[:])
		rand.Read(seed[:])
		addr, err := freeAddr()
		if err != nil {
			return err
		}
		info := NodeInfo{ID: hex.EncodeToString(id[:]), Layer: layer, Addr: addr, Keys: map[int64]string{}}
		for e := int64(0); e < int64(epochs); e++ {
			pub := publicOf(nodeKey(seed, e))
			info.Keys[e] = hex.EncodeToString(pub[:])
		}
		topo.Nodes = append(topo.Nodes, info)
		cfg := NodeConfig{ID: info.ID, Seed: hex.EncodeToString(seed[:]), Layer: layer, Addr: addr}
		path := filepath.Join(dir, name+".json")
		net.Nodes = append(net.Nodes, path)
		return writeJSON(path, cfg, 0o600)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	for l := 1; l <= Layers; l++ {
		for i := 0; i < perLayer; i++ {
			if err := add(fmt.Sprintf("mix-%d-%d", l, i), l); err != nil {
				return nil, err
			}
		}
	}
	if err := add("gateway", GatewayLayer); err != nil {
		return nil, err
	}
	topo.Sign(dirKey)
	return net, writeJSON(filepath.Join(dir, "topology.json"), topo, 0o644)
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func writeJSON(path string, v any, mode os.FileMode) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), mode)
}

// StartLocal generates a test network in dir and runs all its nodes in this
// process, the gateway in front of store: the in-process network for tests
// and benchmarks. Close the returned nodes when done.
func StartLocal(dir string, perLayer int, store feed.Store, p Params) (*Testnet, []*Node, error) {
	tn, err := GenerateTestnet(dir, perLayer, time.Hour, time.Minute, 4)
	if err != nil {
		return nil, nil, err
	}
	var nodes []*Node
	closeAll := func() {
		for _, n := range nodes {
			n.Close()
		}
	}
	for _, path := range tn.Nodes {
		cfg, err := LoadNodeConfig(path)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		id, seed, _ := cfg.Keys()
		var s feed.Store
		if cfg.Layer == GatewayLayer {
			s = store
		}
		n, err := NewNode(id, seed, tn.Topology, p, s)
		if err == nil {
			err = n.Listen("")
		}
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		nodes = append(nodes, n)
	}
	return tn, nodes, nil
}
