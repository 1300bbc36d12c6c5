package mix

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/transport/mix/sphinx"
)

// Stats counts what a node did; bad packets are dropped and counted, never
// fatal.
type Stats struct {
	Received, Forwarded, Delivered, Requests, Loops, Drops atomic.Int64
	BadMAC, Malformed, Replays, UnknownHop, Tagged         atomic.Int64
}

func (s *Stats) String() string {
	return fmt.Sprintf("received %d forwarded %d delivered %d requests %d loops %d drops %d | bad MAC/epoch %d malformed %d replays %d unknown hop %d tagged %d",
		s.Received.Load(), s.Forwarded.Load(), s.Delivered.Load(), s.Requests.Load(), s.Loops.Load(), s.Drops.Load(),
		s.BadMAC.Load(), s.Malformed.Load(), s.Replays.Load(), s.UnknownHop.Load(), s.Tagged.Load())
}

// Node is a mix (layers 1–3) or the gateway (layer 0, with a store).
type Node struct {
	ID     [32]byte
	Layer  int
	Stats  Stats
	keys   *keyRing
	topo   *Topology
	params Params
	store  feed.Store // the gateway's
	logf   func(string, ...any)

	ln      net.Listener
	mu      sync.Mutex
	clients map[[32]byte]*conn
	peers   map[[32]byte]*conn
	replay  map[int64]map[[32]byte]struct{} // per epoch key
	closed  chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
}

// conn is a serialised writer on a TCP connection.
type conn struct {
	mu sync.Mutex
	c  net.Conn
	w  *bufio.Writer
}

func (c *conn) write(b ...[]byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	for _, p := range b {
		if _, err := c.w.Write(p); err != nil {
			return err
		}
	}
	return c.w.Flush()
}

// NewNode prepares a node whose oldest epoch key is key; store is required
// for the gateway. Set Persist before Listen to keep the node's config file
// in step as its keys advance.
func NewNode(id [32]byte, key EpochKey, topo *Topology, params Params, store feed.Store) (*Node, error) {
	info, ok := topo.node(id)
	if !ok {
		return nil, fmt.Errorf("%w: node %x is not in the topology", ErrTopology, id[:4])
	}
	if info.Layer == GatewayLayer && store == nil {
		return nil, errors.New("mix: a gateway needs a store")
	}
	if pub, err := info.key(key.Epoch); err == nil && pub != publicOf(key.private()) {
		return nil, fmt.Errorf("%w: node %x's key for epoch %d is not the one the topology publishes", ErrTopology, id[:4], key.Epoch)
	}
	return &Node{ID: id, Layer: info.Layer, keys: &keyRing{oldest: key}, topo: topo, params: params, store: store,
		logf: log.Printf, clients: map[[32]byte]*conn{}, peers: map[[32]byte]*conn{},
		replay: map[int64]map[[32]byte]struct{}{}, closed: make(chan struct{})}, nil
}

// Persist is called with the node's oldest epoch key each time older ones
// are erased: it should replace the key on disk (NodeConfig.SaveKey).
func (n *Node) Persist(save func(EpochKey) error) { n.keys.persist = save }

// rotate erases the keys of epochs no longer served; Listen runs it a few
// times an epoch, and unwrap before each packet.
func (n *Node) rotate(now time.Time) {
	if err := n.keys.advance(n.topo, now); err != nil {
		n.logf("mix node %x: saving the epoch key: %v (an older key stays on disk)", n.ID[:4], err)
	}
}

func (n *Node) rotations() {
	defer n.wg.Done()
	every := max(min(n.topo.Grace, n.topo.EpochDuration)/4, 100*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-n.closed:
			return
		case now := <-t.C:
			n.rotate(now)
		}
	}
}

