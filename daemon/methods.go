package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"os"
	"path/filepath"
	"strings"
	gosync "sync"
	"time"

	"github.com/deaddrop/deaddrop"
	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/internal/duration"
)

// Error is a JSON-RPC error object.
type Error struct {
	Code    int        `json:"code"`
	Message string     `json:"message"`
	Data    *ErrorData `json:"data,omitempty"`
}

// ErrorData says which error it was, as a stable word.
type ErrorData struct {
	Reason string `json:"reason"`
}

func (e *Error) Error() string { return e.Message }

// Error codes: JSON-RPC 2.0's, then this daemon's (-32000 to -32099, the
// range the specification leaves to implementations).
const (
	CodeParse          = -32700
	CodeInvalidRequest = -32600
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602
	CodeInternal       = -32603

	CodeUnknownContact = -32001 // data.reason "unknownContact"
	CodeNameInUse      = -32002 // "nameInUse"
	CodeBadInvite      = -32003 // "inviteUsed", "inviteTaken", "badInvite"
	CodeBadMessage     = -32004 // "emptyMessage", "messageTooLarge", "clientIdReused"
	CodeUnavailable    = -32005 // "storeUnavailable": the store does not answer (retry later)
	CodeNotPermitted   = -32006 // "noHistory", "noAccountKey", "deviceRemoved", "noBulk"
	CodeNoMessage      = -32007 // "noMessage", "notAFile": save of an ID that names no file message
	CodeDamaged        = -32008 // "damaged": the file on the store is not the one its message describes; nothing saved
)

// toError maps an error from the root package to a JSON-RPC error.
func toError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	for _, m := range []struct {
		target error
		code   int
		reason string
	}{
		{deaddrop.ErrUnknownContact, CodeUnknownContact, "unknownContact"},
		{deaddrop.ErrNameInUse, CodeNameInUse, "nameInUse"},
		{deaddrop.ErrInviteUsed, CodeBadInvite, "inviteUsed"},
		{deaddrop.ErrInviteTaken, CodeBadInvite, "inviteTaken"},
		{deaddrop.ErrEmptyMessage, CodeBadMessage, "emptyMessage"},
		{deaddrop.ErrMessageTooLarge, CodeBadMessage, "messageTooLarge"},
		{deaddrop.ErrClientIDReused, CodeBadMessage, "clientIdReused"},
		{feed.ErrUnavailable, CodeUnavailable, "storeUnavailable"},
		{deaddrop.ErrNoHistory, CodeNotPermitted, "noHistory"},
		{deaddrop.ErrNoAccountKey, CodeNotPermitted, "noAccountKey"},
		{deaddrop.ErrDeviceRemoved, CodeNotPermitted, "deviceRemoved"},
		{deaddrop.ErrBadMessageID, CodeInvalidParams, "invalidParams"},
		{deaddrop.ErrNoMessage, CodeNoMessage, "noMessage"},
		{deaddrop.ErrNotAFile, CodeNoMessage, "notAFile"},
		{deaddrop.ErrNoBulk, CodeNotPermitted, "noBulk"},
		{deaddrop.ErrDamaged, CodeDamaged, "damaged"},
	} {
		if errors.Is(err, m.target) {
			return &Error{Code: m.code, Message: err.Error(), Data: &ErrorData{Reason: m.reason}}
		}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &Error{Code: CodeInternal, Message: err.Error(), Data: &ErrorData{Reason: "cancelled"}}
	}
	return &Error{Code: CodeInternal, Message: err.Error(), Data: &ErrorData{Reason: "internal"}}
}

func invalidParams(format string, a ...any) *Error {
	return &Error{Code: CodeInvalidParams, Message: "invalid params: " + fmt.Sprintf(format, a...), Data: &ErrorData{Reason: "invalidParams"}}
}

// params decodes a method's params (an object; absent: the zero value),
// refusing unknown fields so that a typo is not silently ignored.
func params(raw json.RawMessage, v any) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return invalidParams("%v", err)
	}
	return nil
}

func need(field, v string) error {
	if v == "" {
		return invalidParams("%s is required", field)
	}
	return nil
}

// timeParam parses since/until: an RFC 3339 time, or a duration ago.
func timeParam(name, s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := duration.Parse(s)
	if err != nil {
		return time.Time{}, invalidParams("%s: %v (or an RFC 3339 time)", name, err)
	}
	return now.Add(-d), nil
}

// call runs one method.
func (c *conn) call(ctx context.Context, wg *gosync.WaitGroup, method string, raw json.RawMessage) (any, error) {
	run, ok := methods[method]
	if !ok {
		return nil, &Error{Code: CodeMethodNotFound, Message: "method not found: " + method, Data: &ErrorData{Reason: "methodNotFound"}}
	}
	return run(c, ctx, wg, raw)
}

