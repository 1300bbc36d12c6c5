package daemon

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	gosync "sync"
	"time"

	"github.com/deaddrop/deaddrop"
)

// The HTTP transport (optional): the same JSON-RPC methods as POST /rpc, and
// the events as server-sent events on GET /events, resumable with
// Last-Event-ID. It listens on loopback only and every request carries the
// token: "Authorization: Bearer <token>" (or ?token=, for EventSource,
// which cannot set headers). Requests whose Host is not a loopback name are
// refused, so that a web page cannot reach the daemon through DNS
// rebinding.

// ReplayEvents is how many events the HTTP transport keeps for
// Last-Event-ID replay.
const ReplayEvents = 4096

// ErrNotLoopback reports an HTTP address that is not on loopback.
var ErrNotLoopback = errors.New("the daemon's HTTP transport listens on loopback only (127.0.0.1, ::1 or localhost)")

// NewToken returns a random token for the HTTP transport.
func NewToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// HTTPOptions tunes the HTTP transport.
type HTTPOptions struct {
	// Token is what every request must carry (required).
	Token string
	// Watch tunes the Watch whose events GET /events streams (the zero
	// value: every conversation, one poll a second).
	Watch deaddrop.WatchOptions
	// Ready, if set, is called with the address listened on.
	Ready func(addr net.Addr)
}

// ServeHTTP listens on addr (a loopback address; port 0 picks one) and
// serves POST /rpc and GET /events until ctx ends.
func (s *Server) ServeHTTP(ctx context.Context, addr string, opts HTTPOptions) error {
	if opts.Token == "" {
		return errors.New("the daemon's HTTP transport needs a token")
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("daemon HTTP address: %w", err)
	}
	if !loopbackHost(host) {
		return fmt.Errorf("%w, not %q", ErrNotLoopback, addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("daemon HTTP: %w", err)
	}
	if opts.Ready != nil {
		opts.Ready(ln.Addr())
	}
	h := s.HTTPHandler(ctx, opts)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		srv.Close()
	})
	defer stop()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// HTTPHandler returns the HTTP transport's handler; its event hub runs
// until ctx ends.
func (s *Server) HTTPHandler(ctx context.Context, opts HTTPOptions) http.Handler {
	hub := &hub{s: s, ctx: ctx, opts: opts.Watch, run: NewToken()[:8]}
	hub.cond = gosync.NewCond(&hub.mu)
	context.AfterFunc(ctx, func() { hub.mu.Lock(); hub.cond.Broadcast(); hub.mu.Unlock() })
	mux := http.NewServeMux()
	mux.HandleFunc("POST /rpc", s.httpRPC)
	mux.HandleFunc("GET /events", hub.serveEvents)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			host = r.Host
		}
		if !loopbackHost(strings.Trim(host, "[]")) {
			http.Error(w, "forbidden host", http.StatusForbidden)
			return
		}
		tok := r.URL.Query().Get("token")
		if a, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			tok = a
		}
		if subtle.ConstantTimeCompare([]byte(tok), []byte(opts.Token)) != 1 {
			w.Header().Set("WWW-Authenticate", "Bearer")
			http.Error(w, "a token is required (Authorization: Bearer …)", http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// httpRPC answers one JSON-RPC request or batch.
func (s *Server) httpRPC(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxLine+1))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if len(body) > MaxLine {
		http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
		return
	}
	var out bytes.Buffer
	c := &conn{s: s, w: &out, http: true, subCtx: r.Context(), subs: map[int64]context.CancelFunc{}}
	var wg gosync.WaitGroup
	if len(trimSpace(body)) == 0 {
		c.write(errorResponse(nil, &Error{Code: CodeInvalidRequest, Message: "empty request"}))
	} else {
		c.handleLine(r.Context(), &wg, body)
	}
	wg.Wait()
	if out.Len() == 0 {
		w.WriteHeader(http.StatusNoContent) // notifications only
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(out.Bytes())
}

// hub runs one Watch for the HTTP transport, from the first GET /events on,
// and keeps its last ReplayEvents events, numbered, for Last-Event-ID.
type hub struct {
	s    *Server
	ctx  context.Context
	opts deaddrop.WatchOptions
	run  string // names this server run: IDs of another run are not replayed

	mu      gosync.Mutex
	cond    *gosync.Cond
	started bool
	events  []numbered // the last ones, oldest first
	last    int64      // ID of the newest event
}

// numbered is an event with its ID.
type numbered struct {
	id int64
	ev Event
}

func (h *hub) start() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.started {
		return
	}
	h.started = true
	events := h.s.cl.Watch(h.ctx, h.opts)
	go func() {
		for e := range events {
			h.mu.Lock()
			h.last++
			h.events = append(h.events, numbered{h.last, fromEvent(0, e)})
			if len(h.events) > ReplayEvents {
				h.events = h.events[len(h.events)-ReplayEvents:]
			}
			h.cond.Broadcast()
			h.mu.Unlock()
		}
	}()
}

// serveEvents streams the events as server-sent events: "id: <run>-<n>",
// "event: <kind>", "data: <Event as JSON>". A request with Last-Event-ID
// first gets every kept event after it; one the hub no longer holds (or of
// another run) gets an event "gap" first: catch up with the changes
// method, then follow.
func (h *hub) serveEvents(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	h.start()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	ctx := r.Context()
	stop := context.AfterFunc(ctx, func() { h.mu.Lock(); h.cond.Broadcast(); h.mu.Unlock() })
	defer stop()

	h.mu.Lock()
	next := h.last + 1 // a new client: from now on
	gap := false
	if le := r.Header.Get("Last-Event-ID"); le != "" {
		run, n, _ := strings.Cut(le, "-")
		id, err := strconv.ParseInt(n, 10, 64)
		oldest := h.last - int64(len(h.events)) + 1
		switch {
		case run != h.run || err != nil || id > h.last:
			gap, next = true, oldest
		case id+1 < oldest:
			gap, next = true, oldest
		default:
			next = id + 1
		}
	}
	h.mu.Unlock()
	if gap {
		fmt.Fprintf(w, "event: gap\ndata: {\"kind\":\"gap\",\"error\":\"events were missed: call changes with your cursor\"}\n\n")
		fl.Flush()
	}
	fmt.Fprint(w, ": connected\n\n")
	fl.Flush()
	for {
		h.mu.Lock()
		for h.last < next && ctx.Err() == nil && h.ctx.Err() == nil {
			h.cond.Wait()
		}
		if ctx.Err() != nil || h.ctx.Err() != nil {
			h.mu.Unlock()
			return
		}
		oldest := h.last - int64(len(h.events)) + 1
		if next < oldest { // this reader fell behind the buffer
			next = oldest
			h.mu.Unlock()
			fmt.Fprintf(w, "event: gap\ndata: {\"kind\":\"gap\",\"error\":\"events were missed: call changes with your cursor\"}\n\n")
			continue
		}
		batch := append([]numbered(nil), h.events[next-oldest:]...)
		h.mu.Unlock()
		for _, n := range batch {
			data, err := json.Marshal(n.ev)
			if err != nil {
				return
			}
			if _, err := fmt.Fprintf(w, "id: %s-%d\nevent: %s\ndata: %s\n\n", h.run, n.id, n.ev.Kind, data); err != nil {
				return
			}
			next = n.id + 1
		}
		fl.Flush()
	}
}
