package sync

import (
	"context"
	"encoding/json"

	"github.com/deaddrop/deaddrop/transport"
)

// PhraseAttackerForTest makes, in dir, what someone holding only an
// account's recovery phrase can make without restoring (no new list
// version, nothing the account's devices see): keys derived from the
// phrase, the account's current device list read from the directory with
// HK, and the first device's ID with the account identity as its ratchet
// identity — before protocol version 4 that was exactly the first device.
func PhraseAttackerForTest(ctx context.Context, dir, phrase string, tr transport.Transport) (*Account, error) {
	seed, err := parsePhrase(phrase)
	if err != nil {
		return nil, err
	}
	keys, err := deriveKeys(seed)
	if err != nil {
		return nil, err
	}
	r := &dirReader{get: tr.Get, account: keys.identity.Public(), keys: epochKeys{0: keys.history}, id: keys.recovery, as: "recovery"}
	d, err := r.read(ctx, 0, 0, 0)
	if err != nil {
		return nil, err
	}
	st := &accountState{Name: d.list.Name, Device: keys.firstDev, Identity: keys.identity, AccountKey: keys.identity,
		Key: keys.history, List: d.signed, Directory: d.chunks, Epochs: r.keys} // no log of its own: it would collide with the first device's
	opts := Options{}
	opts.fill()
	return createAccount(dir, tr, opts, st)
}

// ForgedSelfListForTest signs, with the account key a holds, the next
// version of a's list with the account identity as the first device's
// identity (as a version 3 list had it) and reports whether a reader
// accepts it.
func ForgedSelfListForTest(a *Account) error {
	l, err := a.deviceList()
	if err != nil {
		return err
	}
	next := l.successor()
	next.Version++
	next.Devices[0].Identity = a.accountPub.Bytes()
	next.Format = listFormat
	signed, err := signList(a.accountKey, next) // setFormat drops the format…
	if err != nil {
		return err
	}
	if _, err := verifyList(signed, a.accountPub); err != nil {
		return err
	}
	next.Format = listFormat // …so sign it as format 4 by hand
	body, err := json.Marshal(next)
	if err != nil {
		return err
	}
	signed, err = json.Marshal(signedList{List: body, Sig: a.accountKey.Sign(append([]byte("deaddrop device list\x00"), body...))})
	if err != nil {
		return err
	}
	_, err = verifyList(signed, a.accountPub)
	return err
}

// ListFormatForTest returns the format of a's device list and whether every
// device in it has a sealing key.
func ListFormatForTest(a *Account) (int, bool, error) {
	l, err := a.deviceList()
	if err != nil {
		return 0, false, err
	}
	sealed := true
	for _, d := range l.Devices {
		sealed = sealed && len(d.Seal) == 32
	}
	return l.Format, sealed, nil
}

// DeviceIsAccountForTest reports whether a's ratchet identity is its
// account identity (a version 3 first device).
func DeviceIsAccountForTest(a *Account) bool { return a.id.Public() == a.accountPub }
