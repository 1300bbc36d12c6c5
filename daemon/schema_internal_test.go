package daemon

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/deaddrop/deaddrop"
)

// Device events go out as "deviceAdded"/"deviceRemoved" with the device;
// contact is empty for the account's own devices.
func TestDeviceEventNotification(t *testing.T) {
	d := deaddrop.Device{ID: "0123456789abcdef", Name: "phone", Added: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	for kind, want := range map[deaddrop.EventKind]string{deaddrop.EventDeviceAdded: "deviceAdded", deaddrop.EventDeviceRemoved: "deviceRemoved"} {
		for _, contact := range []string{"", "bob"} {
			e := fromEvent(7, deaddrop.Event{Kind: kind, Contact: contact, Device: d})
			data, err := json.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			s := string(data)
			if e.Kind != want || e.Device == nil || e.Device.ID != d.ID || e.Message != nil ||
				!strings.Contains(s, `"device":{"id":"0123456789abcdef","name":"phone","added":"2026-01-02T03:04:05Z"`) ||
				strings.Contains(s, `"contact"`) != (contact != "") {
				t.Fatalf("%v (contact %q): %s", kind, contact, s)
			}
		}
	}
}
