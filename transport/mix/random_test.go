package mix

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Every random choice goes through csprng: no other file of the package
// imports math/rand.
func TestRandomnessIsCrypto(t *testing.T) {
	files, _ := filepath.Glob("*.go")
	for _, f := range files {
		if f == "random.go" || strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), `"math/rand`) {
			t.Errorf("%s imports math/rand: draw from csprng instead", f)
		}
	}
	const n, mean = 20000, time.Second
	var sum time.Duration
	for range n {
		sum += exp(mean)
	}
	if got := sum / n; got < 950*time.Millisecond || got > 1050*time.Millisecond {
		t.Errorf("mean of %d exponential delays %v, want about %v", n, got, mean)
	}
	seen := map[int]bool{}
	for range 200 {
		seen[csprng.IntN(4)] = true
	}
	if len(seen) != 4 {
		t.Errorf("IntN(4) drew only %v", seen)
	}
}
