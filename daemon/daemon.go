// Package daemon serves an account to other programs over JSON-RPC 2.0: one
// request or response per line (newline-delimited JSON), on standard input
// and output or on a Unix socket in the account's home. It is a thin adapter,
// as signal-cli's daemon is: each method calls one root-package Client
// method, and a subscription forwards Client.Watch's events as
// notifications. The methods mirror the CLI's commands in camelCase:
//
//	health                                  → Health
//	send        {contact, body, clientId?}  → SendResult
//	sendFile    {contact, path, name?, mediaType?, text?} → SendResult (path on the daemon's machine)
//	save        {id, dir}                   → SaveResult (id: contact:number or the message's hex ID)
//	read        {contact?}                  → ReadResult (new messages, marked seen)
//	history     {contact, since?, until?, limit?} → {messages: [Message]}
//	contacts                                → {contacts: [Contact]}
//	invite      {name, ttl?}                → {invite, name}
//	invites                                 → {invites: [Invite]}
//	cancelInvite {name}                     → {}
//	accept      {invite, name?}             → {contact}
//	devices                                 → Devices
//	receive                                 → ReadResult (one poll; marks nothing seen)
//	changes     {after?, limit?, latest?}   → {changes: [{cursor, message}], cursor}
//	settings    {readReceipts?}             → {readReceipts}
//	subscribe   {contacts?, every?}         → {subscription}, then "event" notifications
//	                                          (message, delivered, read, joined, deviceAdded,
//	                                          deviceRemoved, problem, storeError)
//	unsubscribe {subscription}              → {}
//
// ServeHTTP adds an optional HTTP transport on loopback, with a token: POST
// /rpc for the methods, GET /events for the events as server-sent events,
// resumable with Last-Event-ID (http.go).
//
// Durations (ttl, since, until, every) are strings such as "90s", "36h",
// "1d" or "2w"; since and until also take RFC 3339 times. Errors carry the
// standard JSON-RPC codes (-32700 parse error, -32600 invalid request,
// -32601 method not found, -32602 invalid params, -32603 internal error) or
// one of the Code constants, with data.reason naming the error.
//
// changes is the resumable feed: every message that entered the history or
// changed (stored, delivered, seen) after a cursor the client kept, so that
// one that was away misses no delivery receipt. A subscription starts delivering with the unseen messages that arrived
// before it, so a client that subscribes once it is ready misses nothing;
// each message is delivered once, and marked seen once written out.
package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	gosync "sync"
	"time"

	"github.com/deaddrop/deaddrop"
)

// SocketName is the daemon's Unix socket in the account's home.
const SocketName = "rpc.sock"

// SocketPath returns the daemon's socket for the account in home.
func SocketPath(home string) string { return filepath.Join(home, SocketName) }

// MaxLine is the longest request line read, in bytes.
const MaxLine = 1 << 20

// Options tunes a Server.
type Options struct {
	// Version is what health reports.
	Version string
}

// Server answers JSON-RPC requests with a Client's methods.
type Server struct {
	cl   *deaddrop.Client
	opts Options

	mu      gosync.Mutex
	nextSub int64
}

// New returns a server for cl; the caller keeps owning cl.
func New(cl *deaddrop.Client, opts Options) *Server {
	return &Server{cl: cl, opts: opts}
}

// ServeUnix listens on the socket at path (removing a stale one: the caller
// holds the home, so no other daemon can be listening there) and serves
// every connection until ctx ends. The socket is readable and writable by
// this user only.
func (s *Server) ServeUnix(ctx context.Context, path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("daemon socket: %w", err)
	}
	defer os.Remove(path)
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return err
	}
	var wg gosync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		wg.Go(func() {
			defer conn.Close()
			cctx, cancel := context.WithCancel(ctx)
			defer cancel()
			stopConn := context.AfterFunc(cctx, func() { conn.Close() })
			defer stopConn()
			s.Serve(cctx, conn, conn)
		})
	}
}

// Serve answers the requests read from r on w until r ends or ctx does.
// Requests run concurrently; responses and notifications are written whole,
// one per line.
func (s *Server) Serve(ctx context.Context, r io.Reader, w io.Writer) error {
	// Requests under way when r ends are answered; subscriptions end.
	subCtx, endSubs := context.WithCancel(ctx)
	defer endSubs()
	c := &conn{s: s, w: w, subCtx: subCtx, subs: map[int64]context.CancelFunc{}}
	var wg gosync.WaitGroup
	defer wg.Wait()
	defer endSubs()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), MaxLine)
	for sc.Scan() {
		line := append([]byte(nil), sc.Bytes()...)
		if len(trimSpace(line)) == 0 {
			continue
		}
		wg.Go(func() { c.handleLine(ctx, &wg, line) })
	}
	if err := sc.Err(); err != nil {
		c.write(response{JSONRPC: "2.0", ID: json.RawMessage("null"), Error: &Error{Code: CodeInvalidRequest, Message: err.Error()}})
		return err
	}
	return nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r' || b[0] == '\n') {
		b = b[1:]
	}
	return b
}

