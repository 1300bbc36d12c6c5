// Package ipfs is the feed.Store backend on IPFS, through a Kubo node's RPC
// API. Each slot becomes the IPNS name of an Ed25519 key derived from the slot
// secret; the name's record (built and verified with boxo/ipns) inlines the
// 4096-byte chunk. Writes use name/put, which validates the record (unlike
// routing/put, which answers 200 even when it rejected one); reads use
// name/get, and the record's signature, name, validity and size are checked
// before its chunk is trusted.
package ipfs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/ipfs/boxo/ipns"
)

// Options configures a Store. Zero values pick the defaults.
type Options struct {
	// Online requires name/put to reach DHT peers. By default records are
	// stored with --allow-offline, which a lone or private node needs; the
	// node still provides them to the DHT when it has peers.
	Online bool
	// Timeout bounds each RPC call (default 30 s); bulk transfers are
	// bounded by their context instead.
	Timeout time.Duration
	// FindTimeout bounds how long GetBulk looks on the network for an
	// object the node does not hold before it reports ErrNotFound
	// (default 30 s).
	FindTimeout time.Duration
}

// Store talks to one Kubo node.
type Store struct {
	rpc    string
	client *http.Client
	opts   Options
}

// Open connects to the Kubo RPC API at rpcURL.
func Open(ctx context.Context, rpcURL string, opts Options) (*Store, error) {
	u, err := url.Parse(rpcURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("ipfs: %q is not a Kubo RPC URL (want http://host:port)", rpcURL)
	}
	if opts.Timeout == 0 {
		opts.Timeout = 30 * time.Second
	}
	s := &Store{rpc: strings.TrimSuffix(u.String(), "/"), opts: opts, client: &http.Client{
		Timeout: opts.Timeout,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 128,
			IdleConnTimeout:     90 * time.Second,
		},
	}}
	var v struct{ Version string }
	body, err := s.call(ctx, "version", nil, nil)
	if err != nil {
		return nil, fmt.Errorf("ipfs: Kubo node at %s does not answer: %w", rpcURL, err)
	}
	if json.Unmarshal(body, &v) != nil || v.Version == "" {
		return nil, fmt.Errorf("ipfs: %s does not answer like a Kubo node: %.100q", rpcURL, body)
	}
	return s, nil
}

// Put implements feed.Store.
func (s *Store) Put(ctx context.Context, slot feed.Slot, chunk []byte) error {
	if err := feed.CheckChunk(chunk); err != nil {
		return err
	}
	k := keyFor(slot)
	rec, err := buildRecord(k, chunk, RecordEOL)
	if err != nil {
		return fmt.Errorf("ipfs: put %v: %w", slot, err)
	}
	if err := s.RawPutRecord(ctx, k.name, rec); err != nil {
		return fmt.Errorf("ipfs: put %v: %w", slot, err)
	}
	return nil
}

// RawPutRecord stores a marshalled record with name/put; Put uses it, and
// benchmarks use it as the baseline.
func (s *Store) RawPutRecord(ctx context.Context, name ipns.Name, record []byte) error {
	q := url.Values{"arg": {name.String()}}
	if !s.opts.Online {
		q.Set("allow-offline", "true")
	}
	_, err := s.call(ctx, "name/put", q, record)
	var re *rpcError
	if errors.As(err, &re) && strings.Contains(re.Message, "sequence") {
		return fmt.Errorf("%w: %s", feed.ErrSlotUsed, re.Message)
	}
	return err
}

// Get implements feed.Store.
func (s *Store) Get(ctx context.Context, slot feed.Slot) ([]byte, error) {
	k := keyFor(slot)
	rec, err := s.RawGetRecord(ctx, k.name)
	if err != nil {
		return nil, fmt.Errorf("ipfs: get %v: %w", slot, err)
	}
	chunk, err := parseRecord(k.name, rec, time.Now())
	if err != nil {
		return nil, fmt.Errorf("ipfs: get %v: %w: %v", slot, feed.ErrCorrupt, err)
	}
	return chunk, nil
}

// RawGetRecord fetches a name's record bytes with name/get, unverified.
func (s *Store) RawGetRecord(ctx context.Context, name ipns.Name) ([]byte, error) {
	body, err := s.call(ctx, "name/get", url.Values{"arg": {name.String()}}, nil)
	var re *rpcError
	if errors.As(err, &re) && (strings.Contains(re.Message, "not found") || strings.Contains(re.Message, "no record")) {
		return nil, feed.ErrNotFound
	}
	return body, err
}

// Close implements feed.Store.
func (s *Store) Close() error {
	s.client.CloseIdleConnections()
	return nil
}

// Name returns the IPNS name a slot maps to (for tests and the threat model).
func Name(slot feed.Slot) ipns.Name { return keyFor(slot).name }

// BuildRecord returns the record Put would store for a slot's chunk.
func BuildRecord(slot feed.Slot, chunk []byte) ([]byte, error) {
	return buildRecord(keyFor(slot), chunk, RecordEOL)
}

// rpcError is an error answer of Kubo's RPC API.
type rpcError struct {
	Status  int
	Message string
}

func (e *rpcError) Error() string { return fmt.Sprintf("Kubo answered %d: %s", e.Status, e.Message) }

// maxAnswer bounds what is read from the node.
const maxAnswer = 64 << 10

// call POSTs an RPC command, with file as a multipart upload if given, and
// returns the body of a 200 answer.
func (s *Store) call(ctx context.Context, cmd string, q url.Values, file []byte) ([]byte, error) {
	var body io.Reader
	contentType := ""
	if file != nil {
		buf := new(bytes.Buffer)
		mw := multipart.NewWriter(buf)
		fw, _ := mw.CreateFormFile("file", "record")
		fw.Write(file)
		mw.Close()
		body, contentType = buf, mw.FormDataContentType()
	}
	u := s.rpc + "/api/v0/" + cmd
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, body)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: %v", feed.ErrUnavailable, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, fmt.Errorf("%w: reading answer: %v", feed.ErrUnavailable, err)
	}
	if resp.StatusCode == http.StatusOK {
		return data, nil
	}
	var e struct{ Message string }
	if json.Unmarshal(data, &e) != nil || e.Message == "" {
		e.Message = strings.TrimSpace(string(data))
	}
	re := &rpcError{Status: resp.StatusCode, Message: e.Message}
	if resp.StatusCode >= 500 && !strings.Contains(e.Message, "not found") && !strings.Contains(e.Message, "sequence") &&
		!strings.Contains(e.Message, "no record") {
		return nil, fmt.Errorf("%w: %w", feed.ErrUnavailable, re)
	}
	return nil, re
}
