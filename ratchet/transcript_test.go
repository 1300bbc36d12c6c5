package ratchet

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/deaddrop/deaddrop/feed"
)

// The two-way transcript (docs/protocol.md §7): a conversation between an
// inviter and a joiner with every random value recorded, so that a second
// implementation can reproduce every chunk and every stored state, not only
// open chunks. It covers the first message, the inviter's answer (PQ mix on
// send and on receive), DH ratchet steps on both sides, a key skipped inside
// a chain and one skipped by a new chain's PN, a second offer and answer, and
// §8 envelopes (hello, meta, data, ack) as plaintexts.
//
// TestTranscriptTwoWay generates it from a seeded random source and compares
// it with testdata/transcript.json (-update rewrites the file), then replays
// the file against the code from the file's data alone: the recorded random
// bytes, fed to the same calls, must give the recorded chunks and states.

const transcriptFile = "testdata/transcript.json"

type twoWay struct {
	Description     string `json:"description"`
	Now             int64  `json:"now"`              // Unix seconds: the clock of NewInvite, Accept and AcceptInit
	InviteTTL       int64  `json:"invite_ttl"`       // seconds
	InviterIdentity string `json:"inviter_identity"` // §2 stored form, private
	JoinerIdentity  string `json:"joiner_identity"`
	InviterName     string `json:"inviter_name"`
	JoinerName      string `json:"joiner_name"`
	// NewInvite's random bytes: SPK 32, OPK 32, ML-KEM seed 64, secret 32.
	InviteRandom   string `json:"invite_random"`
	Invite         string `json:"invite"`
	InviteID       string `json:"invite_id"`
	InviterPending string `json:"inviter_pending"`
	// Accept's random bytes: EK 32, ML-KEM m 32, first ratchet key 32.
	AcceptRandom string        `json:"accept_random"`
	JoinerState  string        `json:"joiner_state"` // §4.5, after Accept
	Steps        []*twoWayStep `json:"steps"`
}

// twoWayStep is one Encrypt ("send") or one Decrypt ("receive"; AcceptInit
// for the first message) by one party.
type twoWayStep struct {
	Op    string `json:"op"`    // send, receive
	Party string `json:"party"` // inviter, joiner
	// Random: the bytes the call draws, in order (§4.4): send: the PQ
	// offer's seed 64 or answer's m 32 (N = 0 only), header nonce 24, chunk
	// nonce 24; receive: a new ratchet private key 32 on a DH ratchet step.
	Random string `json:"random"`
	// send: the message.
	Message   int      `json:"message"` // its number, from 0, in the order sent
	Slot      string   `json:"slot,omitempty"`
	Chunk     string   `json:"chunk,omitempty"`
	Type      int      `json:"type,omitempty"`       // 1 first message, 2 message (§6)
	HeaderKey string   `json:"header_key,omitempty"` // HKs used
	Header    *hdrView `json:"header,omitempty"`     // the opened header
	PQ        string   `json:"pq,omitempty"`         // none, offer, answer
	Plaintext string   `json:"plaintext,omitempty"`  // the §8.1 envelope
	Envelope  *envView `json:"envelope,omitempty"`   // …decoded
	PollKind  string   `json:"poll_kind,omitempty"`  // receive: rendezvous, current, next, skipped (§5 poll set)
	State     string   `json:"state"`                // the party's stored session after the step (§4.5)
	sealed    *Sealed  // not serialised
}

type hdrView struct {
	DH string `json:"dh"`
	PN uint32 `json:"pn"`
	N  uint32 `json:"n"`
}

type envView struct {
	Kind   int    `json:"kind"` // 1 data, 2 ack, 3 hello, 4 meta
	Seq    uint64 `json:"seq"`
	Ack    uint64 `json:"ack"`
	Sent   int64  `json:"sent"` // Unix milliseconds
	Origin string `json:"origin"`
	Body   string `json:"body"` // UTF-8
}

func (e *envView) marshal() []byte {
	origin, _ := hex.DecodeString(e.Origin)
	b := []byte{2, byte(e.Kind)}
	b = binary.BigEndian.AppendUint64(b, e.Seq)
	b = binary.BigEndian.AppendUint64(b, e.Ack)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Sent))
	b = append(b, origin...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(e.Body)))
	return append(b, e.Body...)
}

