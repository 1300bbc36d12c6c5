package daemon_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deaddrop/deaddrop"
	"github.com/deaddrop/deaddrop/daemon"
)

// sseEvent is one server-sent event.
type sseEvent struct{ id, kind, data string }

// readSSE parses events from a stream until it ends.
func readSSE(body io.Reader, out chan<- sseEvent) {
	defer close(out)
	sc := bufio.NewScanner(body)
	var e sseEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if e.kind != "" || e.data != "" {
				out <- e
			}
			e = sseEvent{}
		case strings.HasPrefix(line, "id: "):
			e.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			e.kind = line[7:]
		case strings.HasPrefix(line, "data: "):
			e.data = line[6:]
		}
	}
}

// The HTTP transport: loopback only, a token on every request, JSON-RPC on
// POST /rpc, the events on GET /events, and Last-Event-ID replays what a
// client missed while it was away.
func TestHTTPTransport(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	cfg := deaddrop.Config{Store: "embedded:" + filepath.Join(dir, "store")}
	alice, err := deaddrop.Init(ctx, filepath.Join(dir, "alice"), "alice", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	bob, err := deaddrop.Init(ctx, filepath.Join(dir, "bob"), "bob", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	invite, _ := alice.Invite("bob")
	if _, err := bob.Accept(ctx, invite, ""); err != nil {
		t.Fatal(err)
	}

	srv := daemon.New(alice, daemon.Options{Version: "test"})
	if err := srv.ServeHTTP(ctx, "0.0.0.0:0", daemon.HTTPOptions{Token: "t"}); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("HTTP on every interface: %v", err)
	}
	token := daemon.NewToken()
	addrs := make(chan net.Addr, 1)
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() {
		served <- srv.ServeHTTP(sctx, "127.0.0.1:0", daemon.HTTPOptions{Token: token, Ready: func(a net.Addr) { addrs <- a },
			Watch: deaddrop.WatchOptions{Every: 20 * time.Millisecond}})
	}()
	base := "http://" + (<-addrs).String()

	do := func(method, path, body, tok string, hdr map[string]string) *http.Response {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		for k, v := range hdr {
			if k == "Host" {
				req.Host = v
			} else {
				req.Header.Set(k, v)
			}
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	health := `{"jsonrpc":"2.0","id":1,"method":"health"}`
	for _, c := range []struct {
		tok  string
		hdr  map[string]string
		want int
	}{
		{"", nil, http.StatusUnauthorized},
		{"wrong", nil, http.StatusUnauthorized},
		{token, map[string]string{"Host": "evil.example:80"}, http.StatusForbidden},
		{token, nil, http.StatusOK},
	} {
		resp := do("POST", "/rpc", health, c.tok, c.hdr)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.want || c.want == http.StatusOK && !strings.Contains(string(body), `"account":"alice"`) {
			t.Fatalf("POST /rpc (token %q, %v): %d %s", c.tok, c.hdr, resp.StatusCode, body)
		}
	}
	resp := do("POST", "/rpc", `{"jsonrpc":"2.0","id":2,"method":"subscribe"}`, token, nil)
	if body, _ := io.ReadAll(resp.Body); !strings.Contains(string(body), "GET /events") {
		t.Fatalf("subscribe over POST: %s", body)
	}

	// Events, then a reconnection with Last-Event-ID.
	follow := func(lastID string) (chan sseEvent, context.CancelFunc) {
		ectx, cancel := context.WithCancel(ctx)
		req, _ := http.NewRequestWithContext(ectx, "GET", base+"/events?token="+token, nil)
		if lastID != "" {
			req.Header.Set("Last-Event-ID", lastID)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("GET /events: %v %v", resp, err)
		}
		ch := make(chan sseEvent, 64)
		go readSSE(resp.Body, ch)
		return ch, cancel
	}
	next := func(ch chan sseEvent, kind, contains string) sseEvent {
		t.Helper()
		for {
			select {
			case e, ok := <-ch:
				if !ok {
					t.Fatalf("the stream ended before a %s event with %q", kind, contains)
				}
				if e.kind == kind && strings.Contains(e.data, contains) {
					return e
				}
			case <-ctx.Done():
				t.Fatalf("no %s event with %q", kind, contains)
			}
		}
	}
	events, leave := follow("")
	next(events, "joined", `"contact":"bob"`)
	if _, err := bob.Send(ctx, "alice", "first"); err != nil {
		t.Fatal(err)
	}
	first := next(events, "message", `"body":"first"`)
	if first.id == "" {
		t.Fatal("an event without an id")
	}
	leave()
	for range events {
	}
	if _, err := bob.Send(ctx, "alice", "while away"); err != nil {
		t.Fatal(err)
	}
	// The hub keeps watching: the message is taken while no client is
	// connected, and replayed after the last ID the client saw.
	time.Sleep(300 * time.Millisecond)
	events, leave = follow(first.id)
	if e := next(events, "message", `"body"`); !strings.Contains(e.data, `"body":"while away"`) {
		t.Fatalf("replayed first: %+v", e)
	}
	leave()
	for range events {
	}
	events, leave = follow("otherrun-5")
	next(events, "gap", "changes")
	leave()

	stop()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
}
