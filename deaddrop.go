// Package deaddrop is the client API chat applications import: open an
// account, invite, accept, send, receive, and query history. Messages are
// end-to-end encrypted with a double ratchet and written to fresh secret slots
// of a decentralized store (an embedded on-disk store by default, Swarm or IPFS);
// only the two parties can find or read them, and the sender republishes each
// message until the reader acknowledges it.
//
// A Client is the whole API: Init or Open an account, Invite and Accept,
// Send (SendWith for an idempotent retry), Watch for events (or Receive in a
// loop of your own), History, Unseen and MarkSeen, Changes to resume after a
// restart. Errors are testable with errors.Is against the Err values here.
//
// Stores register themselves like database/sql drivers: the embedded store
// is built in; import _ "github.com/deaddrop/deaddrop/feed/swarm" or
// ".../feed/ipfs" for the others. A program that imports neither links
// neither (nor libp2p).
//
// The packages underneath: feed (stores), ratchet (crypto, pure), sync
// (conversation state, outbox, catch-up), transport (how store operations
// travel); daemon serves a Client to other programs over JSON-RPC.
package deaddrop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	gosync "sync"
	"time"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/sync"
	"github.com/deaddrop/deaddrop/transport"
)

// Re-exported types, so that a chat client needs only this package.
type (
	Message      = sync.Message
	Contact      = sync.Contact
	PollResult   = sync.PollResult
	Query        = sync.Query
	MessageState = sync.MessageState
	Progress     = sync.Progress
	Device       = sync.Device
	Link         = sync.Link
	DeviceInfo   = sync.DeviceInfo
	RestoreStats = sync.RestoreStats
)

// Message states and directions. An outgoing message is Queued (committed,
// not yet accepted by the store), then Stored, then Delivered (a device of
// the contact acknowledged it), then ReadByContact if the contact sends read
// receipts (see Client.SetReadReceipts); an incoming one is Received.
const (
	Queued        = sync.Queued
	Stored        = sync.Stored
	Delivered     = sync.Read
	ReadByContact = sync.PeerRead
	Received      = sync.Received
	Outgoing      = sync.Outgoing
	Incoming      = sync.Incoming
)

// Read is the old name of Delivered: the contact's device has the message,
// which says nothing of a person reading it.
//
// Deprecated: use Delivered.
const Read = Delivered

// MaxMessageSize is the largest message text in bytes (longer than one
// chunk: sent in parts and shown whole).
const MaxMessageSize = sync.MaxTextSize

// Config says where an account keeps its state and which store it talks to.
type Config struct {
	// Store names the backend: "embedded:<dir>" (the default, see
	// DefaultStore), "swarm:<Bee API URL>" or "ipfs:<Kubo RPC URL>". Empty:
	// the store the account was created with.
	Store string
	// Window is the catch-up window (slots fetched in parallel); 0: default.
	Window int
	// Transport, if set, carries store operations instead of a direct
	// connection to Store (for example a mix transport). Client closes it.
	Transport transport.Transport
	// NoHistory creates the account without a history log (Init only).
	// History is on by default: every message is also kept in the
	// account's encrypted log on the store, which is what lets a recovery
	// phrase restore everything and a second device join; whoever learns
	// the phrase can read it all. Off: no phrase, no restore, one device,
	// and messages live only in this device's state.
	NoHistory bool
}

// Client is one account on this device.
type Client struct {
	acct  *sync.Account
	home  string
	store string

	storeMu   gosync.Mutex
	keepStore KeepableStore // the store, opened for signing and lifetimes (keep.go)
	keepMu    gosync.Mutex
	lastPush  time.Time // the last push to keepers by Receive

	recvMu gosync.Mutex // one Receive at a time (Watch, a daemon's read, a caller's)
}

type homeConfig struct {
	Store string `json:"store"`
}

const configFile = "config.json"