// draws supplies each step's random bytes: recorded from a seeded source
// when generating, read back from the file when replaying.
type draws interface {
	start(recorded string) io.Reader
	end(t *testing.T) string
}

type recordDraws struct {
	src io.Reader
	buf []byte
}

func (d *recordDraws) start(string) io.Reader { d.buf = nil; return d }
func (d *recordDraws) Read(p []byte) (int, error) {
	n, err := d.src.Read(p)
	d.buf = append(d.buf, p[:n]...)
	return n, err
}
func (d *recordDraws) end(*testing.T) string { return hex.EncodeToString(d.buf) }

type replayDraws struct {
	r   *bytes.Reader
	rec string
}

func (d *replayDraws) start(recorded string) io.Reader {
	b, _ := hex.DecodeString(recorded)
	d.r, d.rec = bytes.NewReader(b), recorded
	return d.r
}
func (d *replayDraws) end(t *testing.T) string {
	if d.r.Len() != 0 {
		t.Fatalf("replay: %d recorded random bytes left unread", d.r.Len())
	}
	return d.rec
}

// the conversation: who sends what, and who reads which message when.
type twoWayEvent struct {
	send    bool
	party   string
	kind    int
	body    string
	message int // receive: the message read
}

var twoWayScript = []twoWayEvent{
	{send: true, party: "joiner", kind: 3, body: "bob"},            // 0: hello, first message, offer
	{send: true, party: "joiner", kind: 4},                         // 1: meta
	{send: true, party: "joiner", kind: 1, body: "are you there?"}, // 2: read late (skipped by PN)
	{party: "inviter", message: 0},                                 // AcceptInit: DH step
	{party: "inviter", message: 1},
	{send: true, party: "inviter", kind: 4},                  // 3: meta, inviter chain N = 0: answer
	{send: true, party: "inviter", kind: 1, body: "hi bob"},  // 4: read after 5 (skipped in chain)
	{send: true, party: "inviter", kind: 1, body: "second"},  // 5
	{party: "joiner", message: 3},                            // DH step, answer mixed on receive
	{party: "joiner", message: 5},                            // skips 4
	{party: "joiner", message: 4},                            // from the skipped key
	{send: true, party: "joiner", kind: 1, body: "got both"}, // 6: new chain, PN 3, offer
	{party: "inviter", message: 6},                           // DH step; PN skips 2
	{party: "inviter", message: 2},                           // from the skipped key
	{send: true, party: "inviter", kind: 2},                  // 7: ack, new chain: answer
	{party: "joiner", message: 7},                            // DH step, answer mixed
}

// Device IDs of the meta messages (both parties are their account's first
// device, whose identity is the account identity, docs/protocol.md §10.1).
var twoWayDevices = map[string]string{"inviter": "a11ce0000000000a", "joiner": "b0b000000000000b"}

// metaBodyFor builds a §10.4 meta body for a first device by hand, from the
// text of the protocol (sync/vectors2_test.go checks it with sync's parser).
func metaBodyFor(id *Identity, name, device string, added time.Time) string {
	b64 := base64.StdEncoding.EncodeToString
	rec, _ := NewIdentity(newDetRand("two-way recovery " + name))
	pub := id.Public().Bytes()
	list := fmt.Appendf(nil, `{"account":%q,"name":%q,"version":1,"devices":[{"id":%q,"name":"first","identity":%q,"added":%q}],"recovery":%q}`,
		b64(pub), name, device, b64(pub), added.UTC().Format(time.RFC3339Nano), b64(rec.Public().Bytes()))
	signed := fmt.Appendf(nil, `{"list":%q,"sig":%q}`, b64(list), b64(id.Sign(append([]byte("deaddrop device list\x00"), list...))))
	ann := bytes.Repeat([]byte{name[0]}, 32)
	return fmt.Sprintf(`{"device":%q,"account":%q,"ann":%q,"list":%q}`, device, b64(pub), b64(ann), b64(signed))
}

