package daemon

import (
	"encoding/hex"
	"time"

	"github.com/deaddrop/deaddrop"
)

// The JSON schema shared by the daemon's results and the CLI's --json
// output (docs/cli.md). Field names are camelCase; times are RFC 3339;
// enums are lower-case words. Fields are only ever added.

// Message is one message.
type Message struct {
	ID        string     `json:"id"` // the same on every device of both parties
	Contact   string     `json:"contact"`
	Direction string     `json:"direction"` // "incoming" or "outgoing"
	State     string     `json:"state"`     // "queued", "stored", "delivered", "read" (outgoing); "received" (incoming)
	Body      string     `json:"body"`
	Sent      time.Time  `json:"sent"`               // the sender's clock
	Received  *time.Time `json:"received,omitempty"` // our clock, incoming only
	Seen      bool       `json:"seen"`
	Local     uint64     `json:"local"`          // position in this device's history of the conversation
	File      *File      `json:"file,omitempty"` // a file message's file (save fetches it)
}

// File describes a file message's file.
type File struct {
	Name      string `json:"name"`
	MediaType string `json:"mediaType"`
	Size      int64  `json:"size"`
	SHA256    string `json:"sha256"` // hex
}

func fromAttachment(a *deaddrop.Attachment) *File {
	return &File{Name: a.Name, MediaType: a.MediaType, Size: a.Size, SHA256: hex.EncodeToString(a.SHA256[:])}
}

// FromMessage converts a root-package message.
func FromMessage(m deaddrop.Message) Message {
	out := Message{ID: m.ID, Contact: m.Contact, Direction: m.Dir.String(), State: m.State.String(),
		Body: m.Body, Sent: m.Sent.UTC(), Seen: m.Seen, Local: m.Local}
	if !m.Received.IsZero() {
		r := m.Received.UTC()
		out.Received = &r
	}
	if a, err := deaddrop.AttachmentOf(m); err == nil && a != nil {
		out.File = fromAttachment(a)
	}
	return out
}

// FromMessages converts a list (never nil: an empty list is []).
func FromMessages(ms []deaddrop.Message) []Message {
	out := make([]Message, 0, len(ms))
	for _, m := range ms {
		out = append(out, FromMessage(m))
	}
	return out
}

// Contact is one contact. The counts are of the user's messages (text, long
// text, files), never of the protocol messages carrying them (acks, hellos,
// meta).
type Contact struct {
	Name           string    `json:"name"`
	Fingerprint    string    `json:"fingerprint"`
	Sessions       int       `json:"sessions"`       // one per device of theirs
	Unacknowledged int       `json:"unacknowledged"` // sent and not delivered yet
	Created        time.Time `json:"created"`
	Sent           int       `json:"sent"`
	Delivered      int       `json:"delivered"` // of sent: acknowledged by a device of the contact
	Read           int       `json:"read"`      // of sent: seen by the contact (read receipts)
	Received       int       `json:"received"`
}

// FromContacts converts a list.
func FromContacts(cs []deaddrop.Contact) []Contact {
	out := make([]Contact, 0, len(cs))
	for _, c := range cs {
		n := c.Messages
		out = append(out, Contact{Name: c.Name, Fingerprint: c.Fingerprint, Sessions: c.Sessions,
			Unacknowledged: n.Sent - n.Delivered, Created: c.Created.UTC(),
			Sent: n.Sent, Delivered: n.Delivered, Read: n.Read, Received: n.Received})
	}
	return out
}

// Device is one device of the account.
type Device struct {
	ID    string    `json:"id"`
	Name  string    `json:"name"`
	Added time.Time `json:"added"`
	This  bool      `json:"this"` // the device answering
}

// Devices is the account's device list.
type Devices struct {
	Version uint64   `json:"version"`
	Devices []Device `json:"devices"`
}

// FromDevices converts a list.
func FromDevices(ds []deaddrop.DeviceInfo, version uint64) Devices {
	out := Devices{Version: version, Devices: make([]Device, 0, len(ds))}
	for _, d := range ds {
		out.Devices = append(out.Devices, Device{ID: d.ID, Name: d.Name, Added: d.Added.UTC(), This: d.This})
	}
	return out
}

// Invite is a pending invite.
type Invite struct {
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
}

