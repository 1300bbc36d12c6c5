package deaddrop

import (
	"context"
	"errors"
	"time"

	"github.com/deaddrop/deaddrop/sync"
)

// The Client's own methods: what a chat application calls. Each is a thin
// wrapper over the account's durable state (package sync); a Client is safe
// for concurrent use by several goroutines.

// More re-exported types.
type (
	// Direction says whether a message was sent or received; see Outgoing
	// and Incoming.
	Direction = sync.Direction
	// PendingInvite is an invite issued and not yet used.
	PendingInvite = sync.PendingInvite
	// OutboxEntry is a message the contact has not acknowledged yet.
	OutboxEntry = sync.OutboxEntry
	// MessageProof shows that a message is in its device's history log.
	MessageProof = sync.MessageProof
	// LogHead is the head of one device's history log.
	LogHead = sync.LogHead
)

// SendOptions tunes SendWith.
type SendOptions struct {
	// ClientID, if set, makes the send idempotent, like a Matrix txnId: a
	// send to the same contact repeating a ClientID (a retry after an error,
	// a timeout or a crash) returns the message the first one created, in
	// its current state, and sends nothing new. The same ClientID with a
	// different body is ErrClientIDReused. At most MaxClientIDSize bytes.
	// This device remembers the IDs it saw; other devices of the account
	// do not.
	ClientID string
}

// MaxClientIDSize is the longest SendOptions.ClientID in bytes.
const MaxClientIDSize = sync.MaxClientIDSize

// Name returns the account's name.
func (c *Client) Name() string { return c.acct.Name() }

// Fingerprint returns the account identity's fingerprint, for comparing out
// of band with what a contact sees.
func (c *Client) Fingerprint() string { return c.acct.Fingerprint() }

// RecoveryPhrase returns the phrase that restores the account on a new
// device; empty when the account keeps no history or this device was linked.
func (c *Client) RecoveryPhrase() string { return c.acct.RecoveryPhrase() }

// Send queues body for contact and tries to store it at once; see SendWith.
func (c *Client) Send(ctx context.Context, contact, body string) (Message, error) {
	return c.SendWith(ctx, contact, body, SendOptions{})
}

// SendWith sends body to contact: one copy for each of the contact's devices
// this account has a session with. The message is committed to this
// device's state before any network round, so nothing is lost to a crash or
// a store failure; Receive republishes it until the contact acknowledges it.
//
// The outcome, exactly:
//   - nil error: the store accepted at least one copy (State Stored).
//   - an error wrapping ErrNotStored: the message is committed and will be
//     sent (the returned Message has its ID); do not send it again, or do so
//     with the same ClientID.
//   - any other error (ErrUnknownContact, ErrEmptyMessage, a cancelled
//     ctx…): nothing was committed and nothing will be sent.
//
// A ctx already done when SendWith is called returns ctx.Err() and commits
// nothing. A ctx ending during the put (after the commit) returns an error
// wrapping both ErrNotStored and ctx.Err(): the message goes out later.
func (c *Client) SendWith(ctx context.Context, contact, body string, opts SendOptions) (Message, error) {
	return c.acct.SendWith(ctx, contact, body, sync.SendOptions{ClientID: opts.ClientID})
}

// Invite issues a single-use invite for the person to be called label (the
// contact's name here, once they accept) and returns its text, to give them
// by any channel. It is valid for 7 days; see InviteFor.
func (c *Client) Invite(label string) (string, error) { return c.acct.Invite(label) }

// InviteFor is Invite with the invite valid for ttl (0: 7 days).
func (c *Client) InviteFor(label string, ttl time.Duration) (string, error) {
	return c.acct.InviteFor(label, ttl)
}

// CancelInvite withdraws the pending invite for label.
func (c *Client) CancelInvite(label string) error { return c.acct.CancelInvite(label) }

// PendingInvites lists the invites issued and not used yet.
func (c *Client) PendingInvites() ([]PendingInvite, error) { return c.acct.PendingInvites() }

// Accept accepts an invite and names the new contact name (empty: the name
// the inviter gave). It returns the contact's name. No round trip is
// needed: the new contact can be written to at once.
func (c *Client) Accept(ctx context.Context, invite, name string) (string, error) {
	return c.acct.Accept(ctx, invite, name)
}

// Contacts lists the account's contacts.
func (c *Client) Contacts() ([]Contact, error) { return c.acct.Contacts() }

// History returns the messages of the conversation with contact that match
// q, oldest first.
func (c *Client) History(contact string, q Query) ([]Message, error) {
	return c.acct.History(contact, q)
}

// MarkSeen marks incoming messages as shown to the user: unseen queries and
// Watch skip them from then on, on every device of the account.
func (c *Client) MarkSeen(msgs []Message) error { return c.acct.MarkSeen(msgs) }

// Poll fetches what is new from the store (messages, receipts, contacts'
// new devices) without republishing; most callers want Receive or Watch.
func (c *Client) Poll(ctx context.Context, progress Progress) (*PollResult, error) {
	return c.acct.Poll(ctx, progress)
}

