// Package swarm is the feed.Store backend on Swarm, through a Bee node's HTTP
// API. Each slot becomes a single-owner chunk whose id and secp256k1 owner
// key are derived from the slot secret, so chunks are unlinkable and only the
// two parties of a conversation can write or find them. Reads are one
// GET /chunks/{address}; the chunk is verified (id, owner signature, span,
// size) before its payload is returned.
//
// Uploads go through POST /chunks with a tag, which both `bee dev` (v2.7.0)
// and production nodes accept for single-owner chunks whose payload is at
// least 4000 bytes; every deaddrop chunk is 4096 bytes.
package swarm

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/deaddrop/deaddrop/feed"
)

// ErrPostage reports a problem with the postage batch that pays for uploads:
// none, not usable yet, or exhausted.
var ErrPostage = errors.New("swarm: postage batch problem")

// Options configures a Store. Zero values pick the defaults.
type Options struct {
	// BatchID is the postage batch to stamp uploads with. Empty: reuse a
	// usable batch the node has, or buy one (Amount, Depth).
	BatchID string
	// Amount (per chunk, in PLUR) and Depth of a batch bought by Open.
	// Depth defaults to 20. Amount defaults to what keeps the batch alive
	// for TTL at the chain's current price (GET /chainstate); on a node
	// that reports no price (bee dev) it is 100000000.
	Amount string
	Depth  int
	// TTL is how long a batch bought by Open should live (default 30
	// days), and BlockTime the chain's block time (default 5 s, Gnosis
	// Chain's) that turns it into blocks.
	TTL       time.Duration
	BlockTime time.Duration
	// Timeout bounds each HTTP request (default 30 s).
	Timeout time.Duration
}

// Store talks to one Bee node.
type Store struct {
	api    *url.URL
	client *http.Client
	opts   Options

	mu    sync.Mutex
	batch string
	tag   string
}

// Open connects to the Bee node at apiURL and settles the postage batch.
func Open(ctx context.Context, apiURL string, opts Options) (*Store, error) {
	u, err := url.Parse(apiURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("swarm: %q is not a Bee API URL (want http://host:port)", apiURL)
	}
	if opts.TTL == 0 {
		opts.TTL = 30 * 24 * time.Hour
	}
	if opts.BlockTime == 0 {
		opts.BlockTime = 5 * time.Second
	}
	if opts.Depth == 0 {
		opts.Depth = 20
	}
	if opts.Timeout == 0 {
		opts.Timeout = 30 * time.Second
	}
	s := &Store{api: u, opts: opts, client: &http.Client{
		Timeout: opts.Timeout,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 128, // catch-up issues a window of parallel GETs
			IdleConnTimeout:     90 * time.Second,
		},
	}}
	var health struct{ Status string }
	if err := s.getJSON(ctx, "/health", &health); err != nil {
		return nil, fmt.Errorf("swarm: Bee node at %s does not answer: %w", apiURL, err)
	}
	if err := s.settleBatch(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Batch returns the postage batch ID in use.
func (s *Store) Batch() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.batch
}

// Put implements feed.Store.
func (s *Store) Put(ctx context.Context, slot feed.Slot, chunk []byte) error {
	if err := feed.CheckChunk(chunk); err != nil {
		return err
	}
	if err := s.putSOC(ctx, forSlot(slot).buildSOC(chunk)); err != nil {
		return fmt.Errorf("swarm: put %v: %w", slot, err)
	}
	return nil
}

// putSOC uploads SOC bytes stamped with this store's batch.
func (s *Store) putSOC(ctx context.Context, soc []byte) error {
	err := s.upload(ctx, soc)
	if errors.Is(err, ErrPostage) || errors.Is(err, errNoTag) {
		// A dev node restarts empty: its batches and tags are gone. Settle
		// again and retry once.
		if err = s.settleBatch(ctx); err == nil {
			err = s.upload(ctx, soc)
		}
	}
	return err
}