// playTwoWay runs the conversation. With in == nil it generates (d records);
// otherwise it replays in's recorded randomness and inputs (d replays).
func playTwoWay(t *testing.T, in *twoWay, d draws) *twoWay {
	restore := deterministicKEM()
	defer restore()
	defer func(r io.Reader) { acceptInitRand = r }(acceptInitRand)
	dec := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	out := &twoWay{Description: "docs/protocol.md §7: a two-way conversation with every random byte recorded",
		Now: now.Unix(), InviteTTL: 24 * 3600, InviterName: "alice", JoinerName: "bob"}
	var a, b *Identity
	if in == nil {
		ids := newDetRand("two-way identities")
		a, _ = NewIdentity(ids)
		b, _ = NewIdentity(ids)
	} else {
		var err error
		if a, err = UnmarshalIdentity(dec(in.InviterIdentity)); err != nil {
			t.Fatal(err)
		}
		if b, err = UnmarshalIdentity(dec(in.JoinerIdentity)); err != nil {
			t.Fatal(err)
		}
		out.Now, out.InviteTTL, out.InviterName, out.JoinerName = in.Now, in.InviteTTL, in.InviterName, in.JoinerName
	}
	clock := time.Unix(out.Now, 0)
	ab, _ := a.MarshalBinary()
	bb, _ := b.MarshalBinary()
	out.InviterIdentity, out.JoinerIdentity = h(ab), h(bb)
	rec := func(field func(*twoWay) string) string {
		if in == nil {
			return ""
		}
		return field(in)
	}
	inv, pending, err := NewInvite(a, out.InviterName, time.Duration(out.InviteTTL)*time.Second, clock, d.start(rec(func(w *twoWay) string { return w.InviteRandom })))
	if err != nil {
		t.Fatal(err)
	}
	out.InviteRandom = d.end(t)
	pb, _ := pending.MarshalBinary()
	id := inv.ID()
	out.Invite, out.InviteID, out.InviterPending = inv.String(), h(id[:]), h(pb)
	parsed, err := ParseInvite(out.Invite)
	if err != nil {
		t.Fatal(err)
	}
	js, err := Accept(b, parsed, out.JoinerName, clock, d.start(rec(func(w *twoWay) string { return w.AcceptRandom })))
	if err != nil {
		t.Fatal(err)
	}
	out.AcceptRandom = d.end(t)
	state := func(s *Session) string {
		st, err := s.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return h(st)
	}
	out.JoinerState = state(js)

	ids := map[string]*Identity{"inviter": a, "joiner": b}
	sessions := map[string]*Session{"joiner": js}
	seq := map[string]uint64{}  // last seq sent
	recv := map[string]uint64{} // highest seq received in order (the script reads in order at the end)
	var sent, inSent []*twoWayStep
	if in != nil {
		for _, s := range in.Steps {
			if s.Op == "send" {
				inSent = append(inSent, s)
			}
		}
	}
	for i, ev := range twoWayScript {
		step := &twoWayStep{Party: ev.party}
		recorded := ""
		if in != nil {
			if i >= len(in.Steps) {
				t.Fatalf("replay: the file has %d steps, the script %d", len(in.Steps), len(twoWayScript))
			}
			recorded = in.Steps[i].Random
		}
		r := d.start(recorded)
		if ev.send {
			s := sessions[ev.party]
			s.rand = r
			seq[ev.party]++
			env := &envView{Kind: ev.kind, Seq: seq[ev.party], Ack: recv[ev.party], Sent: clock.UnixMilli() + int64(i)*1000,
				Origin: h(make([]byte, 16)), Body: ev.body}
			switch ev.kind {
			case 1:
				env.Origin = twoWayDevices[ev.party] + fmt.Sprintf("%016x", env.Seq)
			case 4:
				env.Body = metaBodyFor(ids[ev.party], map[string]string{"inviter": out.InviterName, "joiner": out.JoinerName}[ev.party],
					twoWayDevices[ev.party], clock)
			}
			hk := s.hks
			x, err := s.Encrypt(env.marshal(), r)
			if err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
			step.Op, step.Message, step.sealed = "send", len(sent), &x
			step.Slot, step.Chunk, step.Plaintext, step.Envelope = h(x.Slot[:]), h(x.Chunk), h(env.marshal()), env
			step.HeaderKey = h(hk[:])
			inner, err := openChunk(x.Slot, x.Chunk)
			if err != nil {
				t.Fatal(err)
			}
			step.Type = int(inner[0])
			rest := inner[1:]
			if inner[0] == typeInit {
				rest = inner[initFieldsSize:]
			}
			hd, ok := openHeader(hk, rest[:encHdrSize])
			if !ok {
				t.Fatalf("step %d: header does not open under HKs", i)
			}
			step.Header = &hdrView{DH: h(hd.dh[:]), PN: hd.pn, N: hd.n}
			step.PQ = map[byte]string{pqNone: "none", pqOffer: "offer", pqAnswer: "answer"}[rest[encHdrSize]]
			sent = append(sent, step)
		} else {
			m := sent[ev.message]
			step.Op, step.Message = "receive", ev.message
			if in != nil {
				// Read what the file holds, not what this replay wrote.
				var fs feed.Slot
				copy(fs[:], dec(inSent[ev.message].Slot))
				m = &twoWayStep{Plaintext: inSent[ev.message].Plaintext, Envelope: inSent[ev.message].Envelope,
					sealed: &Sealed{Slot: fs, Chunk: dec(inSent[ev.message].Chunk)}}
			}
			var pt []byte
			if sessions[ev.party] == nil {
				acceptInitRand = r
				s, peer, name, p, err := AcceptInit(a, pending, m.sealed.Chunk, clock)
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if peer != b.Public() || name != out.JoinerName {
					t.Fatalf("step %d: AcceptInit names %q", i, name)
				}
				sessions[ev.party], pt, step.PollKind = s, p, "rendezvous"
			} else {
				s := sessions[ev.party]
				for _, tg := range s.PollTargets(4) {
					if tg.Slot == m.sealed.Slot {
						step.PollKind = []string{"current", "next", "skipped"}[tg.Kind]
					}
				}
				if step.PollKind == "" {
					t.Fatalf("step %d: message %d's slot is not in the poll set", i, ev.message)
				}
				s.rand = r
				if pt, err = s.Decrypt(m.sealed.Slot, m.sealed.Chunk); err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
			}
			if h(pt) != m.Plaintext {
				t.Fatalf("step %d: plaintext %x, want %s", i, pt, m.Plaintext)
			}
			recv[ev.party] = max(recv[ev.party], m.Envelope.Seq)
		}
		step.Random = d.end(t)
		step.State = state(sessions[ev.party])
		out.Steps = append(out.Steps, step)
	}
	return out
}

