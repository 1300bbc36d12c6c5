package keep

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/deaddrop/deaddrop/feed"
)

// The keeper's HTTP API, version 1:
//
//	POST /v1/records  {"records": [{"name": "…", "data": "<base64>"}, …]}
//	                  → {"added": n, "held": n, "refused": [{"name", "error"}]}
//	GET  /v1/status   → {"held": n, "interval": "12h0m0s"}
//
// With a token, every request carries "Authorization: Bearer <token>".

// wireRecord is a record on the wire; Data is base64 in JSON.
type wireRecord struct {
	Name string `json:"name"`
	Data []byte `json:"data"`
}

type pushRequest struct {
	Records []wireRecord `json:"records"`
}

// PushResult is the keeper's answer to a push.
type PushResult struct {
	Added   int       `json:"added"`
	Held    int       `json:"held"`
	Refused []Refusal `json:"refused,omitempty"`
}

// Refusal names a record the keeper did not take, and why.
type Refusal struct {
	Name  string `json:"name"`
	Error string `json:"error"`
}

// Limits of one push: a batch of records, each at most an IPNS record's size
// plus its name.
const (
	maxBatch      = 1000
	maxRecordSize = 16 << 10
	maxPushBody   = maxBatch * (maxRecordSize*4/3 + 256)
)

// Handler serves the keeper's HTTP API. An empty token accepts anyone (a
// keeper on a private address); with one, requests must present it.
func (k *Keeper) Handler(token string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/records", k.handlePush)
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"held": k.Len(), "interval": k.opts.Interval.String()})
	})
	if token == "" {
		return mux
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "missing or wrong keeper token"})
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func (k *Keeper) handlePush(w http.ResponseWriter, r *http.Request) {
	var req pushRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxPushBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "request is not a JSON list of records: " + err.Error()})
		return
	}
	if len(req.Records) > maxBatch {
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": fmt.Sprintf("%d records in one push, at most %d", len(req.Records), maxBatch)})
		return
	}
	var res PushResult
	var recs []feed.Signed
	for _, wr := range req.Records {
		if len(wr.Data) > maxRecordSize {
			res.Refused = append(res.Refused, Refusal{wr.Name, fmt.Sprintf("record of %d bytes, at most %d", len(wr.Data), maxRecordSize)})
			continue
		}
		recs = append(recs, feed.Signed{Name: wr.Name, Data: wr.Data})
	}
	added, refused, err := k.add(recs) // one transaction for the whole push
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	res.Added = added
	for _, r := range refused {
		res.Refused = append(res.Refused, Refusal{r.name, r.err.Error()})
	}
	res.Held = k.Len()
	writeJSON(w, http.StatusOK, res)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// Target is a keeper a device pushes its records to.
type Target struct {
	URL   string `json:"url"`
	Token string `json:"token,omitempty"`
}

// ErrKeeper reports a keeper that could not be reached or refused a push.
var ErrKeeper = errors.New("keep: keeper refused or unreachable")

// Push sends records to a keeper in batches and returns what it answered;
// records it refused are returned in the result and as an error.
func Push(ctx context.Context, client *http.Client, t Target, recs []feed.Signed) (PushResult, error) {
	if client == nil {
		client = &http.Client{Timeout: time.Minute}
	}
	var total PushResult
	for len(recs) > 0 {
		n := min(len(recs), maxBatch)
		res, err := pushBatch(ctx, client, t, recs[:n])
		if err != nil {
			return total, err
		}
		total.Added += res.Added
		total.Held = res.Held
		total.Refused = append(total.Refused, res.Refused...)
		recs = recs[n:]
	}
	if len(total.Refused) > 0 {
		r := total.Refused[0]
		return total, fmt.Errorf("%w: %d records refused, the first %s: %s", ErrKeeper, len(total.Refused), r.Name, r.Error)
	}
	return total, nil
}

func pushBatch(ctx context.Context, client *http.Client, t Target, recs []feed.Signed) (PushResult, error) {
	var req pushRequest
	for _, r := range recs {
		req.Records = append(req.Records, wireRecord{r.Name, r.Data})
	}
	body, err := json.Marshal(req)
	if err != nil {
		return PushResult{}, err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(t.URL, "/")+"/v1/records", bytes.NewReader(body))
	if err != nil {
		return PushResult{}, fmt.Errorf("%w: keeper URL %q: %v", ErrKeeper, t.URL, err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	if t.Token != "" {
		hreq.Header.Set("Authorization", "Bearer "+t.Token)
	}
	resp, err := client.Do(hreq)
	if err != nil {
		return PushResult{}, fmt.Errorf("%w: %s: %v", ErrKeeper, t.URL, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return PushResult{}, fmt.Errorf("%w: %s: reading answer: %v", ErrKeeper, t.URL, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		json.Unmarshal(data, &e)
		if e.Error == "" {
			e.Error = strings.TrimSpace(string(data))
		}
		return PushResult{}, fmt.Errorf("%w: %s answered %d: %.200s", ErrKeeper, t.URL, resp.StatusCode, e.Error)
	}
	var res PushResult
	if err := json.Unmarshal(data, &res); err != nil {
		return PushResult{}, fmt.Errorf("%w: %s does not answer like a keeper: %.100q", ErrKeeper, t.URL, data)
	}
	return res, nil
}