var errNoTag = errors.New("upload tag missing")

// RawPutChunk uploads SOC bytes as they are; for benchmarks.
func (s *Store) RawPutChunk(ctx context.Context, soc []byte) error { return s.upload(ctx, soc) }

// BuildSOC returns the SOC bytes and address Put would upload for a slot's
// chunk; for benchmarks and tests.
func BuildSOC(slot feed.Slot, chunk []byte) (soc []byte, address [32]byte) {
	sc := forSlot(slot)
	return sc.buildSOC(chunk), sc.address
}

// Identity returns what a Bee node learns of a slot: the chunk's address,
// its id and its owner's address.
func Identity(slot feed.Slot) (address, id [32]byte, owner [20]byte) {
	sc := forSlot(slot)
	return sc.address, sc.id, sc.owner.addr
}

// FeedUpdateSOC returns the single-owner chunk of update index of a Bee
// sequence feed (id = Keccak-256(topic ‖ index as 8 bytes big-endian)) owned
// by the key with the given seed, and the owner's address. Benchmarks use it
// to build the Bee /feeds baseline.
func FeedUpdateSOC(ownerSeed, topic [32]byte, index uint64, payload []byte) (soc []byte, owner [20]byte) {
	var ib [8]byte
	binary.BigEndian.PutUint64(ib[:], index)
	sc := slotChunk{id: keccak256(topic[:], ib[:]), owner: ownerFromSeed(ownerSeed)}
	sc.address = socAddress(sc.id, sc.owner.addr)
	return sc.buildSOC(payload), sc.owner.addr
}

// FeedLookup asks the node for the latest update of a feed
// (GET /feeds/{owner}/{topic}) and returns its index.
func (s *Store) FeedLookup(ctx context.Context, owner [20]byte, topic [32]byte) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		s.endpoint("/feeds/"+hex.EncodeToString(owner[:])+"/"+hex.EncodeToString(topic[:])), nil)
	if err != nil {
		return "", err
	}
	resp, err := s.do(req)
	if err != nil {
		return "", err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("feed lookup: Bee answered %d %s", resp.StatusCode, message(resp))
	}
	return resp.Header.Get("Swarm-Feed-Index"), nil
}

func (s *Store) upload(ctx context.Context, soc []byte) error {
	tag, err := s.uploadTag(ctx)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint("/chunks"), bytes.NewReader(soc))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Swarm-Postage-Batch-Id", s.Batch())
	req.Header.Set("Swarm-Tag", tag)
	resp, err := s.do(req)
	if err != nil {
		return err
	}
	defer drain(resp)
	switch {
	case resp.StatusCode == http.StatusCreated || resp.StatusCode == http.StatusOK:
		return nil
	case resp.StatusCode == http.StatusPaymentRequired:
		return fmt.Errorf("%w: %s", ErrPostage, message(resp))
	}
	msg := message(resp)
	switch {
	case strings.Contains(msg, "batch") || strings.Contains(msg, "stamp"):
		return fmt.Errorf("%w: %s", ErrPostage, msg)
	case strings.Contains(msg, "tag"):
		s.mu.Lock()
		s.tag = ""
		s.mu.Unlock()
		return fmt.Errorf("%w: %s", errNoTag, msg)
	case resp.StatusCode >= 500 && !strings.Contains(msg, "create chunk"):
		return fmt.Errorf("%w: Bee answered %d %s", feed.ErrUnavailable, resp.StatusCode, msg)
	}
	return fmt.Errorf("Bee refused the chunk: %d %s", resp.StatusCode, msg)
}

