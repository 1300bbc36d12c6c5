package swarm

import (
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"testing"

	"github.com/deaddrop/deaddrop/feed"
	"github.com/deaddrop/deaddrop/feed/feedtest"
	"github.com/deaddrop/deaddrop/internal/fuzzseed"
)

var update = flag.Bool("update", false, "rewrite the fuzz seed corpus in testdata/fuzz")

// Bee's SOC test vector (pkg/soc/soc_test.go): id = 32 zero bytes, the
// wrapped chunk is "foo", owner 0x8d37…e632.
const (
	beeOwner      = "8d3766440f0d7b949a5e32995d09619a7f86e632"
	beeSOCAddress = "9d453ebb73b2fedaaf44ceddcf7a0aa37f3e3d6453fea5841c31f0ea6d61dc85"
	beeCACAddress = "2387e8e7d8a48c2a9339c97c1dc3461a9a7aa07e994c5cb8b38fd7c1b3e6ea48"
	beeSignature  = "5acd384febc133b7b245e5ddc62d82d2cded9182d2716126cd8844509af65a053deb418208027f548e3e88343af6f84a8772fb3cebc0a1833a0ea7ec0c1348311b"
)

func mustHex(t *testing.T, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBeeSOCVector(t *testing.T) {
	var id [32]byte
	var ownerAddr [20]byte
	copy(ownerAddr[:], mustHex(t, beeOwner))
	cac := bmtHash(3, []byte("foo"))
	if hex.EncodeToString(cac[:]) != beeCACAddress {
		t.Fatalf("BMT of \"foo\": %x, want %s", cac, beeCACAddress)
	}
	if a := socAddress(id, ownerAddr); hex.EncodeToString(a[:]) != beeSOCAddress {
		t.Fatalf("SOC address %x, want %s", a, beeSOCAddress)
	}
	got, err := recoverOwner(mustHex(t, beeSignature), id, cac)
	if err != nil || got != ownerAddr {
		t.Fatalf("recovered owner %x (%v), want %s", got, err, beeOwner)
	}
}

// BMT of an empty chunk and of a full one, cross-checked against a naive
// recomputation of the definition.
func TestBMTFullChunk(t *testing.T) {
	payload := bytes.Repeat([]byte{0xab}, feed.ChunkSize)
	level := payload
	for len(level) > 32 {
		var next []byte
		for i := 0; i < len(level); i += 64 {
			h := keccak256(level[i : i+64])
			next = append(next, h[:]...)
		}
		level = next
	}
	want := keccak256([]byte{0, 0x10, 0, 0, 0, 0, 0, 0}, level)
	if got := bmtHash(feed.ChunkSize, payload); got != want {
		t.Fatalf("BMT %x, want %x", got, want)
	}
}

func TestSOCRoundTripAndTamper(t *testing.T) {
	slot, chunk := feedtest.RandomSlot(t), feedtest.RandomChunk(t)
	sc := forSlot(slot)
	soc := sc.buildSOC(chunk)
	got, err := sc.parseSOC(soc)
	if err != nil || !bytes.Equal(got, chunk) {
		t.Fatalf("round trip: %v", err)
	}
	other := forSlot(feedtest.RandomSlot(t))
	if _, err := other.parseSOC(soc); !errors.Is(err, errBadSOC) {
		t.Fatalf("SOC of another slot accepted: %v", err)
	}
	for _, pos := range []int{0, 40, 96, 97, 200, socSize - 1} {
		bad := bytes.Clone(soc)
		bad[pos] ^= 1
		if _, err := sc.parseSOC(bad); !errors.Is(err, errBadSOC) {
			t.Errorf("flipped bit at %d accepted: %v", pos, err)
		}
	}
	if _, err := sc.parseSOC(soc[:100]); !errors.Is(err, errBadSOC) {
		t.Fatalf("truncated SOC: %v", err)
	}
}

func FuzzParseSOC(f *testing.F) {
	slot := feed.Slot{7}
	sc := forSlot(slot)
	fuzzseed.Add(f, "FuzzParseSOC", *update, sc.buildSOC(make([]byte, feed.ChunkSize)), []byte{}, make([]byte, socSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		if p, err := sc.parseSOC(b); err == nil && len(p) != feed.ChunkSize {
			t.Fatal("accepted a payload of the wrong size")
		}
	})
}
