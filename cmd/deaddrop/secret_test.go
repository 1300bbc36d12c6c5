package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// The recovery phrase is read from standard input; on the command line,
// where ps and shell history keep it, it is refused before anything is done.
func TestRestorePhraseNotOnCommandLine(t *testing.T) {
	alice := newUsers(t, "", "alice")[0]
	m := phrasePattern.FindStringSubmatch(alice.initOut)
	if m == nil {
		t.Fatalf("no recovery phrase in %q", alice.initOut)
	}
	alice.ok("read") // publishes the device list
	phone := &user{t: t, home: filepath.Join(t.TempDir(), "phone"), store: alice.store}
	_, errs, code := phone.runIn(m[1], "restore", "--store", alice.store, m[1])
	if code != 2 || !strings.Contains(errs, "not taken on the command line") {
		t.Fatalf("phrase as an argument: exit %d %q", code, errs)
	}
	if _, errs, code := phone.runIn("", "restore", "--store", alice.store); code != 2 || !strings.Contains(errs, "no recovery phrase") {
		t.Fatalf("empty standard input: exit %d %q", code, errs)
	}
	expect(t, phone.okIn(m[1]+"\n", "restore", "--store", alice.store), "restored account alice")
	other := &user{t: t, home: filepath.Join(t.TempDir(), "other"), store: alice.store}
	expect(t, other.okIn(m[1], "restore", "-", "--store", alice.store), "restored account alice")
}