// Listen starts serving on the node's topology address (or addr if set).
func (n *Node) Listen(addr string) error {
	if addr == "" {
		info, _ := n.topo.node(n.ID)
		addr = info.Addr
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	n.ln = ln
	n.rotate(time.Now())
	n.wg.Add(2)
	go n.accept()
	go n.rotations()
	if n.Layer != GatewayLayer && n.params.MixLoopInterval > 0 {
		n.wg.Add(1)
		go n.loops()
	}
	return nil
}

// Close stops the node.
func (n *Node) Close() error {
	var err error
	n.once.Do(func() { err = n.shutdown() })
	return err
}

func (n *Node) shutdown() error {
	close(n.closed)
	err := n.ln.Close()
	n.mu.Lock()
	for _, c := range n.clients {
		c.c.Close()
	}
	for _, c := range n.peers {
		c.c.Close()
	}
	n.mu.Unlock()
	n.wg.Wait()
	return err
}

func (n *Node) accept() {
	defer n.wg.Done()
	for {
		c, err := n.ln.Accept()
		if err != nil {
			return
		}
		go n.serve(c)
	}
}

// serve reads packets from a node or a client connection.
func (n *Node) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReaderSize(c, PacketSize)
	kind, err := r.ReadByte()
	if err != nil {
		return
	}
	if kind == connClient {
		id, err := readFull(r, 32)
		if err != nil {
			return
		}
		cc := &conn{c: c, w: bufio.NewWriter(c)}
		n.mu.Lock()
		n.clients[[32]byte(id)] = cc
		n.mu.Unlock()
		defer func() {
			n.mu.Lock()
			if n.clients[[32]byte(id)] == cc {
				delete(n.clients, [32]byte(id))
			}
			n.mu.Unlock()
		}()
	} else if kind != connNode {
		return
	}
	for {
		pkt, err := readFull(r, PacketSize)
		if err != nil {
			return
		}
		n.Stats.Received.Add(1)
		n.process(pkt)
	}
}

// process unwraps a packet with the current epoch's key, or the previous
// one during the grace period, and acts on its commands.
func (n *Node) process(pkt []byte) {
	u, epoch, err := n.unwrap(pkt)
	if err != nil {
		return
	}
	if !n.fresh(epoch, u.ReplayTag) {
		n.Stats.Replays.Add(1)
		return
	}
	var delay time.Duration
	var rcpt *sphinx.Recipient
	var surbID [surbIDSize]byte
	var next *sphinx.NextHop
	for _, c := range u.Commands {
		switch c := c.(type) {
		case sphinx.NodeDelay:
			delay = time.Duration(c.Millis) * time.Millisecond
		case sphinx.Recipient:
			rcpt = &c
		case sphinx.SURBReply:
			surbID = c.ID
		case sphinx.NextHop:
			next = &c
		}
	}
	switch {
	case next != nil:
		time.AfterFunc(delay, func() { n.forward(next.ID, u.Next) })
	case rcpt != nil:
		time.AfterFunc(delay, func() { n.arrive(rcpt.ID, surbID, u.Payload) })
	default:
		n.Stats.Malformed.Add(1)
	}
}

func (n *Node) unwrap(pkt []byte) (*sphinx.Unwrapped, int64, error) {
	now := time.Now()
	n.rotate(now)
	epoch := n.topo.Epoch(now)
	u, err := n.unwrapWith(epoch, pkt)
	if errors.Is(err, sphinx.ErrMAC) && inGrace(n.topo, now) {
		epoch--
		u, err = n.unwrapWith(epoch, pkt)
	}
	switch {
	case errors.Is(err, sphinx.ErrMAC):
		n.Stats.BadMAC.Add(1)
	case err != nil:
		n.Stats.Malformed.Add(1)
	}
	return u, epoch, err
}

func (n *Node) unwrapWith(epoch int64, pkt []byte) (*sphinx.Unwrapped, error) {
	key, ok := n.keys.private(epoch)
	if !ok {
		return nil, fmt.Errorf("%w: the key of epoch %d is erased", sphinx.ErrMAC, epoch)
	}
	defer clear(key[:])
	return sphinx.Unwrap(key, pkt)
}

// fresh records a replay tag under the key's epoch (after the MAC check)
// and reports whether it is new. Caches of expired keys are dropped.
func (n *Node) fresh(epoch int64, tag [32]byte) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for e := range n.replay {
		if e < epoch-1 {
			delete(n.replay, e)
		}
	}
	m := n.replay[epoch]
	if m == nil {
		m = map[[32]byte]struct{}{}
		n.replay[epoch] = m
	}
	if _, seen := m[tag]; seen {
		return false
	}
	m[tag] = struct{}{}
	return true
}

// forward sends a packet to the node with the given ID.
func (n *Node) forward(id [32]byte, pkt []byte) {
	c, err := n.peer(id)
	if err == nil {
		err = c.write(pkt)
	}
	if err != nil {
		n.dropPeer(id)
		n.Stats.UnknownHop.Add(1)
		return
	}
	n.Stats.Forwarded.Add(1)
}

