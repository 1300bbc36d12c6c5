package main

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/deaddrop/deaddrop"
)

// continuation starts every line of a message body after its first. A
// message's first line starts with "[", so no body can print a line that
// looks like another message.
const continuation = "    "

// formatMessage is how read, history and chat show one message: the body made
// terminalSafe, its further lines indented.
func formatMessage(m deaddrop.Message) string {
	ts := m.Sent.Local().Format("15:04:05")
	body := strings.ReplaceAll(terminalSafe(m.Body), "\n", "\n"+continuation)
	if m.Dir == deaddrop.Incoming {
		return fmt.Sprintf("[%s] %s: %s", ts, m.Contact, body)
	}
	return fmt.Sprintf("[%s] me → %s: %s  (%s)", ts, m.Contact, body, m.State)
}

// terminalSafe returns text written by someone else (a message body) with
// everything a terminal would act on, rather than show, written out: C0
// controls (escape sequences, carriage return, backspace) and DEL as \x1b,
// \x0d, …; C1 controls and the Unicode controls that reorder or break text
// (bidi overrides, isolates, marks, line and paragraph separators) as \u202e,
// …; bytes that are not UTF-8 as \xff; and the backslash itself as \\, so
// that an escape cannot be faked. Newlines and tabs stay.
func terminalSafe(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n' || r == '\t':
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r >= 0x80 && r < 0xa0, reordering(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// reordering reports the format characters that change how the text around
// them is laid out (Trojan Source, CVE-2021-42574). Joiners and variation
// selectors, which emoji need, are not among them.
func reordering(r rune) bool {
	switch {
	case r == 0x061c, r == 0x200e, r == 0x200f: // Arabic letter mark, LRM, RLM
		return true
	case r >= 0x202a && r <= 0x202e: // embeddings and overrides
		return true
	case r >= 0x2066 && r <= 0x2069: // isolates
		return true
	case r == 0x2028 || r == 0x2029: // line and paragraph separators
		return true
	}
	return false
}