// Republish puts again the unacknowledged messages that are due, and
// returns how many it tried. Receive does it.
func (c *Client) Republish(ctx context.Context) (int, error) { return c.acct.Republish(ctx) }

// Outbox lists the sent messages the contact has not acknowledged.
func (c *Client) Outbox() ([]OutboxEntry, error) { return c.acct.Outbox() }

// Devices lists the account's devices, and the device list version.
func (c *Client) Devices() ([]DeviceInfo, uint64, error) { return c.acct.Devices() }

// DeviceID returns this device's ID (hex).
func (c *Client) DeviceID() string { return c.acct.DeviceID() }

// LinkDevice starts linking a new device called name: the Link's Code,
// valid for ttl, is what JoinDevice takes on the new device, and WaitLink
// waits for it. It must run on a device holding the account key.
func (c *Client) LinkDevice(ctx context.Context, name string, ttl time.Duration) (*Link, error) {
	return c.acct.LinkDevice(ctx, name, ttl)
}

// WaitLink waits for the device a Link was made for to join, shows it to
// confirm (its name and fingerprint; an error declines it), and adds it to
// the account. Nothing picks a join up later: a link not waited for is void.
func (c *Client) WaitLink(ctx context.Context, lk *Link, confirm func(*Device) error) (*Device, error) {
	return c.acct.WaitLink(ctx, lk, confirm)
}

// DeviceFingerprint returns this device's own identity fingerprint, which a
// linking device shows to confirm the join.
func (c *Client) DeviceFingerprint() string { return c.acct.DeviceFingerprint() }

// RemoveDevice removes a device (by ID or name) from the account.
func (c *Client) RemoveDevice(ctx context.Context, which string) (*Device, error) {
	return c.acct.RemoveDevice(ctx, which)
}

// ProveMessage proves that m is in its device's history log.
func (c *Client) ProveMessage(ctx context.Context, m Message) (*MessageProof, error) {
	return c.acct.ProveMessage(ctx, m)
}

// VerifyMessageProof checks a proof ProveMessage made.
func (c *Client) VerifyMessageProof(m Message, p *MessageProof) error {
	return c.acct.VerifyMessageProof(m, p)
}

// LogHeads returns the head of every history log this device has read or
// written.
func (c *Client) LogHeads() ([]LogHead, error) { return c.acct.LogHeads() }

// RepublishAll puts every unacknowledged message and kept chunk again, due
// or not (after the store lost data), and returns how many it tried.
func (c *Client) RepublishAll(ctx context.Context) (int, error) { return c.acct.RepublishAll(ctx) }

// Unseen returns the incoming messages not yet marked seen, of the given
// contacts (none: every contact), per contact in order. Show them, then
// MarkSeen them. An error (an unknown contact, a damaged record) comes with
// every message that could be read.
func (c *Client) Unseen(contacts ...string) ([]Message, error) {
	if len(contacts) == 0 {
		all, err := c.acct.Contacts()
		if err != nil {
			return nil, err
		}
		for _, ct := range all {
			contacts = append(contacts, ct.Name)
		}
	}
	var out []Message
	var errs []error
	for _, name := range contacts {
		msgs, err := c.acct.History(name, Query{UnseenOnly: true})
		out = append(out, msgs...) // with a damaged record, the readable rest
		if err != nil {
			errs = append(errs, err)
		}
	}
	return out, errors.Join(errs...)
}

// Change is a message that entered the history or changed (stored,
// delivered, seen), with the cursor naming that change.
type Change = sync.Change

// Changes returns what changed after cursor after (0: from the start),
// oldest first, at most limit entries (0: 1000), each message once as it
// stands now, and the cursor to pass next time. A client keeps the cursor
// (with its own data) and resumes from it after a restart or a dropped
// connection: together with Watch it misses nothing, delivery receipts
// included. The feed is this device's; it starts with the first change
// made after this version of deaddrop opened the account.
func (c *Client) Changes(after uint64, limit int) ([]Change, uint64, error) {
	return c.acct.Changes(after, limit)
}

// LastChange returns the cursor of the latest change: Changes after it
// lists only what happens from now on.
func (c *Client) LastChange() (uint64, error) { return c.acct.LastChange() }

// SetReadReceipts turns sending read receipts on or off (off by default, as
// they tell the contact when you read): when on, MarkSeen (and so Watch and
// read) tells the contact's devices which of their messages you have seen,
// and they show them as ReadByContact. Receipts contacts send are shown
// whatever this says. The setting is this device's.
func (c *Client) SetReadReceipts(on bool) error { return c.acct.SetReadReceipts(on) }

// ReadReceipts reports whether this device sends read receipts.
func (c *Client) ReadReceipts() (bool, error) { return c.acct.ReadReceipts() }

// ContactDevices is a contact's devices as the newest signed device list of
// theirs known here says (Version 0: none arrived yet).
type ContactDevices = sync.ContactDevices

// ContactDevices returns every contact's devices, sorted by contact name, as
// their newest device list known here says (a poll learns newer ones).
func (c *Client) ContactDevices() ([]ContactDevices, error) { return c.acct.AllContactDevices() }