func (n *Node) peer(id [32]byte) (*conn, error) {
	n.mu.Lock()
	c := n.peers[id]
	n.mu.Unlock()
	if c != nil {
		return c, nil
	}
	info, ok := n.topo.node(id)
	if !ok {
		return nil, fmt.Errorf("unknown node %x", id[:4])
	}
	nc, err := net.DialTimeout("tcp", info.Addr, 3*time.Second)
	if err != nil {
		return nil, err
	}
	c = &conn{c: nc, w: bufio.NewWriterSize(nc, PacketSize+1)}
	if err := c.write([]byte{connNode}); err != nil {
		nc.Close()
		return nil, err
	}
	n.mu.Lock()
	n.peers[id] = c
	n.mu.Unlock()
	return c, nil
}

func (n *Node) dropPeer(id [32]byte) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if c := n.peers[id]; c != nil {
		c.c.Close()
		delete(n.peers, id)
	}
}

// arrive handles a packet whose route ends here.
func (n *Node) arrive(rcpt [32]byte, surbID [surbIDSize]byte, payload []byte) {
	if rcpt == n.ID {
		if n.Layer == GatewayLayer {
			n.request(payload)
			return
		}
		n.Stats.Loops.Add(1) // our own loop came back
		return
	}
	n.mu.Lock()
	c := n.clients[rcpt]
	n.mu.Unlock()
	if c == nil {
		n.Stats.UnknownHop.Add(1)
		return
	}
	if err := c.write(surbID[:], payload); err != nil {
		return
	}
	n.Stats.Delivered.Add(1)
}

// request executes a feed operation at the gateway and replies through the
// request's SURB.
func (n *Node) request(payload []byte) {
	msg, err := sphinx.OpenPayload(payload)
	if err != nil {
		n.Stats.Tagged.Add(1)
		return
	}
	req, err := parseRequest(msg)
	if err != nil {
		n.Stats.Malformed.Add(1)
		return
	}
	if req.kind == kindDrop {
		n.Stats.Drops.Add(1)
		return
	}
	n.Stats.Requests.Add(1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var reply []byte
	switch req.kind {
	case kindPut:
		reply = replyFor(nil, n.store.Put(ctx, req.slot, req.chunk))
	case kindGet:
		chunk, err := n.store.Get(ctx, req.slot)
		reply = replyFor(chunk, err)
	}
	pkt, first, err := sphinx.NewReply(req.surb, reply)
	if err != nil {
		n.Stats.Malformed.Add(1)
		return
	}
	n.forward(first, pkt)
}

func replyFor(chunk []byte, err error) []byte {
	switch {
	case err == nil:
		return marshalReply(statusOK, chunk)
	case errors.Is(err, feed.ErrNotFound):
		return marshalReply(statusNotFound, nil)
	case errors.Is(err, feed.ErrSlotUsed):
		return marshalReply(statusSlotUsed, nil)
	case errors.Is(err, feed.ErrCorrupt):
		return marshalReply(statusCorrupt, []byte(err.Error()))
	}
	msg := err.Error()
	if len(msg) > 1000 {
		msg = msg[:1000]
	}
	return marshalReply(statusError, []byte(msg))
}

// loops sends the mix's own loop cover traffic: packets through one node of
// every other layer and the gateway's layer skipped, back to itself.
func (n *Node) loops() {
	defer n.wg.Done()
	for {
		select {
		case <-n.closed:
			return
		case <-time.After(exp(n.params.MixLoopInterval)):
		}
		path, err := n.loopPath()
		if err != nil {
			continue
		}
		pkt, err := sphinx.NewPacket(path, make([]byte, MessageSize), cryptoRand)
		if err != nil {
			continue
		}
		n.forward(nodeID(path[0]), pkt)
	}
}

func (n *Node) loopPath() ([]sphinx.Hop, error) {
	epoch := n.topo.Epoch(time.Now())
	var path []sphinx.Hop
	for l := 1; l <= Layers; l++ {
		if l == n.Layer {
			continue
		}
		h, err := hopIn(n.topo, l, epoch, n.params.MeanHopDelay)
		if err != nil {
			return nil, err
		}
		path = append(path, h)
	}
	self, _ := n.topo.node(n.ID)
	key, err := self.key(epoch)
	if err != nil {
		return nil, err
	}
	return append(path, sphinx.Hop{ID: n.ID, PublicKey: key, Commands: []sphinx.Command{sphinx.Recipient{ID: n.ID}}}), nil
}

var _ io.Closer = (*Node)(nil)
