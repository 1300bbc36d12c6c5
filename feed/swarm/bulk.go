package swarm

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/deaddrop/deaddrop/feed"
)

// Bulk objects are Bee's own bulk content: POST /bytes splits the body into
// content-addressed chunks under a chunk tree and answers the root's
// 32-byte reference; GET /bytes/{ref} streams the content back. The chunks
// are stamped with the batch Put uses, so they are linkable to it (see
// docs/threat-model.md).

// refSize is the length of an unencrypted Swarm reference.
const refSize = 32

// bulkClient has no overall timeout: a bulk transfer may take minutes and is
// bounded by its context instead. It shares the store's connections.
func (s *Store) bulkClient() *http.Client {
	return &http.Client{Transport: s.client.Transport}
}

// PutBulk implements feed.BulkStore with POST /bytes.
func (s *Store) PutBulk(ctx context.Context, r io.Reader) ([]byte, error) {
	ref, err := s.postBytes(ctx, r)
	if errors.Is(err, ErrPostage) {
		// The body is gone, so no retry here; settle a batch so that the
		// caller's retry can succeed (a dev node restarts without one).
		if serr := s.settleBatch(ctx); serr != nil {
			err = errors.Join(err, serr)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("swarm: put bulk: %w", err)
	}
	return ref, nil
}

func (s *Store) postBytes(ctx context.Context, r io.Reader) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint("/bytes"), io.NopCloser(r))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Swarm-Postage-Batch-Id", s.Batch())
	// Deferred: the node stores the chunks and pushes them to the network
	// in the background, as it does for /chunks; a dev node refuses direct.
	req.Header.Set("Swarm-Deferred-Upload", "true")
	resp, err := s.doBulk(req)
	if err != nil {
		return nil, err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return nil, uploadError(resp)
	}
	var out struct {
		Reference string `json:"reference"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&out); err != nil {
		return nil, fmt.Errorf("unreadable answer to POST /bytes: %v", err)
	}
	ref, err := hex.DecodeString(out.Reference)
	if err != nil || len(ref) != refSize {
		return nil, fmt.Errorf("Bee answered a malformed reference %.80q", out.Reference)
	}
	return ref, nil
}

func uploadError(resp *http.Response) error {
	msg := message(resp)
	switch {
	case resp.StatusCode == http.StatusPaymentRequired, containsAny(msg, "batch", "stamp"):
		return fmt.Errorf("%w: %s", ErrPostage, msg)
	case resp.StatusCode >= 500:
		return fmt.Errorf("%w: Bee answered %d %s", feed.ErrUnavailable, resp.StatusCode, msg)
	}
	return fmt.Errorf("Bee refused the upload: %d %s", resp.StatusCode, msg)
}

// GetBulk implements feed.BulkStore with GET /bytes/{ref}. Bee verifies
// every chunk it fetches against its address; a body cut short fails the
// read (the answer has a Content-Length).
func (s *Store) GetBulk(ctx context.Context, ref []byte) (io.ReadCloser, error) {
	if len(ref) != refSize {
		return nil, fmt.Errorf("swarm: %w: want %d bytes, got %d", feed.ErrBadRef, refSize, len(ref))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.endpoint("/bytes/"+hex.EncodeToString(ref)), nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.doBulk(req)
	if err != nil {
		return nil, fmt.Errorf("swarm: get bulk %x: %w", ref[:8], err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp.Body, nil
	}
	defer drain(resp)
	msg := message(resp)
	switch {
	case resp.StatusCode == http.StatusNotFound || msg == missingChunk:
		err = feed.ErrNotFound
	case resp.StatusCode >= 500:
		err = fmt.Errorf("%w: Bee answered %d %s", feed.ErrUnavailable, resp.StatusCode, msg)
	default:
		err = fmt.Errorf("Bee answered %d %s", resp.StatusCode, msg)
	}
	return nil, fmt.Errorf("swarm: get bulk %x: %w", ref[:8], err)
}

// doBulk is do without the per-request timeout.
func (s *Store) doBulk(req *http.Request) (*http.Response, error) {
	resp, err := s.bulkClient().Do(req)
	if err != nil {
		if req.Context().Err() != nil {
			return nil, req.Context().Err()
		}
		return nil, fmt.Errorf("%w: %v", feed.ErrUnavailable, err)
	}
	return resp, nil
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
