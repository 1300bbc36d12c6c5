package mix

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/deaddrop/deaddrop/feed"
)

// NodeConfig is a node's private configuration file. It holds the chain key
// of the oldest epoch the node still serves, replaced as epochs pass (see
// epochkeys.go), so that the file never opens an earlier epoch's packets.
type NodeConfig struct {
	ID    string `json:"id"`
	Key   string `json:"key"`   // hex: the epoch chain key
	Epoch int64  `json:"epoch"` // the epoch Key is for
	Layer int    `json:"layer"`
	Addr  string `json:"addr"`
	// Seed is what configs of older versions held instead of Key: every
	// epoch's key derived from it. Refused: regenerate the network.
	Seed string `json:"seed,omitempty"`
}

// Keys returns the node's ID and oldest epoch key.
func (c *NodeConfig) Keys() (id [32]byte, key EpochKey, err error) {
	if c.Seed != "" {
		return id, key, errors.New("mix: node config holds a long-term seed (an older version's, which opens every epoch's packets): generate the network again")
	}
	if id, err = decodeID(c.ID); err != nil {
		return
	}
	k, err := hex.DecodeString(c.Key)
	if err != nil || len(k) != 32 {
		return id, key, errors.New("mix: node config: bad key")
	}
	return id, EpochKey{c.Epoch, [32]byte(k)}, nil
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

// SaveKey replaces the key in the config file at path by k: a new file
// written and synced beside it, then renamed over it, so that the old key
// is gone from the directory once this returns and a crash leaves one of
// the two whole. (A file system that keeps old blocks, or a backup, may
// still hold it: keep node configs off those.)
func (c *NodeConfig) SaveKey(path string, k EpochKey) error {
	c.Key, c.Epoch = hex.EncodeToString(k.Key[:]), k.Epoch
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
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
		var id [32]byte
		rand.Read(id[:])
		first := EpochKey{Epoch: 0}
		rand.Read(first.Key[:])
		addr, err := freeAddr()
		if err != nil {
			return err
		}
		info := NodeInfo{ID: hex.EncodeToString(id[:]), Layer: layer, Addr: addr, Keys: map[int64]string{}}
		for k := first; k.Epoch < int64(epochs); k = k.next() {
			pub := publicOf(k.private())
			info.Keys[k.Epoch] = hex.EncodeToString(pub[:])
		}
		topo.Nodes = append(topo.Nodes, info)
		cfg := NodeConfig{ID: info.ID, Key: hex.EncodeToString(first.Key[:]), Layer: layer, Addr: addr}
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
		id, key, _ := cfg.Keys()
		var s feed.Store
		if cfg.Layer == GatewayLayer {
			s = store
		}
		n, err := NewNode(id, key, tn.Topology, p, s)
		if err == nil {
			n.Persist(func(k EpochKey) error { return cfg.SaveKey(path, k) })
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
