package deaddrop

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	gosync "sync"

	"github.com/deaddrop/deaddrop/attach"
	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/sync"
	"github.com/deaddrop/deaddrop/transport"
)

// Files (issue 16). A file is encrypted in segments under a fresh key
// (package attach, age's STREAM) and uploaded as the store's bulk content;
// a file message (sync.KindFile) carries its manifest, which the ratchet
// encrypts and the outbox republishes until the peer acknowledges it. The
// history log records the manifest, not the file: a restored or joined
// device fetches a file on demand, when the user opens or saves it, for as
// long as the store keeps it.

// Attachment describes a file message's file.
type Attachment struct {
	Name      string // as the sender named it (attach.CheckName: no separators or controls)
	MediaType string
	Size      int64
	SHA256    [32]byte
}

var (
	// ErrNoBulk reports a file send or fetch through a transport that
	// carries no bulk content: the mix transport (see transport.ErrNoBulk
	// for the trade-off).
	ErrNoBulk = transport.ErrNoBulk
	// ErrDamaged reports a file that does not match its manifest (tampered,
	// truncated, a size or hash that lies): nothing is saved.
	ErrDamaged = attach.ErrIntegrity
	// ErrNotAFile reports a message that carries no attachment.
	ErrNotAFile = errors.New("that message carries no file")
	// ErrBadMessageID reports a message ID neither of the form
	// contact:number nor a Message.ID (32 hex digits).
	ErrBadMessageID = errors.New("malformed message ID (want contact:number, as 'history' shows, or a message's 32-hex id)")
)

// MaxFileSize is the largest attachment SendFile sends and a received
// manifest may announce.
const MaxFileSize = attach.DefaultMaxSize

// MessageID names a message in this account's history: contact:local.
// Where a message ID is taken (OpenAttachment, SaveAttachment, Attachment),
// the global Message.ID (32 hex digits) works as well.
func MessageID(m Message) string { return m.Contact + ":" + strconv.FormatUint(m.Local, 10) }

// AttachmentOf returns the attachment a message carries, nil for a text
// message, or an error for a manifest that does not decode.
func AttachmentOf(m Message) (*Attachment, error) {
	if len(m.Attachment) == 0 {
		return nil, nil
	}
	man, err := attach.Parse(m.Attachment)
	if err != nil {
		return nil, err
	}
	return &Attachment{Name: man.Name, MediaType: man.MediaType, Size: man.Size, SHA256: man.SHA256}, nil
}

// SendFile encrypts and uploads what r yields (at most MaxFileSize bytes)
// and sends contact a file message naming it name, of mediaType (empty:
// application/octet-stream), with text as caption (may be empty). r is read
// once, streaming. An upload cut short (cancelled, crashed, killed) leaves a
// journal in the account's home: SendFile again with the same contact,
// name and bytes skips the segments already uploaded. Through a transport
// without bulk content (the mix) it fails with ErrNoBulk before reading r.
func (c *Client) SendFile(ctx context.Context, contact string, r io.Reader, name, mediaType, text string) (Message, error) {
	return c.SendFileProgress(ctx, contact, r, name, mediaType, text, nil)
}

// SendFileProgress is SendFile telling progress the bytes of each segment
// uploaded (possibly concurrently; nil: nothing).
func (c *Client) SendFileProgress(ctx context.Context, contact string, r io.Reader, name, mediaType, text string, progress func(n int64)) (Message, error) {
	store, err := c.bulkStore()
	if err != nil {
		return Message{}, err
	}
	if _, err := c.acct.History(contact, Query{Limit: 1}); err != nil {
		return Message{}, err // an unknown contact, before uploading anything
	}
	journal, err := c.uploadJournal(contact, name)
	if err != nil {
		return Message{}, err
	}
	m, err := attach.Upload(ctx, store, r, name, mediaType, attach.Options{Journal: journal, Progress: progress})
	if err != nil {
		return Message{}, err
	}
	enc, err := m.Marshal()
	if err != nil {
		return Message{}, err
	}
	msg, err := c.acct.SendFile(ctx, contact, enc, text)
	if err == nil || errors.Is(err, sync.ErrNotStored) {
		// The manifest is in the outbox: the journal's key is no longer
		// the only way to the file.
		err = errors.Join(err, attach.RemoveJournal(journal))
	}
	return msg, err
}

