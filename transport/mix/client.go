package mix

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/transport/mix/sphinx"
)

var cryptoRand = rand.Reader

// Client is a transport.Transport that sends every feed operation through
// the mixnet. It connects to one first-layer mix (its entry), which also
// hands it the replies that come back through its SURBs.
type Client struct {
	topo   *Topology
	params Params
	id     [32]byte
	entry  NodeInfo
	conn   *conn

	queue   chan []byte
	mu      sync.Mutex
	pending map[[surbIDSize]byte]*pending
	closed  chan struct{}
	once    sync.Once
	wg      sync.WaitGroup

	// Sent counts real packets, Cover drop and loop cover packets, Loops
	// the loops that came back, Retries the requests sent again.
	Sent, Cover, Loops, Retries atomic.Int64
}

type pending struct {
	keys *sphinx.SURBKeys
	ch   chan []byte
}

// Dial connects to a first-layer mix of the topology.
func Dial(ctx context.Context, topo *Topology, params Params) (*Client, error) {
	c := &Client{topo: topo, params: params, queue: make(chan []byte, 1024),
		pending: map[[surbIDSize]byte]*pending{}, closed: make(chan struct{})}
	rand.Read(c.id[:])
	entries := topo.layer(1)
	var err error
	for _, i := range csprng.Perm(len(entries)) {
		var nc net.Conn
		d := net.Dialer{Timeout: 3 * time.Second}
		if nc, err = d.DialContext(ctx, "tcp", entries[i].Addr); err != nil {
			continue
		}
		c.entry, c.conn = entries[i], &conn{c: nc, w: bufio.NewWriterSize(nc, PacketSize+64)}
		if err = c.conn.write([]byte{connClient}, c.id[:]); err != nil {
			nc.Close()
			continue
		}
		break
	}
	if c.conn == nil {
		return nil, fmt.Errorf("%w: no first-layer mix answers: %v", feed.ErrUnavailable, err)
	}
	c.wg.Add(3)
	go c.read()
	go c.send()
	go c.loops()
	return c, nil
}

// Close stops the client.
func (c *Client) Close() error {
	c.once.Do(func() {
		close(c.closed)
		c.conn.c.Close()
	})
	c.wg.Wait()
	return nil
}

// Put stores chunk at slot through the mix.
func (c *Client) Put(ctx context.Context, slot feed.Slot, chunk []byte) error {
	if err := feed.CheckChunk(chunk); err != nil {
		return err
	}
	_, err := c.roundTrip(ctx, kindPut, slot, chunk)
	return err
}

// Get fetches the chunk at slot through the mix.
func (c *Client) Get(ctx context.Context, slot feed.Slot) ([]byte, error) {
	return c.roundTrip(ctx, kindGet, slot, nil)
}

// roundTrip sends a request with a fresh SURB in the client's next send
// slot and waits for the reply; a lost packet (a node down, a drop) is sent
// again on fresh routes avoiding the nodes of the failed attempt.
func (c *Client) roundTrip(ctx context.Context, kind byte, slot feed.Slot, chunk []byte) ([]byte, error) {
	avoid := map[string]bool{}
	for attempt := 0; attempt <= c.params.Retries; attempt++ {
		if attempt > 0 {
			c.Retries.Add(1)
		}
		pkt, p, id, used, err := c.build(kind, slot, chunk, avoid)
		if err != nil {
			return nil, err
		}
		select {
		case c.queue <- pkt:
		case <-ctx.Done():
			c.forget(id)
			return nil, ctx.Err()
		}
		select {
		case msg := <-p.ch:
			return c.result(msg)
		case <-time.After(c.params.ReplyTimeout):
			c.forget(id)
			for _, n := range used {
				avoid[n] = true
			}
		case <-ctx.Done():
			c.forget(id)
			return nil, ctx.Err()
		case <-c.closed:
			return nil, feed.ErrClosed
		}
	}
	return nil, fmt.Errorf("%w: no reply through the mix after %d attempts", feed.ErrUnavailable, c.params.Retries+1)
}

