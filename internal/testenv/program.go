package testenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Program returns the path of the first of names found on PATH. When none is there the test is
// skipped, saying which Debian package provides it, unless the environment variable require is
// set (CI sets it), in which case the test fails.
func Program(t testing.TB, require, debianPackage string, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	Missing(t, require, "none of "+strings.Join(names, ", ")+" on PATH; install Debian's "+debianPackage+" to run this test")
	return ""
}

// Missing skips the test saying what is missing (msg), or fails it when the environment
// variable require is set (CI sets it, so that a missing package is not a silent skip there).
func Missing(t testing.TB, require, msg string) {
	t.Helper()
	if os.Getenv(require) != "" {
		t.Fatalf("%s (%s is set, so it is required)", msg, require)
	}
	t.Skip(msg)
}
