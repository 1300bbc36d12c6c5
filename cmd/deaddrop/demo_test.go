package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestDemoScript runs scripts/demo.sh, what 'make demo' runs, with the
// binary under test: the README's first command must keep working (the
// demo broke once when 'device link' started waiting for the join).
func TestDemoScript(t *testing.T) {
	if testing.Short() {
		t.Skip("the whole demo: alice, bob, 50 messages, a linked device and a restore")
	}
	cmd := exec.Command("bash", filepath.Join("..", "..", "scripts", "demo.sh"))
	cmd.Env = append(os.Environ(), "DEADDROP_BIN="+binary, "TMPDIR="+t.TempDir(), "DEADDROP_HOME=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
}