func TestTranscriptTwoWay(t *testing.T) {
	got := playTwoWay(t, nil, &recordDraws{src: newDetRand("two-way")})
	data, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	data = append(data, '\n')
	if *update {
		if err := os.WriteFile(transcriptFile, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	file, err := os.ReadFile(transcriptFile)
	if err != nil {
		t.Fatalf("%v (run go test ./ratchet -run TestTranscriptTwoWay -update)", err)
	}
	if !bytes.Equal(file, data) {
		t.Fatalf("the code no longer produces %s: a protocol change needs a version bump (or -update if intended)", transcriptFile)
	}
	// Replay from the file alone.
	want := new(twoWay)
	if err := json.Unmarshal(file, want); err != nil {
		t.Fatal(err)
	}
	replayed := playTwoWay(t, want, &replayDraws{})
	for _, s := range replayed.Steps {
		s.sealed = nil
	}
	if !reflect.DeepEqual(replayed, want) {
		t.Fatal("replaying the file's random bytes does not reproduce its chunks and states")
	}
	// Every kind of step is there.
	seen := map[string]bool{}
	for _, s := range want.Steps {
		seen[s.Op+" "+s.PQ+" "+s.PollKind] = true
	}
	for _, k := range []string{"send offer ", "send answer ", "send none ", "receive  rendezvous", "receive  next", "receive  current", "receive  skipped"} {
		if !seen[k] {
			t.Errorf("the transcript has no %q step", k)
		}
	}
}
