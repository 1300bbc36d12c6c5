package sync

import (
	"context"

	"github.com/deaddrop/deaddrop/ratchet"
	"github.com/deaddrop/deaddrop/transport"
	bolt "go.etcd.io/bbolt"
)

// SendFile sends a file message: manifest is an attachment manifest encoded
// by package attach (opaque to sync: it is carried, logged and shown, never
// interpreted here), text an optional caption. The file's bulk content must
// already be in the store. It is queued, republished until acknowledged and
// logged to the history like any message.
func (a *Account) SendFile(ctx context.Context, contact string, manifest []byte, text string) (Message, error) {
	if manifest == nil {
		manifest = []byte{}
	}
	return a.send(ctx, contact, &content{Text: text, Attach: manifest}, SendOptions{})
}

// queueContent queues a message's content on one session: one envelope, or
// its parts in consecutive sequence numbers. Only the last envelope is
// indexed to the history entry msg, so that the message counts as stored
// and read once its last part is.
func (a *Account) queueContent(tx *bolt.Tx, c *convRecord, s *ratchet.Session, m *messageRecord) ([]*outboxRecord, error) {
	ct := &content{Text: m.Body, Attach: m.Attach}
	kinds, bodies := ct.split()
	outs := make([]*outboxRecord, 0, len(kinds))
	for i := range kinds {
		out, err := a.queue(tx, c, s, kinds[i], bodies[i], m)
		if err != nil {
			return nil, err
		}
		if i < len(kinds)-1 {
			if err := tx.Bucket(bucketOutIndex).Delete(contactKey(c.Name, out.Seq)); err != nil {
				return nil, err
			}
		}
		outs = append(outs, out)
	}
	return outs, nil
}

// Transport returns the transport the account's store operations go
// through (the root package asks it for bulk content: transport.BulkOf).
func (a *Account) Transport() transport.Transport { return a.tr }