// DefaultStore is the embedded store shared by every account of this OS user,
// so that two accounts on one machine (the demo's alice and bob) can talk.
func DefaultStore() string {
	dir := os.Getenv("XDG_DATA_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			home = os.TempDir()
		}
		dir = filepath.Join(home, ".local", "share")
	}
	return "embedded:" + filepath.Join(dir, "deaddrop", "store")
}

// Init creates a new account called name in home.
func Init(ctx context.Context, home, name string, cfg Config) (*Client, error) {
	if cfg.Store == "" {
		cfg.Store = DefaultStore()
	}
	if _, err := os.Stat(filepath.Join(home, configFile)); err == nil {
		return nil, fmt.Errorf("%w (%s)", sync.ErrAccountExists, home)
	}
	tr, err := openTransport(ctx, cfg)
	if err != nil {
		return nil, err
	}
	acct, err := sync.Create(home, name, tr, sync.Options{Window: cfg.Window, NoHistory: cfg.NoHistory})
	if err != nil {
		tr.Close()
		return nil, err
	}
	return finishHome(acct, home, cfg)
}

func finishHome(acct *sync.Account, home string, cfg Config) (*Client, error) {
	if err := writeHomeConfig(home, homeConfig{Store: cfg.Store}); err != nil {
		acct.Close()
		return nil, err
	}
	return &Client{acct: acct, home: home, store: cfg.Store}, nil
}

// Restore makes home a new device of the account whose recovery phrase is
// given, reading everything from the store in cfg (every old device may be
// gone): the whole history, and new sessions with every contact.
func Restore(ctx context.Context, home, phrase, deviceName string, cfg Config) (*Client, *RestoreStats, error) {
	if _, err := sync.ParsePhrase(phrase); err != nil {
		return nil, nil, err // before any store connection
	}
	return newDevice(ctx, home, cfg, func(tr transport.Transport) (*sync.Account, *sync.RestoreStats, error) {
		return sync.Restore(ctx, home, phrase, deviceName, tr, sync.Options{Window: cfg.Window})
	})
}

// JoinDevice makes home a new device of the account whose 'device link'
// printed code: it waits (until ctx ends) for the linking device, which must
// be waiting for the join (Client.WaitLink).
func JoinDevice(ctx context.Context, home, code string, cfg Config) (*Client, *RestoreStats, error) {
	if _, err := sync.ParseLinkCode(code); err != nil {
		return nil, nil, err // before any store connection
	}
	return newDevice(ctx, home, cfg, func(tr transport.Transport) (*sync.Account, *sync.RestoreStats, error) {
		return sync.JoinDevice(ctx, home, code, tr, sync.Options{Window: cfg.Window})
	})
}