// FromInvites converts a list.
func FromInvites(is []deaddrop.PendingInvite) []Invite {
	out := make([]Invite, 0, len(is))
	for _, i := range is {
		out = append(out, Invite{Name: i.Label, Created: i.Created.UTC(), Expires: i.Expires.UTC()})
	}
	return out
}

// Event is one event of a subscription (the params of an "event"
// notification).
type Event struct {
	Subscription int64    `json:"subscription"`
	Kind         string   `json:"kind"` // "message", "delivered", "read", "joined", "deviceAdded", "deviceRemoved", "problem", "storeError"
	Contact      string   `json:"contact,omitempty"`
	Message      *Message `json:"message,omitempty"`
	Device       *Device  `json:"device,omitempty"` // deviceAdded, deviceRemoved (contact empty: the account's own)
	Error        string   `json:"error,omitempty"`
}

func fromEvent(sub int64, e deaddrop.Event) Event {
	out := Event{Subscription: sub, Contact: e.Contact}
	switch e.Kind {
	case deaddrop.EventMessage:
		out.Kind = "message"
	case deaddrop.EventDelivered:
		out.Kind = "delivered"
	case deaddrop.EventJoined:
		out.Kind = "joined"
	case deaddrop.EventProblem:
		out.Kind = "problem"
	case deaddrop.EventStoreError:
		out.Kind = "storeError"
	case deaddrop.EventReadByContact:
		out.Kind = "read"
	case deaddrop.EventDeviceAdded, deaddrop.EventDeviceRemoved:
		out.Kind = "deviceAdded"
		if e.Kind == deaddrop.EventDeviceRemoved {
			out.Kind = "deviceRemoved"
		}
		out.Device = &Device{ID: e.Device.ID, Name: e.Device.Name, Added: e.Device.Added.UTC()}
	default:
		out.Kind = e.Kind.String()
	}
	if e.Kind == deaddrop.EventMessage || e.Kind == deaddrop.EventDelivered || e.Kind == deaddrop.EventReadByContact {
		m := FromMessage(e.Message)
		out.Message = &m
	}
	if e.Err != nil {
		out.Error = e.Err.Error()
	}
	return out
}

// ReadResult is what read returns: the new messages, shown once.
type ReadResult struct {
	Messages  []Message `json:"messages"`
	Joined    []string  `json:"joined"`
	Delivered []Message `json:"delivered"` // our messages the contact's device newly acknowledged
	Problems  []string  `json:"problems"`
	// StoreError says what could not be fetched or republished (retried at
	// the next read); the messages listed are still right.
	StoreError string `json:"storeError,omitempty"`
}

// NewReadResult is the result of a poll res (nil when none ran) that ended
// with storeErr: who joined, what was delivered, the problems. Messages is
// left empty for the caller: read lists the unseen ones, receive the new.
func NewReadResult(res *deaddrop.PollResult, storeErr error) ReadResult {
	out := ReadResult{Messages: []Message{}, Joined: []string{}, Delivered: []Message{}, Problems: []string{}}
	if res != nil {
		out.Joined = append(out.Joined, res.Joined...)
		out.Delivered = FromMessages(res.Read)
		for _, p := range res.Problems {
			out.Problems = append(out.Problems, p.Error())
		}
	}
	if storeErr != nil {
		out.StoreError = storeErr.Error()
	}
	return out
}

// SendResult is what send returns.
type SendResult struct {
	Message Message `json:"message"`
	// Queued: committed, and sent later (the store did not accept it yet).
	Queued  bool   `json:"queued"`
	Warning string `json:"warning,omitempty"`
}

// Health is what health returns.
type Health struct {
	OK          bool   `json:"ok"`
	Account     string `json:"account"`
	Fingerprint string `json:"fingerprint"`
	Device      string `json:"device"`
	Store       string `json:"store"`
	Version     string `json:"version"`
}

// Change is one entry of the change feed: a message that entered the
// history or changed (stored, delivered, seen), as it stands now.
type Change struct {
	Cursor  uint64  `json:"cursor"`
	Message Message `json:"message"`
}

// ChangesResult is what changes returns: pass Cursor as after next time.
type ChangesResult struct {
	Changes []Change `json:"changes"`
	Cursor  uint64   `json:"cursor"`
}

// SaveResult is what save returns.
type SaveResult struct {
	Path string `json:"path"` // where the file is now, whole and verified
	File File   `json:"file"`
}
