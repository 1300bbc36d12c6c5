package duration

import (
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"1d", 24 * time.Hour, true},
		{"2w", 14 * 24 * time.Hour, true},
		{"1d12h", 36 * time.Hour, true},
		{"1.5d", 36 * time.Hour, true},
		{"1w2d3h", (9*24 + 3) * time.Hour, true},
		{"36h", 36 * time.Hour, true},
		{"90s", 90 * time.Second, true},
		{"0", 0, true},
		{"-1h", 0, false},
		{"-1d", 0, false},
		{"1h-1m", 0, false},
		{"", 0, false},
		{"d", 0, false},
		{"1x", 0, false},
		{"1d1d", 0, false},
	} {
		got, err := Parse(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("Parse(%q) = %v, %v; want %v, ok %v", c.in, got, err, c.want, c.ok)
		}
	}
}