func newDevice(ctx context.Context, home string, cfg Config, create func(transport.Transport) (*sync.Account, *sync.RestoreStats, error)) (*Client, *RestoreStats, error) {
	if cfg.Store == "" {
		cfg.Store = DefaultStore()
	}
	if _, err := os.Stat(filepath.Join(home, configFile)); err == nil {
		return nil, nil, fmt.Errorf("%w (%s)", sync.ErrAccountExists, home)
	}
	tr, err := openTransport(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	acct, stats, err := create(tr)
	if err != nil {
		tr.Close()
		return nil, nil, err
	}
	cl, err := finishHome(acct, home, cfg)
	return cl, stats, err
}

// Open opens the account in home.
func Open(ctx context.Context, home string, cfg Config) (*Client, error) {
	hc, err := readHomeConfig(home)
	if err != nil {
		return nil, err
	}
	if cfg.Store == "" {
		cfg.Store = hc.Store
	} else if err := checkStoreExists(cfg.Store); err != nil {
		return nil, err
	}
	tr, err := openTransport(ctx, cfg)
	if err != nil {
		return nil, err
	}
	acct, err := sync.Open(home, tr, sync.Options{Window: cfg.Window})
	if err != nil {
		tr.Close()
		return nil, err
	}
	return &Client{acct: acct, home: home, store: cfg.Store}, nil
}

// Close closes the account and its store.
func (c *Client) Close() error {
	err := c.acct.Close()
	if c.keepStore != nil {
		err = errors.Join(err, c.keepStore.Close())
	}
	return err
}

// Store returns the store specification the client uses.
func (c *Client) Store() string { return c.store }

// Receive fetches everything new and republishes what is due: the one call a
// chat client makes periodically. Concurrent calls (a Watch and a caller's
// Receive, say) run one after the other.
func (c *Client) Receive(ctx context.Context, progress Progress) (*PollResult, error) {
	c.recvMu.Lock()
	defer c.recvMu.Unlock()
	res, perr := c.acct.Poll(ctx, progress)
	_, rerr := c.acct.Republish(ctx)
	_, kerr := c.Keep(ctx, false)
	return res, errors.Join(perr, rerr, kerr)
}

func openTransport(ctx context.Context, cfg Config) (transport.Transport, error) {
	if cfg.Transport != nil {
		return cfg.Transport, nil
	}
	store, err := OpenStore(ctx, cfg.Store)
	if err != nil {
		return nil, err
	}
	return transport.NewDirect(store), nil
}

// OpenStore opens a store from its specification (see Config.Store). The
// embedded store is always available; network backends register themselves
// when their package is imported, like database/sql drivers:
//
//	import _ "github.com/deaddrop/deaddrop/feed/swarm" // swarm:<Bee API URL>
//	import _ "github.com/deaddrop/deaddrop/feed/ipfs"  // ipfs:<Kubo RPC URL>
//
// A program that imports neither links neither (nor libp2p).
func OpenStore(ctx context.Context, spec string) (feed.Store, error) {
	kind, arg, ok := strings.Cut(spec, ":")
	if !ok || arg == "" {
		return nil, fmt.Errorf("store %q: want embedded:<dir>, swarm:<url> or ipfs:<url>", spec)
	}
	open, ok := feed.Lookup(kind)
	if !ok {
		hint := ""
		if kind == "swarm" || kind == "ipfs" {
			hint = fmt.Sprintf(": import _ \"github.com/deaddrop/deaddrop/feed/%s\" to use it", kind)
		}
		return nil, fmt.Errorf("store %q: %w %q (registered: %s)%s", spec, feed.ErrUnknownKind, kind, strings.Join(feed.Kinds(), ", "), hint)
	}
	s, err := open(ctx, arg)
	if kind != "embedded" && errors.Is(err, feed.ErrUnavailable) {
		// The node is down: start anyway, so that messages can be
		// queued; operations fail as unavailable until it answers.
		return feed.Lazy(func(ctx context.Context) (feed.Store, error) { return open(ctx, arg) }), nil
	}
	return s, err
}

// ErrNoStore reports an embedded store directory that does not exist, given
// to Open in place of the account's own store: most likely a typo, which
// would otherwise create an empty store and show an empty account.
var ErrNoStore = errors.New("no store there")

func checkStoreExists(spec string) error {
	dir, ok := strings.CutPrefix(spec, "embedded:")
	if !ok || dir == "" {
		return nil
	}
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("store %q: %w (the directory does not exist; the account's store is in %s)", spec, ErrNoStore, configFile)
	}
	return nil
}

func readHomeConfig(home string) (homeConfig, error) {
	var hc homeConfig
	data, err := os.ReadFile(filepath.Join(home, configFile))
	if errors.Is(err, os.ErrNotExist) {
		return hc, fmt.Errorf("%w: %s", sync.ErrNoAccount, home)
	}
	if err != nil {
		return hc, err
	}
	if err := json.Unmarshal(data, &hc); err != nil || hc.Store == "" {
		return hc, fmt.Errorf("config file %s is damaged (want {\"store\": \"...\"}): %v", filepath.Join(home, configFile), err)
	}
	return hc, nil
}

func writeHomeConfig(home string, hc homeConfig) error {
	data, err := json.MarshalIndent(hc, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(home, configFile+".tmp")
	if err := os.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(home, configFile))
}
