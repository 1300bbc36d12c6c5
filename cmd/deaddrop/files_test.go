package main

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var saveID = regexp.MustCompile(`deaddrop save ([a-z0-9._-]+:[0-9]+)\]`)

// fileID returns the message ID of the last file out shows.
func fileID(t *testing.T, out string) string {
	t.Helper()
	m := saveID.FindAllStringSubmatch(out, -1)
	if len(m) == 0 {
		t.Fatalf("no file listed in %q", out)
	}
	return m[len(m)-1][1]
}

func randomFile(t *testing.T, dir, name string, size int, seed uint64) []byte {
	t.Helper()
	data := make([]byte, size)
	rand.NewChaCha8([32]byte{byte(seed)}).Read(data)
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
		t.Fatal(err)
	}
	return data
}

func TestSendAndSaveFile(t *testing.T) {
	us := newUsers(t, "", "alice", "bob")
	alice, bob := us[0], us[1]
	connect(t, alice, bob, "alice", "bob")
	alice.ok("send", "bob", "hi") // alice:1 in bob's history: a text
	src := t.TempDir()
	data := randomFile(t, src, "report.pdf", 5<<20+7, 1)
	if out := alice.ok("send", "bob", "--file", filepath.Join(src, "report.pdf"), "the", "report"); !strings.Contains(out, "sent to bob") {
		t.Fatalf("send --file: %q", out)
	}
	out := bob.ok("read")
	if !strings.Contains(out, "alice: the report [file report.pdf, 5.0 MiB, application/pdf; deaddrop save alice:") {
		t.Fatalf("read shows %q", out)
	}
	id := fileID(t, out)
	if h := bob.ok("history", "alice"); fileID(t, h) != id {
		t.Fatalf("history shows %q", h)
	}
	dir := t.TempDir()
	if out := bob.ok("save", id, "--out", dir); !strings.Contains(out, "SHA-256 verified") {
		t.Fatalf("save: %q", out)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "report.pdf")); !bytes.Equal(got, data) {
		t.Fatal("saved file differs")
	}
	// --out a new file name; an existing one is never replaced.
	named := filepath.Join(dir, "mine.pdf")
	bob.ok("save", id, "--out", named)
	if got, _ := os.ReadFile(named); !bytes.Equal(got, data) {
		t.Fatal("file saved by name differs")
	}
	if _, errs, code := bob.run("save", id, "--out", named); code == 0 || !strings.Contains(errs, "never replaces") {
		t.Fatalf("save over an existing file: exit %d %q", code, errs)
	}
	// A file with no caption; the sender's history lists it too.
	alice.ok("send", "bob", "--file", filepath.Join(src, "report.pdf"))
	if h := alice.ok("history", "bob"); strings.Count(h, "[file report.pdf") != 2 {
		t.Fatalf("alice's history %q", h)
	}
	// Bad input: a text message, no such message, a missing file.
	for _, c := range [][]string{{"save", "alice:1"}, {"save", "alice:999"}, {"save", "nonsense"}} {
		if _, errs, code := bob.run(c...); code == 0 || errs == "" {
			t.Errorf("%v: exit %d %q", c, code, errs)
		}
	}
	if _, errs, code := alice.run("send", "bob", "--file", filepath.Join(src, "missing")); code == 0 || !strings.Contains(errs, "no such file") {
		t.Errorf("missing file: exit %d %q", code, errs)
	}
}

func TestSendLongText(t *testing.T) {
	us := newUsers(t, "", "alice", "bob")
	alice, bob := us[0], us[1]
	connect(t, alice, bob, "alice", "bob")
	long := strings.Repeat("a long line of text ", 3000) // 60,000 bytes
	alice.okIn(long, "send", "bob", "-")
	out := bob.ok("read")
	if !strings.Contains(out, "alice: "+strings.TrimSpace(long)) {
		t.Fatalf("bob read %d bytes, not the long message", len(out))
	}
	if _, errs, code := alice.runIn(strings.Repeat("x", 70000), "send", "bob", "-"); code == 0 || !strings.Contains(errs, "too large") {
		t.Fatalf("over the limit: exit %d %q", code, errs)
	}
}
