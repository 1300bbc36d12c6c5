// Package mix is deaddrop's mix transport, after Loopix (Piotrowska et al.,
// 2017): clients send fixed-size Sphinx packets through three mix layers to a
// gateway that executes the feed operation (put or get a slot) against its
// store and answers through the client's SURB. Each hop delays each packet
// by an exponentially distributed time the sender chose; clients send at
// Poisson-distributed times, filling empty slots with drop cover, and add
// loop cover; mixes add their own loops. The storage node sees only the
// gateway; the gateway sees requests but not who sent them.
package mix

import (
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"crypto/ecdh"
)

// Layers: mixes are in layers 1–3; the gateway is layer 0.
const (
	GatewayLayer = 0
	Layers       = 3
)

// NodeInfo describes one node in the topology.
type NodeInfo struct {
	ID    string `json:"id"` // hex, 32 bytes
	Layer int    `json:"layer"`
	Addr  string `json:"addr"` // host:port
	// Keys maps an epoch number to the node's X25519 public key (hex) for it.
	Keys map[int64]string `json:"keys"`
}

// Topology is the signed directory nodes and clients read.
type Topology struct {
	Epoch0        time.Time     `json:"epoch0"`         // start of epoch 0
	EpochDuration time.Duration `json:"epoch_duration"` // key rotation period
	Grace         time.Duration `json:"grace"`          // previous key still accepted
	Nodes         []NodeInfo    `json:"nodes"`
	DirectoryKey  string        `json:"directory_key"` // Ed25519 public key, hex
	Signature     string        `json:"signature"`     // over the canonical JSON without it
}

// Epoch returns the epoch at time t.
func (t *Topology) Epoch(at time.Time) int64 {
	return int64(at.Sub(t.Epoch0) / t.EpochDuration)
}

func (t *Topology) signedBytes() []byte {
	c := *t
	c.Signature = ""
	b, _ := json.Marshal(c)
	return b
}

// Sign signs the topology with the directory key.
func (t *Topology) Sign(key ed25519.PrivateKey) {
	t.DirectoryKey = hex.EncodeToString(key.Public().(ed25519.PublicKey))
	t.Signature = hex.EncodeToString(ed25519.Sign(key, t.signedBytes()))
}

// ErrTopology reports a topology that cannot be used.
var ErrTopology = errors.New("mix: bad topology")

// ErrUnpinned reports a topology checked against no pinned directory key.
// The signature alone proves nothing: whoever wrote the file signed it with
// the key in the same file, and a topology of their nodes routes every
// packet through them.
var ErrUnpinned = errors.New("no directory key is pinned: give the key the topology's publisher announced " +
	"('deaddrop mix testnet' prints it), or accept an unpinned topology only for tests")

// LoadTopology reads a topology file and verifies it against the pinned
// directory key trusted (hex).
func LoadTopology(path, trusted string) (*Topology, error) {
	t, err := readTopology(path)
	if err != nil {
		return nil, err
	}
	return t, t.Verify(trusted)
}

// LoadTopologyUnpinned reads a topology file and checks only that it is
// signed by the key it names: for tests and local testnets, never for a
// network others run.
func LoadTopologyUnpinned(path string) (*Topology, error) {
	t, err := readTopology(path)
	if err != nil {
		return nil, err
	}
	return t, t.verify("")
}

func readTopology(path string) (*Topology, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	t := new(Topology)
	if err := json.Unmarshal(data, t); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrTopology, path, err)
	}
	return t, nil
}

// Verify checks the signature, that it is by the pinned directory key
// trusted (hex), and the structure.
func (t *Topology) Verify(trusted string) error {
	trusted = strings.ToLower(strings.TrimSpace(trusted))
	if trusted == "" {
		return fmt.Errorf("%w: %w", ErrTopology, ErrUnpinned)
	}
	return t.verify(trusted)
}

// VerifyUnpinned checks the signature against the key the topology names,
// and the structure: see LoadTopologyUnpinned.
func (t *Topology) VerifyUnpinned() error { return t.verify("") }

func (t *Topology) verify(trusted string) error {
	pub, err := hex.DecodeString(t.DirectoryKey)
	sig, err2 := hex.DecodeString(t.Signature)
	if err != nil || err2 != nil || len(pub) != ed25519.PublicKeySize ||
		!ed25519.Verify(pub, t.signedBytes(), sig) {
		return fmt.Errorf("%w: signature does not verify", ErrTopology)
	}
	if trusted != "" && trusted != t.DirectoryKey {
		return fmt.Errorf("%w: signed by %s, not the trusted directory key", ErrTopology, t.DirectoryKey)
	}
	if t.EpochDuration <= 0 {
		return fmt.Errorf("%w: no epoch duration", ErrTopology)
	}
	for l := GatewayLayer; l <= Layers; l++ {
		if len(t.layer(l)) == 0 {
			return fmt.Errorf("%w: no node in layer %d", ErrTopology, l)
		}
	}
	return nil
}

func (t *Topology) layer(l int) []NodeInfo {
	var out []NodeInfo
	for _, n := range t.Nodes {
		if n.Layer == l {
			out = append(out, n)
		}
	}
	return out
}

func (t *Topology) node(id [32]byte) (NodeInfo, bool) {
	h := hex.EncodeToString(id[:])
	for _, n := range t.Nodes {
		if n.ID == h {
			return n, true
		}
	}
	return NodeInfo{}, false
}

func publicOf(priv [32]byte) [32]byte {
	k, _ := ecdh.X25519().NewPrivateKey(priv[:])
	return [32]byte(k.PublicKey().Bytes())
}

func decodeID(s string) ([32]byte, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		return [32]byte{}, fmt.Errorf("%w: node id %q", ErrTopology, s)
	}
	return [32]byte(b), nil
}

func (n NodeInfo) key(epoch int64) ([32]byte, error) {
	b, err := hex.DecodeString(n.Keys[epoch])
	if err != nil || len(b) != 32 {
		return [32]byte{}, fmt.Errorf("%w: node %s has no key for epoch %d", ErrTopology, n.ID[:8], epoch)
	}
	return [32]byte(b), nil
}
