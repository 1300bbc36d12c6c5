package sync

import (
	"context"
	"encoding/json"
	"io"

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

// CreateV3ForTest makes an account as protocol version 3 did: the first
// device's ratchet identity is the account identity and its list entry has
// no sealing key (a version 3 list). It returns the phrase.
func CreateV3ForTest(dir, name string, tr transport.Transport) (string, error) {
	opts := Options{}
	opts.fill()
	seed := make([]byte, seedSize)
	if _, err := io.ReadFull(opts.Rand, seed); err != nil {
		return "", err
	}
	keys, err := deriveKeys(seed)
	if err != nil {
		return "", err
	}
	st := &accountState{Name: name, Device: keys.firstDev, History: true, Key: keys.history, Identity: keys.identity, AccountKey: keys.identity}
	l := &DeviceList{Account: keys.identity.Public().Bytes(), Name: name, Version: 1, Recovery: keys.recovery.Public().Bytes(),
		Devices: []Device{{ID: keys.firstDev, Name: "first", Identity: keys.identity.Public().Bytes(), Added: opts.Now().UTC()}}}
	if st.List, err = signList(keys.identity, l); err != nil {
		return "", err
	}
	a, err := createAccount(dir, tr, opts, st)
	if err != nil {
		return "", err
	}
	defer a.Close()
	return encodePhrase(seed), a.markDirectoryPending()
}