// conn is one client connection.
type conn struct {
	s   *Server
	wmu gosync.Mutex
	w   io.Writer

	http   bool            // a POST /rpc: no subscriptions (GET /events streams)
	subCtx context.Context // ends at the end of the connection's input
	smu    gosync.Mutex
	subs   map[int64]context.CancelFunc
}

type request struct {
	JSONRPC string          `json:"jsonrpc"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params,omitempty"`
	ID      json.RawMessage `json:"id,omitempty"`
}

type response struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  any             `json:"result,omitempty"`
	Error   *Error          `json:"error,omitempty"`
}

type notification struct {
	JSONRPC string `json:"jsonrpc"`
	Method  string `json:"method"`
	Params  any    `json:"params"`
}

func (c *conn) write(v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err = c.w.Write(append(data, '\n'))
	return err
}

// handleLine answers one line: a request, a notification or a batch.
func (c *conn) handleLine(ctx context.Context, wg *gosync.WaitGroup, line []byte) {
	line = trimSpace(line)
	if line[0] == '[' {
		var batch []json.RawMessage
		if err := json.Unmarshal(line, &batch); err != nil {
			c.write(errorResponse(nil, &Error{Code: CodeParse, Message: "parse error: " + err.Error()}))
			return
		}
		if len(batch) == 0 {
			c.write(errorResponse(nil, &Error{Code: CodeInvalidRequest, Message: "empty batch"}))
			return
		}
		var out []response
		for _, raw := range batch {
			if resp, ok := c.handle(ctx, wg, raw); ok {
				out = append(out, resp)
			}
		}
		if len(out) > 0 {
			c.write(out)
		}
		return
	}
	if resp, ok := c.handle(ctx, wg, line); ok {
		c.write(resp)
	}
}

// handle answers one request; ok is false for a notification (no ID).
func (c *conn) handle(ctx context.Context, wg *gosync.WaitGroup, raw []byte) (response, bool) {
	var req request
	if err := json.Unmarshal(raw, &req); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return errorResponse(nil, &Error{Code: CodeParse, Message: "parse error: " + err.Error()}), true
		}
		return errorResponse(nil, &Error{Code: CodeInvalidRequest, Message: "invalid request: " + err.Error()}), true
	}
	if req.JSONRPC != "2.0" || req.Method == "" || !validID(req.ID) {
		return errorResponse(req.ID, &Error{Code: CodeInvalidRequest, Message: `invalid request: want {"jsonrpc": "2.0", "method": …, "id": …}`}), true
	}
	result, err := c.call(ctx, wg, req.Method, req.Params)
	if req.ID == nil {
		return response{}, false // a notification: no answer, even on error
	}
	if err != nil {
		return errorResponse(req.ID, toError(err)), true
	}
	if result == nil {
		result = struct{}{}
	}
	return response{JSONRPC: "2.0", ID: req.ID, Result: result}, true
}

func validID(id json.RawMessage) bool {
	if id == nil {
		return true
	}
	var v any
	if json.Unmarshal(id, &v) != nil {
		return false
	}
	switch v.(type) {
	case string, float64, nil:
		return true
	}
	return false
}

func errorResponse(id json.RawMessage, e *Error) response {
	if id == nil {
		id = json.RawMessage("null")
	}
	return response{JSONRPC: "2.0", ID: id, Error: e}
}

// subscribe starts a Watch whose events go out as notifications until
// unsubscribe or the end of the connection.
func (c *conn) subscribe(wg *gosync.WaitGroup, opts deaddrop.WatchOptions) int64 {
	c.s.mu.Lock()
	c.s.nextSub++
	id := c.s.nextSub
	c.s.mu.Unlock()
	sctx, cancel := context.WithCancel(c.subCtx)
	c.smu.Lock()
	c.subs[id] = cancel
	c.smu.Unlock()
	events := c.s.cl.Watch(sctx, opts)
	wg.Go(func() {
		defer cancel()
		for e := range events {
			if c.write(notification{JSONRPC: "2.0", Method: "event", Params: fromEvent(id, e)}) != nil {
				return // the client is gone; Watch marked only what it took
			}
		}
	})
	return id
}

func (c *conn) unsubscribe(id int64) bool {
	c.smu.Lock()
	defer c.smu.Unlock()
	cancel, ok := c.subs[id]
	if ok {
		cancel()
		delete(c.subs, id)
	}
	return ok
}

// pollEvery bounds a subscription's poll interval.
const minEvery = 100 * time.Millisecond