func (c *Client) result(msg []byte) ([]byte, error) {
	status, data, err := parseReply(msg)
	switch {
	case err != nil:
		return nil, err
	case status == statusOK && len(data) == 0:
		return nil, nil
	case status == statusOK:
		return data, nil
	case status == statusNotFound:
		return nil, feed.ErrNotFound
	case status == statusSlotUsed:
		return nil, feed.ErrSlotUsed
	case status == statusCorrupt:
		return nil, fmt.Errorf("%w: gateway: %s", feed.ErrCorrupt, data)
	}
	return nil, fmt.Errorf("%w: gateway: %s", feed.ErrUnavailable, data)
}

func (c *Client) forget(id [surbIDSize]byte) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

// build makes the request packet: forward through the entry, a random
// second- and third-layer mix and a gateway; reply through a random third-
// and second-layer mix back to the entry.
func (c *Client) build(kind byte, slot feed.Slot, chunk []byte, avoid map[string]bool) ([]byte, *pending, [surbIDSize]byte, []string, error) {
	var id [surbIDSize]byte
	epoch := c.topo.Epoch(time.Now())
	entry, err := c.hop(c.entry, epoch, true)
	if err != nil {
		return nil, nil, id, nil, err
	}
	var fwd, back []sphinx.Hop
	var used []string
	pick := func(layer int) (sphinx.Hop, error) {
		n := pickNode(c.topo.layer(layer), avoid)
		used = append(used, n.ID)
		return c.hop(n, epoch, layer != GatewayLayer)
	}
	fwd = append(fwd, entry)
	for _, l := range []int{2, 3, GatewayLayer} {
		h, err := pick(l)
		if err != nil {
			return nil, nil, id, nil, err
		}
		fwd = append(fwd, h)
	}
	fwd[3].Commands = []sphinx.Command{sphinx.Recipient{ID: fwd[3].ID}}
	for _, l := range []int{3, 2} {
		h, err := pick(l)
		if err != nil {
			return nil, nil, id, nil, err
		}
		back = append(back, h)
	}
	rand.Read(id[:])
	last := entry
	last.Commands = []sphinx.Command{sphinx.NodeDelay{Millis: uint32(exp(c.params.MeanHopDelay) / time.Millisecond)},
		sphinx.Recipient{ID: c.id}, sphinx.SURBReply{ID: id}}
	surb, keys, err := sphinx.NewSURB(append(back, last), cryptoRand)
	if err != nil {
		return nil, nil, id, nil, err
	}
	req := &request{kind: kind, slot: slot, chunk: chunk, surb: surb}
	pkt, err := sphinx.NewPacket(fwd, req.marshal(), cryptoRand)
	if err != nil {
		return nil, nil, id, nil, err
	}
	p := &pending{keys: keys, ch: make(chan []byte, 1)}
	c.mu.Lock()
	c.pending[id] = p
	c.mu.Unlock()
	return pkt, p, id, used, nil
}

func pickNode(nodes []NodeInfo, avoid map[string]bool) NodeInfo {
	var ok []NodeInfo
	for _, n := range nodes {
		if !avoid[n.ID] {
			ok = append(ok, n)
		}
	}
	if len(ok) == 0 {
		ok = nodes // every node failed once: try them all again
	}
	return ok[csprng.IntN(len(ok))]
}

// hop makes a path hop for a node, with an exponential delay for a mix.
func (c *Client) hop(n NodeInfo, epoch int64, delay bool) (sphinx.Hop, error) {
	return makeHop(n, epoch, delay, c.params.MeanHopDelay)
}

func makeHop(n NodeInfo, epoch int64, delay bool, mean time.Duration) (sphinx.Hop, error) {
	id, err := decodeID(n.ID)
	if err != nil {
		return sphinx.Hop{}, err
	}
	key, err := n.key(epoch)
	if err != nil {
		return sphinx.Hop{}, err
	}
	h := sphinx.Hop{ID: id, PublicKey: key}
	if delay {
		h.Commands = []sphinx.Command{sphinx.NodeDelay{Millis: uint32(exp(mean) / time.Millisecond)}}
	}
	return h, nil
}

