package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	gosync "sync"
)

// Conn is a client of a running daemon (the CLI's, when another process
// holds the home).
type Conn struct {
	mu   gosync.Mutex
	c    net.Conn
	r    *bufio.Reader
	next int64
}

// ErrNoDaemon reports that no daemon listens for the home.
var ErrNoDaemon = errors.New("no deaddrop daemon is running for this home")

// Dial connects to the daemon of the account in home.
func Dial(ctx context.Context, home string) (*Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", SocketPath(home))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoDaemon, err)
	}
	return &Conn{c: c, r: bufio.NewReaderSize(c, 64<<10)}, nil
}

// Close closes the connection.
func (c *Conn) Close() error { return c.c.Close() }

// Call calls method with params and decodes the result into result (if not
// nil). An error the daemon returned is an *Error.
func (c *Conn) Call(ctx context.Context, method string, params, result any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.next++
	id := strconv.FormatInt(c.next, 10)
	req := map[string]any{"jsonrpc": "2.0", "method": method, "id": c.next}
	if params != nil {
		req["params"] = params
	}
	data, err := json.Marshal(req)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { c.c.Close() })
	defer stop()
	if _, err := c.c.Write(append(data, '\n')); err != nil {
		return ctxErr(ctx, err)
	}
	for {
		line, err := c.r.ReadBytes('\n')
		if err != nil {
			return ctxErr(ctx, fmt.Errorf("daemon: %w", err))
		}
		var resp struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Result json.RawMessage `json:"result"`
			Error  *Error          `json:"error"`
		}
		if err := json.Unmarshal(line, &resp); err != nil {
			return fmt.Errorf("daemon: bad response: %w", err)
		}
		if resp.Method != "" || string(resp.ID) != id {
			continue // a notification, or not ours
		}
		if resp.Error != nil {
			return resp.Error
		}
		if result == nil {
			return nil
		}
		return json.Unmarshal(resp.Result, result)
	}
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}
