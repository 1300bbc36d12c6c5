// Package duration parses the durations people type: Go's forms (90s, 1h30m)
// plus days and weeks (1d, 2w, 1d12h), never negative.
package duration

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Parse parses s as a non-negative duration: a Go duration (time.ParseDuration)
// whose leading part may count days ("d", 24h) and weeks ("w", 7d), e.g. 1d,
// 2w, 1d12h, 36h. A negative duration is an error.
func Parse(s string) (time.Duration, error) {
	in := s
	if strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("duration %q is negative", in)
	}
	s = strings.TrimPrefix(s, "+")
	var total time.Duration
	for _, u := range []struct {
		suffix string
		d      time.Duration
	}{{"w", 7 * 24 * time.Hour}, {"d", 24 * time.Hour}} {
		i := strings.Index(s, u.suffix)
		if i < 0 {
			continue
		}
		n, err := strconv.ParseFloat(s[:i], 64)
		if err != nil || n < 0 || n > 1e5 {
			return 0, fmt.Errorf("duration %q: want e.g. 1d, 2w, 1d12h or 36h", in)
		}
		total += time.Duration(n * float64(u.d))
		s = s[i+1:]
	}
	if s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("duration %q: want e.g. 1d, 2w, 1d12h or 36h", in)
		}
		if d < 0 {
			return 0, fmt.Errorf("duration %q is negative", in)
		}
		total += d
	}
	if total == 0 && in != "0" && !strings.ContainsAny(in, "123456789") {
		return 0, errors.New("empty duration")
	}
	return total, nil
}

// Value is a pflag.Value (cobra flags) holding a Parse'd duration.
type Value time.Duration

func (v *Value) String() string {
	d := time.Duration(*v)
	if d != 0 && d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	return d.String()
}

func (v *Value) Set(s string) error {
	d, err := Parse(s)
	if err != nil {
		return err
	}
	*v = Value(d)
	return nil
}

func (v *Value) Type() string { return "duration" }