// methods are the daemon's JSON-RPC methods, by name: each decodes its
// params and runs over the connection's client.
var methods = map[string]func(c *conn, ctx context.Context, wg *gosync.WaitGroup, raw json.RawMessage) (any, error){
	"health":       (*conn).rpcHealth,
	"send":         (*conn).rpcSend,
	"sendFile":     (*conn).rpcSendFile,
	"save":         (*conn).rpcSave,
	"read":         (*conn).rpcRead,
	"receive":      (*conn).rpcReceive,
	"history":      (*conn).rpcHistory,
	"contacts":     (*conn).rpcContacts,
	"invite":       (*conn).rpcInvite,
	"invites":      (*conn).rpcInvites,
	"cancelInvite": (*conn).rpcCancelInvite,
	"accept":       (*conn).rpcAccept,
	"devices":      (*conn).rpcDevices,
	"changes":      (*conn).rpcChanges,
	"settings":     (*conn).rpcSettings,
	"subscribe":    (*conn).rpcSubscribe,
	"unsubscribe":  (*conn).rpcUnsubscribe,
}

func (c *conn) rpcHealth(ctx context.Context, wg *gosync.WaitGroup, raw json.RawMessage) (any, error) {
	cl := c.s.cl
	if err := params(raw, &struct{}{}); err != nil {
		return nil, err
	}
	return Health{OK: true, Account: cl.Name(), Fingerprint: cl.Fingerprint(), Device: cl.DeviceID(), Store: cl.Store(), Version: c.s.opts.Version}, nil
}

func (c *conn) rpcSend(ctx context.Context, wg *gosync.WaitGroup, raw json.RawMessage) (any, error) {
	cl := c.s.cl
	var p struct {
		Contact  string `json:"contact"`
		Body     string `json:"body"`
		ClientID string `json:"clientId"`
	}
	if err := params(raw, &p); err != nil {
		return nil, err
	}
	if err := need("contact", p.Contact); err != nil {
		return nil, err
	}
	m, err := cl.SendWith(ctx, p.Contact, p.Body, deaddrop.SendOptions{ClientID: p.ClientID})
	if errors.Is(err, deaddrop.ErrNotStored) {
		return SendResult{Message: FromMessage(m), Queued: true, Warning: err.Error()}, nil
	}
	if err != nil {
		return nil, err
	}
	res := SendResult{Message: FromMessage(m)}
	if _, err := cl.Keep(ctx, true); err != nil {
		res.Warning = "keepers not updated (retried on every read): " + err.Error()
	}
	return res, nil
}

func (c *conn) rpcSendFile(ctx context.Context, wg *gosync.WaitGroup, raw json.RawMessage) (any, error) {
	cl := c.s.cl
	var p struct {
		Contact   string `json:"contact"`
		Path      string `json:"path"`
		Name      string `json:"name"`
		MediaType string `json:"mediaType"`
		Text      string `json:"text"`
	}
	if err := params(raw, &p); err != nil {
		return nil, err
	}
	if err := need("contact", p.Contact); err != nil {
		return nil, err
	}
	if err := need("path", p.Path); err != nil {
		return nil, err
	}
	return sendFile(ctx, cl, p.Contact, p.Path, p.Name, p.MediaType, p.Text)
}

func (c *conn) rpcSave(ctx context.Context, wg *gosync.WaitGroup, raw json.RawMessage) (any, error) {
	cl := c.s.cl
	var p struct {
		ID  string `json:"id"`
		Dir string `json:"dir"`
	}
	if err := params(raw, &p); err != nil {
		return nil, err
	}
	if err := need("id", p.ID); err != nil {
		return nil, err
	}
	if err := need("dir", p.Dir); err != nil {
		return nil, err
	}
	if !filepath.IsAbs(p.Dir) {
		return nil, invalidParams("dir must be an absolute path on the daemon's machine")
	}
	_, info, err := cl.Attachment(p.ID)
	if err != nil {
		return nil, err
	}
	path, err := cl.SaveAttachment(ctx, p.ID, p.Dir, nil)
	if err != nil {
		return nil, err
	}
	return SaveResult{Path: path, File: *fromAttachment(info)}, nil
}

func (c *conn) rpcRead(ctx context.Context, wg *gosync.WaitGroup, raw json.RawMessage) (any, error) {
	cl := c.s.cl
	var p struct {
		Contact string `json:"contact"`
	}
	if err := params(raw, &p); err != nil {
		return nil, err
	}
	var only []string
	if p.Contact != "" {
		only = []string{p.Contact}
	}
	out := NewReadResult(cl.Receive(ctx, nil))
	msgs, err := cl.Unseen(only...)
	if err != nil {
		return nil, err
	}
	if err := cl.MarkSeen(msgs); err != nil {
		return nil, err
	}
	out.Messages = FromMessages(msgs)
	return out, nil
}

