package sync

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// bucketRestoring holds a restore's or a device join's log entries between
// reading them and applying them, in the order they are applied (contacts,
// then messages by the sender's clock, then state changes; each kind in
// the order read): key rank ‖ sent seconds ‖ sent nanoseconds ‖ read
// sequence. Reading every log first and sorting in memory held the whole
// history at once (about 1 KiB per message); spilled here, a restore's
// memory is bounded by a batch, whatever the size of the history. The
// bucket is emptied as it is applied and removed at the end; it exists only
// while fill runs, in an account that does not exist yet if fill fails.
var bucketRestoring = []byte("restoring")

// restoreBatch is how many entries one transaction of fill applies.
const restoreBatch = 4096

// fill reads the history logs of devices into a new account.
func fill(ctx context.Context, a *Account, devices []string) (*RestoreStats, error) {
	stats := &RestoreStats{logBlocks: map[string]int{}}
	if err := a.db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketRestoring)
		return err
	}); err != nil {
		return nil, err
	}
	var seq uint64
	for _, id := range devices {
		n, err := a.readLog(ctx, a.fetchAll, id, func(tx *bolt.Tx, entries []*logEntry) error {
			b := tx.Bucket(bucketRestoring)
			for _, e := range entries {
				v, err := json.Marshal(e)
				if err != nil {
					return err
				}
				seq++
				if err := b.Put(restoreKey(e, seq), v); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		stats.Devices++
		stats.Blocks += n
		stats.logBlocks[id] = n
	}
	for more := true; more; {
		err := a.db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketRestoring)
			contacts := contactCache{}
			c := b.Cursor()
			var done [][]byte
			k, v := c.First()
			for ; k != nil && len(done) < restoreBatch; k, v = c.Next() {
				e := new(logEntry)
				if err := json.Unmarshal(v, e); err != nil {
					return fmt.Errorf("%w: restore staging: %v", ErrCorruptState, err)
				}
				if err := applyEntry(tx, e, contacts); err != nil {
					return err
				}
				done = append(done, k)
			}
			more = k != nil
			for _, k := range done {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
			return contacts.save(tx)
		})
		if err != nil {
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	err := a.db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketRestoring); err != nil {
			return err
		}
		stats.Contacts = countKeys(tx.Bucket(bucketContacts))
		stats.Messages = countKeys(tx.Bucket(bucketMessages))
		return nil
	})
	return stats, err
}

// restoreKey orders e as applySorted does, read order breaking ties.
func restoreKey(e *logEntry, seq uint64) []byte {
	k := make([]byte, 1, 21)
	switch e.Type {
	case "msg":
		k[0] = 1
	case "state":
		k[0] = 2
	}
	var secs uint64
	var nanos uint32
	if e.Type == "msg" {
		secs, nanos = uint64(e.Sent.Unix())^1<<63, uint32(e.Sent.Nanosecond())
	}
	k = binary.BigEndian.AppendUint64(k, secs)
	k = binary.BigEndian.AppendUint32(k, nanos)
	return binary.BigEndian.AppendUint64(k, seq)
}