// uploadJournal returns the journal path of an upload of name to contact,
// in the account's home (it holds the file's key). Keyed by contact and
// name, not content: a different file sent under the same name to the same
// contact after an interrupted upload reuses that upload's key (its
// segments differ, so none is skipped). Both files go to the same people;
// the key is still never shared with anyone else.
func (c *Client) uploadJournal(contact, name string) (string, error) {
	dir := filepath.Join(c.home, "uploads")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(contact + "\x00" + name))
	return filepath.Join(dir, hex.EncodeToString(sum[:16])+".journal"), nil
}

// OpenAttachment streams the file of message msgID (see MessageID). Every
// segment is authenticated before its bytes are returned, but the whole
// (size and SHA-256) is known good only at the end: a damaged, truncated or
// forged file ends in an error wrapping attach.ErrIntegrity, never in
// io.EOF. To show a file, prefer SaveAttachment, which names it only once
// whole. Close stops the download.
func (c *Client) OpenAttachment(ctx context.Context, msgID string) (io.ReadCloser, *Attachment, error) {
	m, info, err := c.manifest(msgID)
	if err != nil {
		return nil, nil, err
	}
	store, err := c.bulkStore()
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	d := &download{PipeReader: pr, cancel: cancel}
	d.wg.Go(func() {
		pw.CloseWithError(attach.Download(ctx, store, m, pw, attach.Options{MaxSize: MaxFileSize}))
	})
	return d, info, nil
}

// download is OpenAttachment's reader: Close cancels the download and
// waits for it, so that no goroutine outlives the reader.
type download struct {
	*io.PipeReader
	cancel context.CancelFunc
	wg     gosync.WaitGroup
}

func (d *download) Close() error {
	d.cancel()
	d.PipeReader.CloseWithError(context.Canceled)
	d.wg.Wait()
	return nil
}

// SaveAttachment downloads the file of message msgID into dir and returns
// its path. The file appears under its name (made unique: "name (1).ext")
// only once whole and verified; a name cannot reach outside dir. A download
// cut short continues where it stopped when called again. progress, if not
// nil, is told the bytes of each segment saved (possibly concurrently).
func (c *Client) SaveAttachment(ctx context.Context, msgID, dir string, progress func(n int64)) (string, error) {
	m, _, err := c.manifest(msgID)
	if err != nil {
		return "", err
	}
	store, err := c.bulkStore()
	if err != nil {
		return "", err
	}
	return attach.Save(ctx, store, m, dir, attach.Options{MaxSize: MaxFileSize, Progress: progress})
}

// Attachment returns the message msgID and its attachment.
func (c *Client) Attachment(msgID string) (Message, *Attachment, error) {
	msg, err := c.message(msgID)
	if err != nil {
		return Message{}, nil, err
	}
	info, err := AttachmentOf(msg)
	if err == nil && info == nil {
		err = fmt.Errorf("%w: %s", ErrNotAFile, msgID)
	}
	return msg, info, err
}

func (c *Client) manifest(msgID string) (*attach.Manifest, *Attachment, error) {
	msg, info, err := c.Attachment(msgID)
	if err != nil {
		return nil, nil, err
	}
	m, err := attach.Parse(msg.Attachment)
	return m, info, err
}

// message finds a message by its ID: contact:local, or its Message.ID.
func (c *Client) message(msgID string) (Message, error) {
	if isHexID(msgID) {
		return c.acct.MessageByID(msgID)
	}
	contact, n, ok := strings.Cut(msgID, ":")
	local, err := strconv.ParseUint(n, 10, 64)
	if !ok || err != nil || sync.ValidName(contact) != nil {
		return Message{}, fmt.Errorf("%w: %q", ErrBadMessageID, msgID)
	}
	msgs, err := c.acct.History(contact, Query{})
	if err != nil {
		return Message{}, err
	}
	for _, m := range msgs {
		if m.Local == local {
			return m, nil
		}
	}
	return Message{}, fmt.Errorf("%w: %s", ErrNoMessage, msgID)
}

// isHexID reports whether s has the form of a Message.ID.
func isHexID(s string) bool {
	if len(s) != 32 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// bulkStore returns where files go: the store itself when the client talks
// to it directly, ErrNoBulk through the mix.
func (c *Client) bulkStore() (feed.BulkStore, error) {
	return transport.BulkOf(c.acct.Transport())
}