func (c *conn) rpcReceive(ctx context.Context, wg *gosync.WaitGroup, raw json.RawMessage) (any, error) {
	cl := c.s.cl
	// One poll and republish, marking nothing seen: for clients that
	// follow changes (read marks what it returns as seen).
	if err := params(raw, &struct{}{}); err != nil {
		return nil, err
	}
	res, rerr := cl.Receive(ctx, nil)
	out := NewReadResult(res, rerr)
	if res != nil {
		out.Messages = FromMessages(res.New)
	}
	return out, nil
}

func (c *conn) rpcHistory(ctx context.Context, wg *gosync.WaitGroup, raw json.RawMessage) (any, error) {
	cl := c.s.cl
	var p struct {
		Contact string `json:"contact"`
		Since   string `json:"since"`
		Until   string `json:"until"`
		Limit   int    `json:"limit"`
	}
	if err := params(raw, &p); err != nil {
		return nil, err
	}
	if err := need("contact", p.Contact); err != nil {
		return nil, err
	}
	if p.Limit < 0 {
		return nil, invalidParams("limit is negative")
	}
	now := time.Now()
	q := deaddrop.Query{Limit: p.Limit}
	var err error
	if q.Since, err = timeParam("since", p.Since, now); err != nil {
		return nil, err
	}
	if q.Until, err = timeParam("until", p.Until, now); err != nil {
		return nil, err
	}
	msgs, err := cl.History(p.Contact, q)
	if err != nil {
		return nil, err
	}
	return map[string]any{"messages": FromMessages(msgs)}, nil
}

func (c *conn) rpcContacts(ctx context.Context, wg *gosync.WaitGroup, raw json.RawMessage) (any, error) {
	cl := c.s.cl
	if err := params(raw, &struct{}{}); err != nil {
		return nil, err
	}
	cs, err := cl.Contacts()
	if err != nil {
		return nil, err
	}
	return map[string]any{"contacts": FromContacts(cs)}, nil
}

func (c *conn) rpcInvite(ctx context.Context, wg *gosync.WaitGroup, raw json.RawMessage) (any, error) {
	cl := c.s.cl
	var p struct {
		Name string `json:"name"`
		TTL  string `json:"ttl"`
	}
	if err := params(raw, &p); err != nil {
		return nil, err
	}
	if err := need("name", p.Name); err != nil {
		return nil, err
	}
	var ttl time.Duration
	if p.TTL != "" {
		d, err := duration.Parse(p.TTL)
		if err != nil || d == 0 {
			return nil, invalidParams("ttl: want a positive duration such as 1d or 36h")
		}
		ttl = d
	}
	text, err := cl.InviteFor(p.Name, ttl)
	if err != nil {
		return nil, err
	}
	return map[string]any{"invite": text, "name": p.Name}, nil
}

func (c *conn) rpcInvites(ctx context.Context, wg *gosync.WaitGroup, raw json.RawMessage) (any, error) {
	cl := c.s.cl
	if err := params(raw, &struct{}{}); err != nil {
		return nil, err
	}
	is, err := cl.PendingInvites()
	if err != nil {
		return nil, err
	}
	return map[string]any{"invites": FromInvites(is)}, nil
}

func (c *conn) rpcCancelInvite(ctx context.Context, wg *gosync.WaitGroup, raw json.RawMessage) (any, error) {
	cl := c.s.cl
	var p struct {
		Name string `json:"name"`
	}
	if err := params(raw, &p); err != nil {
		return nil, err
	}
	if err := need("name", p.Name); err != nil {
		return nil, err
	}
	return nil, cl.CancelInvite(p.Name)
}

func (c *conn) rpcAccept(ctx context.Context, wg *gosync.WaitGroup, raw json.RawMessage) (any, error) {
	cl := c.s.cl
	var p struct {
		Invite string `json:"invite"`
		Name   string `json:"name"`
	}
	if err := params(raw, &p); err != nil {
		return nil, err
	}
	if err := need("invite", p.Invite); err != nil {
		return nil, err
	}
	name, err := cl.Accept(ctx, strings.TrimSpace(p.Invite), p.Name)
	if err != nil {
		return nil, err
	}
	return map[string]any{"contact": name}, nil
}

func (c *conn) rpcDevices(ctx context.Context, wg *gosync.WaitGroup, raw json.RawMessage) (any, error) {
	cl := c.s.cl
	if err := params(raw, &struct{}{}); err != nil {
		return nil, err
	}
	ds, v, err := cl.Devices()
	if err != nil {
		return nil, err
	}
	return FromDevices(ds, v), nil
}

