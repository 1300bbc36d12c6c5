package sync

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"
)

// vectorFile compares the vectors the code derives, v (encoded as indented
// JSON unless it is already []byte), with the file at path, which -update
// rewrites, and returns the file's bytes for the checks a second
// implementation would make.
func vectorFile(t *testing.T, path string, v any) []byte {
	t.Helper()
	got, ok := v.([]byte)
	if !ok {
		var err error
		if got, err = json.MarshalIndent(v, "", "  "); err != nil {
			t.Fatal(err)
		}
		got = append(got, '\n')
	}
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./sync -run Vectors -update)", err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("%s differs from what the code derives (rerun with -update only if the protocol changed on purpose)", path)
	}
	return data
}