func hopIn(t *Topology, layer int, epoch int64, mean time.Duration) (sphinx.Hop, error) {
	return makeHop(pickNode(t.layer(layer), nil), epoch, true, mean)
}

func nodeID(h sphinx.Hop) [32]byte { return h.ID }

// send emits one packet per Poisson send slot: the next queued request, or
// drop cover when none waits. The rate never rises with demand.
func (c *Client) send() {
	defer c.wg.Done()
	for {
		select {
		case <-c.closed:
			return
		case <-time.After(exp(c.params.SendInterval)):
		}
		var pkt []byte
		select {
		case pkt = <-c.queue:
			c.Sent.Add(1)
		default:
			pkt = c.cover(kindDrop)
			c.Cover.Add(1)
		}
		if pkt != nil && c.conn.write(pkt) != nil {
			return
		}
	}
}

// loops sends loop cover: through every layer and back to ourselves.
func (c *Client) loops() {
	defer c.wg.Done()
	if c.params.LoopInterval <= 0 {
		return
	}
	for {
		select {
		case <-c.closed:
			return
		case <-time.After(exp(c.params.LoopInterval)):
		}
		if pkt := c.loopPacket(); pkt != nil {
			c.Cover.Add(1)
			if c.conn.write(pkt) != nil {
				return
			}
		}
	}
}

// cover builds a drop-cover packet to a gateway.
func (c *Client) cover(kind byte) []byte {
	epoch := c.topo.Epoch(time.Now())
	var path []sphinx.Hop
	for _, l := range []int{1, 2, 3, GatewayLayer} {
		n := pickNode(c.topo.layer(l), nil)
		if l == 1 {
			n = c.entry
		}
		h, err := c.hop(n, epoch, l != GatewayLayer)
		if err != nil {
			return nil
		}
		path = append(path, h)
	}
	path[3].Commands = []sphinx.Command{sphinx.Recipient{ID: path[3].ID}}
	req := &request{kind: kind, surb: make([]byte, sphinx.SURBSize)}
	pkt, _ := sphinx.NewPacket(path, req.marshal(), cryptoRand)
	return pkt
}

func (c *Client) loopPacket() []byte {
	epoch := c.topo.Epoch(time.Now())
	var path []sphinx.Hop
	for _, l := range []int{1, 2, 3} {
		n := pickNode(c.topo.layer(l), nil)
		if l == 1 {
			n = c.entry
		}
		h, err := c.hop(n, epoch, true)
		if err != nil {
			return nil
		}
		path = append(path, h)
	}
	back, _ := c.hop(c.entry, epoch, true)
	back.Commands = append(back.Commands, sphinx.Recipient{ID: c.id}, sphinx.SURBReply{})
	pkt, _ := sphinx.NewPacket(append(path, back), make([]byte, MessageSize), cryptoRand)
	return pkt
}

// read dispatches what the entry delivers: replies to their SURBs, loops to
// the counter.
func (c *Client) read() {
	defer c.wg.Done()
	r := bufio.NewReaderSize(c.conn.c, deliverySize)
	for {
		b, err := readFull(r, deliverySize)
		if err != nil {
			c.once.Do(func() { close(c.closed); c.conn.c.Close() })
			return
		}
		id := [surbIDSize]byte(b[:surbIDSize])
		c.mu.Lock()
		p := c.pending[id]
		delete(c.pending, id)
		c.mu.Unlock()
		if p == nil {
			c.Loops.Add(1) // a loop (zero ID) or a reply we gave up on
			continue
		}
		msg, err := p.keys.Open(b[surbIDSize:])
		if err != nil {
			continue // tampered: the request times out and is sent again
		}
		p.ch <- msg
	}
}
