package sync

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/deaddrop/deaddrop/ratchet"
)

// The largest device list the code can make — five devices with the longest
// names, the most removed devices it names, an epoch's keys for all of them
// and the recovery key — fits a meta message, an announcement and a
// directory chunk; a device invite fits an announcement. (Issue 12, item 8:
// lists grew with every removal until reads failed.)
func TestLargestListFits(t *testing.T) {
	id, _ := ratchet.NewIdentity(rand.Reader)
	long := strings.Repeat("n", 32)
	l := &DeviceList{Account: id.Public().Bytes(), Name: long, Version: 1 << 40, Recovery: id.Public().Bytes(), Epoch: 1 << 30}
	for range MaxDevices {
		dev, _ := newDeviceID(rand.Reader)
		l.Devices = append(l.Devices, Device{ID: dev, Name: long, Identity: id.Public().Bytes(), Added: time.Now().UTC().Truncate(time.Second)})
	}
	for range 3 * maxRemovedListed {
		dev, _ := newDeviceID(rand.Reader)
		l.Removed = append(l.Removed, dev)
		l.remove(dev)
	}
	if len(l.Removed) != maxRemovedListed {
		t.Fatalf("%d removed devices named", len(l.Removed))
	}
	if err := sealEpoch(l, rand.Reader); err != nil {
		t.Fatal(err)
	}
	// Version 4: the removing version records where the removed log ends
	// (a remove removes one device, and so does a restore into a full
	// account: MaxDevices-1 devices stay, itself added).
	l.Ends = map[string]LogEnd{l.Removed[0]: {Size: 1 << 40, Root: bytes.Repeat([]byte{0xff}, 32)}}
	signed, err := signList(id, l)
	if err != nil {
		t.Fatal(err)
	}
	if err := listFits(signed); err != nil {
		t.Fatal(err)
	}
	ann, _ := json.Marshal(&annEntry{List: signed})
	inv, _, _ := ratchet.NewInvite(id, long, deviceInviteTTL, time.Now(), rand.Reader)
	invite, _ := json.Marshal(&annEntry{From: l.Devices[0].ID, For: l.Devices[1].ID, Invite: inv.String()})
	for what, b := range map[string][]byte{"list": signed, "announcement": ann, "device invite": invite} {
		if len(b) > sealedContentMax {
			t.Errorf("%s of %d bytes does not fit a chunk", what, len(b))
		}
	}
	// Version 2's encoding (base64 at each level) is still read.
	body, _ := json.Marshal(l)
	old, _ := json.Marshal(struct{ List, Sig []byte }{body, id.Sign(append([]byte("deaddrop device list\x00"), body...))})
	old = bytes.Replace(bytes.Replace(old, []byte(`"List"`), []byte(`"list"`), 1), []byte(`"Sig"`), []byte(`"sig"`), 1)
	meta, _ := json.Marshal(struct {
		Device  string `json:"device"`
		Account []byte `json:"account"`
		Ann     []byte `json:"ann"`
		List    []byte `json:"list"`
	}{l.Devices[0].ID, id.Public().Bytes(), make([]byte, 32), old})
	if _, got, err := parseMeta(meta); err != nil || got.Version != l.Version {
		t.Fatalf("version 2 meta message: %v", err)
	}
	t.Logf("largest list: %d bytes signed, meta limit %d; device invite %d bytes", len(signed), MaxMessageSize, len(invite))
}
