package sync

import (
	"encoding/json"
	"testing"
	"time"
)

// messageHeader reads direction and state from both stored forms (binary,
// sealed; JSON from before it), text and file records alike.
func TestMessageHeader(t *testing.T) {
	for _, m := range []*messageRecord{
		{Local: 7, Origin: make([]byte, 16), Dir: Outgoing, Seq: 3, Body: "hello", Sent: time.Now(), State: PeerRead},
		{Local: 8, Origin: make([]byte, 16), Dir: Incoming, Seq: 4, Body: "", Attach: []byte("manifest"), Sent: time.Now(), Received: time.Now(), State: Received, Seen: true},
	} {
		js, _ := json.Marshal(m)
		for name, v := range map[string][]byte{"binary": sealValue(m.marshalRecord()), "json": sealValue(js)} {
			dir, state, ok := messageHeader(v)
			if !ok || dir != m.Dir || state != m.State {
				t.Errorf("%s record %d: %v %v %v, want %v %v", name, m.Local, dir, state, ok, m.Dir, m.State)
			}
		}
	}
	if _, _, ok := messageHeader([]byte{messageRecordV1, 0x80}); ok {
		t.Error("a truncated record read as a header")
	}
}