func (c *conn) rpcChanges(ctx context.Context, wg *gosync.WaitGroup, raw json.RawMessage) (any, error) {
	cl := c.s.cl
	var p struct {
		After  uint64 `json:"after"`
		Limit  int    `json:"limit"`
		Latest bool   `json:"latest"` // only the current cursor
	}
	if err := params(raw, &p); err != nil {
		return nil, err
	}
	if p.Limit < 0 {
		return nil, invalidParams("limit is negative")
	}
	if p.Latest {
		n, err := cl.LastChange()
		if err != nil {
			return nil, err
		}
		return ChangesResult{Changes: []Change{}, Cursor: n}, nil
	}
	chs, next, err := cl.Changes(p.After, p.Limit)
	if err != nil {
		return nil, err
	}
	out := ChangesResult{Changes: make([]Change, 0, len(chs)), Cursor: next}
	for _, ch := range chs {
		out.Changes = append(out.Changes, Change{Cursor: ch.Cursor, Message: FromMessage(ch.Message)})
	}
	return out, nil
}

func (c *conn) rpcSettings(ctx context.Context, wg *gosync.WaitGroup, raw json.RawMessage) (any, error) {
	cl := c.s.cl
	var p struct {
		ReadReceipts *bool `json:"readReceipts"`
	}
	if err := params(raw, &p); err != nil {
		return nil, err
	}
	if p.ReadReceipts != nil {
		if err := cl.SetReadReceipts(*p.ReadReceipts); err != nil {
			return nil, err
		}
	}
	on, err := cl.ReadReceipts()
	if err != nil {
		return nil, err
	}
	return map[string]any{"readReceipts": on}, nil
}

func (c *conn) rpcSubscribe(ctx context.Context, wg *gosync.WaitGroup, raw json.RawMessage) (any, error) {
	if c.http {
		return nil, &Error{Code: CodeMethodNotFound, Message: "subscribe is not a method over HTTP: GET /events streams the events (server-sent events)", Data: &ErrorData{Reason: "methodNotFound"}}
	}
	var p struct {
		Contacts []string `json:"contacts"`
		Every    string   `json:"every"`
	}
	if err := params(raw, &p); err != nil {
		return nil, err
	}
	opts := deaddrop.WatchOptions{Contacts: p.Contacts}
	if p.Every != "" {
		d, err := duration.Parse(p.Every)
		if err != nil || d < minEvery {
			return nil, invalidParams("every: want a duration of at least %v", minEvery)
		}
		opts.Every = d
	}
	return map[string]any{"subscription": c.subscribe(wg, opts)}, nil
}

func (c *conn) rpcUnsubscribe(ctx context.Context, wg *gosync.WaitGroup, raw json.RawMessage) (any, error) {
	var p struct {
		Subscription int64 `json:"subscription"`
	}
	if err := params(raw, &p); err != nil {
		return nil, err
	}
	if !c.unsubscribe(p.Subscription) {
		return nil, invalidParams("no subscription %d on this connection", p.Subscription)
	}
	return nil, nil
}

// sendFile sends the file at path (on the daemon's machine) as the CLI's
// send --file does: name defaults to the file's, mediaType to its
// extension's.
func sendFile(ctx context.Context, cl *deaddrop.Client, contact, path, name, mediaType, text string) (any, error) {
	if !filepath.IsAbs(path) {
		return nil, invalidParams("path must be an absolute path on the daemon's machine")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, invalidParams("%v", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, invalidParams("%s is not a regular file", path)
	}
	if st.Size() > deaddrop.MaxFileSize {
		return nil, &Error{Code: CodeBadMessage, Message: fmt.Sprintf("%s has %d bytes: files of at most %d MiB can be sent", path, st.Size(), deaddrop.MaxFileSize>>20),
			Data: &ErrorData{Reason: "fileTooLarge"}}
	}
	if name == "" {
		name = filepath.Base(path)
	}
	if mediaType == "" {
		mediaType, _, _ = strings.Cut(mime.TypeByExtension(filepath.Ext(name)), ";")
	}
	m, err := cl.SendFile(ctx, contact, f, name, mediaType, text)
	if errors.Is(err, deaddrop.ErrNotStored) {
		return SendResult{Message: FromMessage(m), Queued: true, Warning: err.Error()}, nil
	}
	if err != nil {
		return nil, err
	}
	res := SendResult{Message: FromMessage(m)}
	if _, err := cl.Keep(ctx, true); err != nil {
		res.Warning = "keepers not updated (retried on every read): " + err.Error()
	}
	return res, nil
}
