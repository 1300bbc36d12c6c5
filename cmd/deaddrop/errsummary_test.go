package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestSummarize(t *testing.T) {
	var errs []error
	for i := range 550 {
		errs = append(errs, fmt.Errorf("get slot %064x: dial tcp 127.0.0.1:1633: connection refused (attempt %d)", i*7919, i))
	}
	errs = append(errs, errors.New("bob: history block damaged"))
	got := summarize(errors.Join(errs...), false)
	if n := strings.Count(got, "\n") + 1; n != 2 || !strings.Contains(got, "(and 549 more like it)") || !strings.Contains(got, "bob: history block damaged") {
		t.Fatalf("550 alike lines and one other became:\n%s", got)
	}
	canceled := errors.Join(fmt.Errorf("put: %w", context.Canceled), fmt.Errorf("get: %w", context.Canceled))
	if got := summarize(canceled, true); !strings.HasPrefix(got, "interrupted") || strings.Contains(got, "\n") {
		t.Fatalf("Ctrl-C: %q", got)
	}
	if got := summarize(errors.New("unknown contact"), false); got != "unknown contact" {
		t.Fatalf("a plain error: %q", got)
	}
}
