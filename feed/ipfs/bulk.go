package ipfs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/ipfs/go-cid"
)

// Bulk objects are UnixFS files added to and pinned on the node with the
// RPC's add (CIDv1, raw leaves, SHA-256), read back with cat. The reference
// is the root CID in binary. Kubo checks every block against its CID, so a
// damaged block never comes back as data.

// defaultFindTimeout bounds how long GetBulk looks on the network for an
// object its own node does not hold before calling it not found: IPFS
// cannot tell "nobody has it" from "nobody answered yet".
const defaultFindTimeout = 30 * time.Second

// bulkClient has no overall timeout: a bulk transfer may take minutes and is
// bounded by its context instead. It shares the store's connections.
func (s *Store) bulkClient() *http.Client {
	return &http.Client{Transport: s.client.Transport}
}

// PutBulk implements feed.BulkStore with add (pinned).
func (s *Store) PutBulk(ctx context.Context, r io.Reader) ([]byte, error) {
	q := url.Values{
		"pin": {"true"}, "cid-version": {"1"}, "raw-leaves": {"true"},
		"hash": {"sha2-256"}, "progress": {"false"}, "quieter": {"true"},
	}
	body, contentType := streamMultipart(r)
	defer body.Close()
	resp, err := s.rpcStream(ctx, "add", q, body, contentType)
	if err != nil {
		return nil, fmt.Errorf("ipfs: put bulk: %w", err)
	}
	defer resp.Body.Close()
	c, err := addedRoot(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("ipfs: put bulk: %w", err)
	}
	return c.Bytes(), nil
}

// streamMultipart wraps r as a one-file multipart body without buffering it.
func streamMultipart(r io.Reader) (io.ReadCloser, string) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		fw, err := mw.CreateFormFile("file", "segment")
		if err == nil {
			_, err = io.Copy(fw, r)
		}
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err)
	}()
	return pr, mw.FormDataContentType()
}

// addedRoot reads add's answer (one JSON object per added entry, the root
// last) and returns the root CID.
func addedRoot(body io.Reader) (cid.Cid, error) {
	dec := json.NewDecoder(io.LimitReader(body, maxAnswer))
	var last string
	for {
		var out struct{ Hash string }
		err := dec.Decode(&out)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return cid.Undef, fmt.Errorf("unreadable answer to add: %v", err)
		}
		last = out.Hash
	}
	c, err := cid.Decode(last)
	if err != nil {
		return cid.Undef, fmt.Errorf("Kubo answered a malformed CID %.80q", last)
	}
	return c, nil
}

// GetBulk implements feed.BulkStore with cat: first offline, which answers
// at once from the node's own blocks, then, if the node lacks the root, on
// the network for at most Options.FindTimeout.
func (s *Store) GetBulk(ctx context.Context, ref []byte) (io.ReadCloser, error) {
	c, err := cid.Cast(ref)
	if err != nil {
		return nil, fmt.Errorf("ipfs: %w: %v", feed.ErrBadRef, err)
	}
	rc, err := s.cat(ctx, c, true)
	if errors.Is(err, feed.ErrNotFound) {
		rc, err = s.catOnline(ctx, c)
	}
	if err != nil {
		return nil, fmt.Errorf("ipfs: get bulk %s: %w", c, err)
	}
	return rc, nil
}

// catOnline looks for the object on the network. Only finding the root is
// bounded by FindTimeout; once the answer starts, the caller's context
// bounds the transfer.
func (s *Store) catOnline(ctx context.Context, c cid.Cid) (io.ReadCloser, error) {
	wait := s.opts.FindTimeout
	if wait == 0 {
		wait = defaultFindTimeout
	}
	findCtx, cancel := context.WithCancel(ctx)
	timer := time.AfterFunc(wait, cancel)
	rc, err := s.cat(findCtx, c, false)
	if !timer.Stop() && err != nil && ctx.Err() == nil {
		cancel()
		return nil, fmt.Errorf("%w: not found on the network within %v", feed.ErrNotFound, wait)
	}
	if err != nil {
		cancel()
		return nil, err
	}
	return cancelOnClose{rc, cancel}, nil
}

func (s *Store) cat(ctx context.Context, c cid.Cid, offline bool) (io.ReadCloser, error) {
	q := url.Values{"arg": {c.String()}}
	if offline {
		q.Set("offline", "true")
	}
	resp, err := s.rpcStream(ctx, "cat", q, nil, "")
	if err != nil {
		var re *rpcError
		if errors.As(err, &re) && strings.Contains(re.Message, "not found") {
			return nil, fmt.Errorf("%w: %s", feed.ErrNotFound, re.Message)
		}
		return nil, err
	}
	return &trailerReader{resp: resp}, nil
}

// rpcStream POSTs an RPC command and returns a 200 answer with its body
// unread; any other answer becomes an error.
func (s *Store) rpcStream(ctx context.Context, cmd string, q url.Values, body io.Reader, contentType string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.rpc+"/api/v0/"+cmd+"?"+q.Encode(), body)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := s.bulkClient().Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: %v", feed.ErrUnavailable, err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	var e struct{ Message string }
	if json.Unmarshal(data, &e) != nil || e.Message == "" {
		e.Message = strings.TrimSpace(string(data))
	}
	re := &rpcError{Status: resp.StatusCode, Message: e.Message}
	if resp.StatusCode >= 500 && !strings.Contains(e.Message, "not found") {
		return nil, fmt.Errorf("%w: %w", feed.ErrUnavailable, re)
	}
	return nil, re
}

// trailerReader turns Kubo's way of failing mid-stream, an X-Stream-Error
// trailer after a 200 answer, into a read error instead of a clean EOF.
type trailerReader struct {
	resp *http.Response
}

func (t *trailerReader) Read(p []byte) (int, error) {
	n, err := t.resp.Body.Read(p)
	if errors.Is(err, io.EOF) {
		if msg := t.resp.Trailer.Get("X-Stream-Error"); msg != "" {
			return n, fmt.Errorf("%w: Kubo failed mid-stream: %s", feed.ErrUnavailable, msg)
		}
	}
	return n, err
}

func (t *trailerReader) Close() error { return t.resp.Body.Close() }

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}
