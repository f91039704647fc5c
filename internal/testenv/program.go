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
	msg := "none of " + strings.Join(names, ", ") + " on PATH; install Debian's " + debianPackage
	if os.Getenv(require) != "" {
		t.Fatalf("%s (%s is set, so it is required)", msg, require)
	}
	t.Skip(msg + " to run this test")
	return ""
}
