package testenv

import (
	"strings"
	"testing"
)

func TestFirstDifference(t *testing.T) {
	for _, tc := range []struct {
		got, want, line string
	}{
		{"a\nb\nc", "a\nx\nc", "line 2 "},
		{"a\nb", "a\nb\nc", "line 3 "},
		{"z", "a", "line 1 "},
	} {
		if d := firstDifference([]byte(tc.got), []byte(tc.want)); !strings.Contains(d, tc.line) {
			t.Errorf("firstDifference(%q, %q) = %q, want it to name %q", tc.got, tc.want, d, tc.line)
		}
	}
}

func TestGoldenMatches(t *testing.T) {
	path := t.TempDir() + "/x.golden"
	*update = true
	Golden(t, path, []byte("one\n"))
	*update = false
	Golden(t, path, []byte("one\n")) // the file written above: equal, so no failure
}
