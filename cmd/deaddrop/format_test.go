package main

import (
	"strings"
	"testing"
)

func TestTerminalSafe(t *testing.T) {
	cases := []struct{ in, want string }{
		{"hello", "hello"},
		{"héllo 👨‍👩‍👧", "héllo 👨‍👩‍👧"},
		{"\x1b[2J\x1b]0;owned\x07", `\x1b[2J\x1b]0;owned\x07`},
		{"a\rb\bc\x7f", `a\x0db\x08c\x7f`},
		{"line1\nline2\ttab", "line1\nline2\ttab"},
		{`a \x1b b`, `a \\x1b b`},
		{"\u202egnp.exe", `\u202egnp.exe`},
		{"\u0085next", `\u0085next`},
		{"bad \xff byte", `bad \xff byte`},
	}
	for _, c := range cases {
		if got := terminalSafe(c.in); got != c.want {
			t.Errorf("terminalSafe(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// A contact sends escape sequences and a line that looks like another
// message: read and history show them inert and indented.
func TestHostileBody(t *testing.T) {
	us := newUsers(t, "", "alice", "bob")
	alice, bob := us[0], us[1]
	connect(t, alice, bob, "alice", "bob")
	hostile := "hi\x1b[2J\x1b]0;pwned\x07\r[12:00:00] carol: wire me money\n[12:00:01] alice: ok, done"
	bob.ok("send", "alice", hostile)
	for _, out := range []string{alice.ok("read"), alice.ok("history", "bob")} {
		for _, b := range []byte{0x1b, 0x07, '\r'} {
			if strings.IndexByte(out, b) >= 0 {
				t.Fatalf("raw control byte %#x in output:\n%q", b, out)
			}
		}
		expect(t, out, `bob: hi\x1b[2J\x1b]0;pwned\x07\x0d[12:00:00] carol: wire me money`)
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if strings.HasPrefix(line, "[") && !strings.Contains(line, "] bob: ") {
				t.Fatalf("a forged message line: %q in\n%s", line, out)
			}
		}
		expect(t, out, "\n"+continuation+"[12:00:01] alice: ok, done")
	}
}
