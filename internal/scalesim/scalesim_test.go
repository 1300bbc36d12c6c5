package scalesim

import (
	"context"
	"os"
	"testing"
	"time"
)

// TestSmallDay runs a small profile and checks the day adds up: messages
// are delivered and acknowledged, an idle poll costs about two GETs per
// contact, and skipping the contacts' idle polls counts what running them
// does.
func TestSmallDay(t *testing.T) {
	p := Profile{Name: "small", Contacts: 5, Sent: 10, Received: 10, OpenFrom: 9 * time.Hour, Open: time.Hour,
		Spread: 30 * time.Minute, PollEvery: time.Minute, History: true, Seed: 7}
	r, err := Run(context.Background(), t.TempDir(), p)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", r)
	// Skipping the contacts' idle polls must not change what is counted.
	p.EveryPeerPoll = true
	all, err := Run(context.Background(), t.TempDir(), p)
	if err != nil {
		t.Fatal(err)
	}
	// Re-puts and new puts depend a little on when background block
	// uploads finish and on how many history blocks the finisher packs (it
	// packs once sends pause), and GETs on whether a wave's lookahead probe
	// was answered before the rest of its wave (it is cancelled then,
	// counted or not).
	a, b := all.Day, r.Day
	near := func(what string, x, y, tenths int) {
		if d := x - y; d*tenths > x || d*tenths < -x {
			t.Errorf("%s: %d with every contact poll run, %d skipping idle ones", what, x, y)
		}
	}
	near("re-puts", a.RePuts, b.RePuts, 10)
	near("new puts", a.NewPuts, b.NewPuts, 10)
	near("GETs", a.Gets, b.Gets, 100)
	near("misses", a.Misses, b.Misses, 100)
	a.RePuts, b.RePuts, a.NewPuts, b.NewPuts, a.BytesUp, b.BytesUp = 0, 0, 0, 0, 0, 0
	a.Gets, b.Gets, a.Misses, b.Misses = 0, 0, 0, 0
	if a != b || all.Acked != r.Acked {
		t.Errorf("with every contact poll run: %+v, acked %d; skipping idle ones: %+v, acked %d", all.Day, all.Acked, r.Day, r.Acked)
	}
	// Some of the day's messages were sent while the subject was away and
	// are read the next day; some of the set-up day's are read today.
	if r.Delivered < p.Received/2 || r.Acked < p.Sent/2 {
		t.Errorf("delivered %d, acked %d, of %d and %d", r.Delivered, r.Acked, p.Received, p.Sent)
	}
	if r.Polls != 60 {
		t.Errorf("%d polls, want 60", r.Polls)
	}
	if per := float64(r.IdlePollGets) / float64(r.IdlePolls) / float64(p.Contacts); per < 1.5 || per > 4 {
		t.Errorf("%.2f GETs per idle contact per poll", per)
	}
}

// BenchmarkScale simulates one day of each stated profile (docs/scale.md)
// and reports the subject's load per day. Run with -benchtime 1x. The
// slower profiles (always open, history off: ~40 s and ~2 min on the project's
// machine) run only with DEADDROP_SCALE_ALL=1.
func BenchmarkScale(b *testing.B) {
	for _, p := range Profiles {
		if p.Slow && os.Getenv("DEADDROP_SCALE_ALL") == "" {
			continue
		}
		b.Run(p.Name, func(b *testing.B) {
			var r *Result
			for range b.N {
				var err error
				if r, err = Run(context.Background(), b.TempDir(), p); err != nil {
					b.Fatal(err)
				}
			}
			d := r.Day
			b.ReportMetric(float64(r.Polls), "polls/day")
			b.ReportMetric(float64(d.Gets), "GETs/day")
			b.ReportMetric(float64(d.Misses), "misses/day")
			b.ReportMetric(float64(d.NewPuts), "new-chunks/day")
			b.ReportMetric(float64(d.RePuts), "re-puts/day")
			b.ReportMetric(float64(d.BytesUp)/1e6, "MB-up/day")
			b.ReportMetric(float64(d.BytesDown)/1e6, "MB-down/day")
			b.ReportMetric(float64(r.IdlePollGets)/float64(max(r.IdlePolls, 1)), "GETs/idle-poll")
			b.ReportMetric(float64(r.SendPuts), "send-PUTs/day")
			b.ReportMetric(float64(r.PollPuts), "poll-PUTs/day")
			b.ReportMetric(float64(r.RepublishPuts), "republish-PUTs/day")
			b.ReportMetric(float64(r.Kept-r.KeptStart), "kept-growth/day")
			b.ReportMetric(float64(r.Kept), "kept")
			b.ReportMetric(float64(r.Delivered), "delivered")
			b.ReportMetric(float64(r.Acked), "acked")
			b.ReportMetric(r.Elapsed.Seconds(), "sim-s")
			b.ReportMetric(0, "ns/op")
		})
	}
}
