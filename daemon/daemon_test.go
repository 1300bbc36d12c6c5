package daemon_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deaddrop/deaddrop"
	"github.com/deaddrop/deaddrop/daemon"
)

// rpc runs a Server over pipes and speaks to it line by line.
type rpc struct {
	t   *testing.T
	w   io.WriteCloser
	r   *bufio.Reader
	end chan error
}

func serve(t *testing.T, cl *deaddrop.Client) *rpc {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	end := make(chan error, 1)
	go func() {
		end <- daemon.New(cl, daemon.Options{Version: "test"}).Serve(context.Background(), inR, outW)
		outW.Close()
	}()
	return &rpc{t: t, w: inW, r: bufio.NewReader(outR), end: end}
}

func (r *rpc) roundTrip(line string) map[string]any {
	r.t.Helper()
	if _, err := io.WriteString(r.w, line+"\n"); err != nil {
		r.t.Fatal(err)
	}
	out, err := r.r.ReadBytes('\n')
	if err != nil {
		r.t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(out, &v); err != nil {
		r.t.Fatalf("%s: %v", out, err)
	}
	return v
}

func code(v map[string]any) int {
	e, _ := v["error"].(map[string]any)
	c, _ := e["code"].(float64)
	return int(c)
}

func TestServeErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cl, err := deaddrop.Init(ctx, filepath.Join(dir, "alice"), "alice", deaddrop.Config{Store: "embedded:" + filepath.Join(dir, "store")})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	r := serve(t, cl)
	for _, c := range []struct {
		line string
		code int
	}{
		{`{"jsonrpc":"2.0","id":1,"method":"health"}`, 0},
		{`{"jsonrpc":"2.0","id":2,"method":"nope"}`, daemon.CodeMethodNotFound},
		{`{bad`, daemon.CodeParse},
		{`{"id":3,"method":"health"}`, daemon.CodeInvalidRequest},
		{`{"jsonrpc":"2.0","id":{"x":1},"method":"health"}`, daemon.CodeInvalidRequest},
		{`{"jsonrpc":"2.0","id":4,"method":"send","params":{"contact":"bob","body":"x"}}`, daemon.CodeUnknownContact},
		{`{"jsonrpc":"2.0","id":5,"method":"send","params":{"contact":"bob","bodie":"x"}}`, daemon.CodeInvalidParams},
		{`{"jsonrpc":"2.0","id":6,"method":"history","params":{"contact":"bob","since":"-1d"}}`, daemon.CodeInvalidParams},
		{`{"jsonrpc":"2.0","id":7,"method":"invite","params":{"name":"bob"}}`, 0},
		{`{"jsonrpc":"2.0","id":8,"method":"invite","params":{"name":"bob"}}`, daemon.CodeNameInUse},
		{`[]`, daemon.CodeInvalidRequest},
	} {
		v := r.roundTrip(c.line)
		if got := code(v); got != c.code {
			t.Errorf("%s: code %d, want %d (%v)", c.line, got, c.code, v)
		}
	}
	v := r.roundTrip(`{"jsonrpc":"2.0","id":"h","method":"health"}`)
	res, _ := v["result"].(map[string]any)
	if v["id"] != "h" || res["account"] != "alice" || res["version"] != "test" {
		t.Fatalf("health: %v", v)
	}
	r.w.Close()
	if err := <-r.end; err != nil {
		t.Fatal(err)
	}
}

// A Conn gets the daemon's errors as *Error, with their code and reason.
func TestClientCallError(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	home := filepath.Join(dir, "alice")
	cl, err := deaddrop.Init(ctx, home, "alice", deaddrop.Config{Store: "embedded:" + filepath.Join(dir, "store")})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- daemon.New(cl, daemon.Options{}).ServeUnix(sctx, daemon.SocketPath(home)) }()
	var d *daemon.Conn
	for range 200 {
		if d, err = daemon.Dial(ctx, home); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	err = d.Call(ctx, "send", map[string]string{"contact": "bob", "body": "hi"}, nil)
	var e *daemon.Error
	if !errors.As(err, &e) || e.Code != daemon.CodeUnknownContact || e.Data.Reason != "unknownContact" || !strings.Contains(e.Message, "unknown contact") {
		t.Fatalf("send to a stranger: %#v", err)
	}
	var h daemon.Health
	if err := d.Call(ctx, "health", nil, &h); err != nil || !h.OK || h.Account != "alice" {
		t.Fatalf("health: %+v, %v", h, err)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