func (s *Store) uploadTag(ctx context.Context) (string, error) {
	s.mu.Lock()
	tag := s.tag
	s.mu.Unlock()
	if tag != "" {
		return tag, nil
	}
	var out struct {
		UID uint64 `json:"uid"`
	}
	if err := s.postJSON(ctx, "/tags", nil, &out); err != nil {
		return "", fmt.Errorf("create upload tag: %w", err)
	}
	tag = fmt.Sprint(out.UID)
	s.mu.Lock()
	s.tag = tag
	s.mu.Unlock()
	return tag, nil
}

// Get implements feed.Store.
func (s *Store) Get(ctx context.Context, slot feed.Slot) ([]byte, error) {
	sc := forSlot(slot)
	body, err := s.RawGetChunk(ctx, sc.address)
	if err != nil {
		return nil, fmt.Errorf("swarm: get %v: %w", slot, err)
	}
	payload, err := sc.parseSOC(body)
	if err != nil {
		return nil, fmt.Errorf("swarm: get %v: %w: %v", slot, feed.ErrCorrupt, err)
	}
	return payload, nil
}

// missingChunk is how a networked Bee (v2.7, v2.8) answers GET /chunks/{addr}
// for a chunk that neither it nor the peers it asked have: HTTP 500 with
// this message, where `bee dev` answers 404. Only this exact answer means
// "not found"; any other 500 is an outage.
const missingChunk = "read chunk failed"

// RawGetChunk fetches a chunk's bytes by address, unverified; Get uses it,
// and benchmarks use it as the baseline.
func (s *Store) RawGetChunk(ctx context.Context, address [32]byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.endpoint("/chunks/"+hex.EncodeToString(address[:])), nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.do(req)
	if err != nil {
		return nil, err
	}
	defer drain(resp)
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, feed.ErrNotFound
	case resp.StatusCode >= 500:
		msg := message(resp)
		if resp.StatusCode == http.StatusInternalServerError && msg == missingChunk {
			return nil, feed.ErrNotFound
		}
		return nil, fmt.Errorf("%w: Bee answered %d %s", feed.ErrUnavailable, resp.StatusCode, msg)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("Bee answered %d %s", resp.StatusCode, message(resp))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, socSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading chunk: %v", feed.ErrUnavailable, err)
	}
	return body, nil
}

// Close implements feed.Store.
func (s *Store) Close() error {
	s.client.CloseIdleConnections()
	return nil
}

func (s *Store) endpoint(path string) string {
	return strings.TrimSuffix(s.api.String(), "/") + path
}

// do sends a request; failures to reach the node are ErrUnavailable.
func (s *Store) do(req *http.Request) (*http.Response, error) {
	resp, err := s.client.Do(req)
	if err != nil {
		if req.Context().Err() != nil {
			return nil, req.Context().Err()
		}
		return nil, fmt.Errorf("%w: %v", feed.ErrUnavailable, err)
	}
	return resp, nil
}

func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
}

// message extracts Bee's error message from a JSON error body.
func message(resp *http.Response) string {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var e struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(b, &e) == nil && e.Message != "" {
		return e.Message
	}
	return strings.TrimSpace(string(b))
}

func (s *Store) getJSON(ctx context.Context, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.endpoint(path), nil)
	if err != nil {
		return err
	}
	return s.doJSON(req, out)
}

func (s *Store) postJSON(ctx context.Context, path string, header map[string]string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint(path), nil)
	if err != nil {
		return err
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return s.doJSON(req, out)
}

func (s *Store) doJSON(req *http.Request, out any) error {
	resp, err := s.do(req)
	if err != nil {
		return err
	}
	defer drain(resp)
	if resp.StatusCode/100 != 2 {
		err := fmt.Errorf("%s %s: Bee answered %d %s", req.Method, req.URL.Path, resp.StatusCode, message(resp))
		if resp.StatusCode >= 500 {
			err = fmt.Errorf("%w: %v", feed.ErrUnavailable, err)
		}
		return err
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(out); err != nil {
		return fmt.Errorf("%s %s: unreadable answer: %v", req.Method, req.URL.Path, err)
	}
	return nil
}
