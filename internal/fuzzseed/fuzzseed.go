// Package fuzzseed keeps fuzz seed corpora in testdata/fuzz/<Target>/, in
// the file format of go test -fuzz, so that seeds are versioned files any
// fuzzer run (and plain go test) picks up.
package fuzzseed

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// Add registers seeds with f and, when update is true, also writes each one
// to testdata/fuzz/<target>/ under a name derived from its content.
func Add(f *testing.F, target string, update bool, seeds ...[]byte) {
	for _, s := range seeds {
		f.Add(s)
	}
	if !update {
		return
	}
	dir := filepath.Join("testdata", "fuzz", target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		f.Fatal(err)
	}
	for _, s := range seeds {
		name := fmt.Sprintf("seed-%x", sha256.Sum256(s))[:21]
		data := "go test fuzz v1\n[]byte(" + strconv.Quote(string(s)) + ")\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			f.Fatal(err)
		}
	}
}
