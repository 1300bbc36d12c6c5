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
// holds the home). Calls may be made from several goroutines; event
// notifications arrive on Events.
type Conn struct {
	c      net.Conn
	wmu    gosync.Mutex
	mu     gosync.Mutex
	next   int64
	wait   map[string]chan reply
	err    error // why the connection ended
	events chan Event
	done   chan struct{}
}

type reply struct {
	Result json.RawMessage
	Error  *Error
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
	conn := &Conn{c: c, wait: map[string]chan reply{}, events: make(chan Event, 256), done: make(chan struct{})}
	go conn.read()
	return conn, nil
}

// read dispatches responses to their callers and notifications to Events
// until the connection ends.
func (c *Conn) read() {
	defer close(c.done)
	defer close(c.events)
	r := bufio.NewReaderSize(c.c, 64<<10)
	var err error
	for {
		var line []byte
		if line, err = r.ReadBytes('\n'); err != nil {
			break
		}
		var msg struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
			Result json.RawMessage `json:"result"`
			Error  *Error          `json:"error"`
		}
		if err = json.Unmarshal(line, &msg); err != nil {
			err = fmt.Errorf("daemon: bad message: %w", err)
			break
		}
		if msg.Method == "event" {
			var e Event
			if json.Unmarshal(msg.Params, &e) == nil {
				c.events <- e
			}
			continue
		}
		c.mu.Lock()
		ch := c.wait[string(msg.ID)]
		delete(c.wait, string(msg.ID))
		c.mu.Unlock()
		if ch != nil {
			ch <- reply{msg.Result, msg.Error}
		}
	}
	c.mu.Lock()
	c.err = fmt.Errorf("daemon connection: %w", err)
	for id, ch := range c.wait {
		close(ch)
		delete(c.wait, id)
	}
	c.mu.Unlock()
}

// Events delivers the notifications of this connection's subscriptions; it
// is closed when the connection ends.
func (c *Conn) Events() <-chan Event { return c.events }

// Close closes the connection.
func (c *Conn) Close() error {
	err := c.c.Close()
	go func() { // let the reader finish even if nobody reads Events
		for range c.events {
		}
	}()
	<-c.done
	return err
}

// Call calls method with params and decodes the result into result (if not
// nil). An error the daemon returned is an *Error.
func (c *Conn) Call(ctx context.Context, method string, params, result any) error {
	ch := make(chan reply, 1)
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return c.err
	}
	c.next++
	id := strconv.FormatInt(c.next, 10)
	c.wait[id] = ch
	c.mu.Unlock()
	req := map[string]any{"jsonrpc": "2.0", "method": method, "id": json.RawMessage(id)}
	if params != nil {
		req["params"] = params
	}
	data, err := json.Marshal(req)
	if err != nil {
		return err
	}
	c.wmu.Lock()
	_, err = c.c.Write(append(data, '\n'))
	c.wmu.Unlock()
	if err != nil {
		return err
	}
	select {
	case r, ok := <-ch:
		if !ok {
			c.mu.Lock()
			defer c.mu.Unlock()
			return c.err
		}
		if r.Error != nil {
			return r.Error
		}
		if result == nil {
			return nil
		}
		return json.Unmarshal(r.Result, result)
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.wait, id)
		c.mu.Unlock()
		return ctx.Err()
	}
}
