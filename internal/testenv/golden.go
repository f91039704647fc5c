package testenv

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// update is the one -update flag of the project's tests: `go test ./pkg -update` rewrites the
// golden files that pkg's tests compare with, instead of comparing.
var update = flag.Bool("update", false, "rewrite golden files in testdata instead of comparing with them")

// Update reports whether the tests run with -update.
func Update() bool { return *update }

// Golden compares got with the file at path (a golden file under a testdata folder). Under
// -update it writes got there first, creating the folder. A missing or different file fails the
// test with the command that rewrites it.
func Golden(t testing.TB, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -run '%s' -update writes it)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -run '%s' -update rewrites it if the change is intended):\n%s", path, t.Name(), firstDifference(got, want))
	}
}

// firstDifference describes where got and want first differ, with a few lines of each.
func firstDifference(got, want []byte) string {
	gl, wl := bytes.Split(got, []byte("\n")), bytes.Split(want, []byte("\n"))
	i := 0
	for i < len(gl) && i < len(wl) && bytes.Equal(gl[i], wl[i]) {
		i++
	}
	show := func(lines [][]byte) []byte {
		end := min(i+5, len(lines))
		if i >= end {
			return []byte("(end of file)")
		}
		return bytes.Join(lines[i:end], []byte("\n"))
	}
	return "first difference at line " + itoa(i+1) + " (" + itoa(len(gl)) + " lines got, " + itoa(len(wl)) + " want)\n--- got\n" + string(show(gl)) + "\n--- want\n" + string(show(wl))
}

func itoa(n int) string { return strconv.Itoa(n) }
