package benchmarks

import (
	"os"
	"testing"
)

var tmpRoot string

func tempDir() (string, error) {
	var err error
	if tmpRoot == "" {
		tmpRoot, err = os.MkdirTemp("", "deaddrop-bench")
	}
	return tmpRoot, err
}

func TestMain(m *testing.M) {
	code := m.Run()
	if beeNode != nil {
		beeNode.Stop()
	}
	if kuboNode != nil {
		kuboNode.Stop()
	}
	if tmpRoot != "" {
		os.RemoveAll(tmpRoot)
	}
	os.Exit(code)
}
