package safeio

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skipgraph/skipgraph/errs"
)

// TestOpenRefusesSpecialFiles: a named pipe without a writer, a folder and a device are refused
// at once; a regular file (also through a link) opens and reads.
func TestOpenRefusesSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	pipe := filepath.Join(dir, "pipe")
	if err := syscall.Mkfifo(pipe, 0o644); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("hello"), 0o644)
	link := filepath.Join(dir, "link")
	os.Symlink(file, link)
	pipeLink := filepath.Join(dir, "pipelink")
	os.Symlink(pipe, pipeLink)
	cases := []struct {
		path, want string
	}{
		{pipe, "named pipe"},
		{pipeLink, "named pipe"},
		{dir, "folder"},
		{"/dev/null", "device"},
		{file, ""},
		{link, ""},
	}
	for _, tc := range cases {
		t.Run(filepath.Base(tc.path), func(t *testing.T) {
			done := make(chan error, 1)
			go func() {
				_, err := ReadFile(tc.path)
				if err == nil {
					err = CheckRegular(tc.path)
				}
				done <- err
			}()
			var err error
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("ReadFile blocked")
			}
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v: want ErrNotRegular saying %q", err, tc.want)
			}
			if err := CheckRegular(tc.path); !errors.Is(err, ErrNotRegular) {
				t.Fatalf("CheckRegular: %v", err)
			}
		})
	}
}

// TestWithin: names read from a file of a folder resolve inside it or are refused.
func TestWithin(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "bundle")
	os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "a.onnx"), nil, 0o644)
	os.WriteFile(filepath.Join(dir, "sub", "b.npy"), nil, 0o644)
	os.WriteFile(filepath.Join(root, "outside.onnx"), nil, 0o644)
	os.Symlink(filepath.Join(root, "outside.onnx"), filepath.Join(dir, "escape.onnx"))
	os.Symlink("a.onnx", filepath.Join(dir, "inner.onnx"))
	cases := []struct {
		name, want string
	}{
		{"a.onnx", ""},
		{"sub/b.npy", ""},
		{"inner.onnx", ""},
		{"../outside.onnx", "leaves the folder"},
		{"sub/../../outside.onnx", "leaves the folder"},
		{filepath.Join(root, "outside.onnx"), "absolute path"},
		{"escape.onnx", "through a symbolic link"},
		{"", "is empty"},
		{"a\x00b", "NUL"},
		{"missing.onnx", "does not exist"},
	}
	for _, tc := range cases {
		p, err := Within(dir, tc.name)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.name, err)
		case tc.want == "" && filepath.Dir(p) != dir && filepath.Dir(filepath.Dir(p)) != dir:
			t.Errorf("%q resolved to %s, outside %s", tc.name, p, dir)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: error %v, want %q", tc.name, err, tc.want)
		}
	}
	if _, err := Within(dir, "missing.onnx"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing name does not wrap os.ErrNotExist: %v", err)
	}
}

// TestOutputCheck: the one rule of every output path.
func TestOutputCheck(t *testing.T) {
	root := t.TempDir()
	p := func(rel string) string { return filepath.Join(root, rel) }
	os.MkdirAll(p("models/m"), 0o755)
	os.WriteFile(p("models/m/model.onnx"), nil, 0o644)
	os.MkdirAll(p("ours"), 0o755)
	os.MkdirAll(p("theirs"), 0o755)
	os.Symlink(p("models"), p("alias"))
	ours := func(path string) error {
		if filepath.Base(path) == "ours" {
			return nil
		}
		return errors.New("no marker")
	}
	in := []string{p("models/m/model.onnx")}
	cases := []struct {
		name  string
		out   Output
		want  string // "" for no error
		input bool
	}{
		{"new path", Output{Path: p("new"), Inputs: in}, "", true},
		{"the input itself", Output{Path: p("models/m/model.onnx"), Inputs: in, Force: true, Ours: ours}, "is an input", true},
		{"the input's folder", Output{Path: p("models/m"), Inputs: in, Force: true, Ours: ours}, "holds the input", true},
		{"a parent of the input", Output{Path: p("models"), Inputs: in, Force: true, Ours: ours}, "holds the input", true},
		{"a parent through a link", Output{Path: p("alias"), Inputs: in, Force: true, Ours: ours}, "holds the input", true},
		{"ours without force", Output{Path: p("ours"), Ours: ours}, "pass --force", true},
		{"ours with force", Output{Path: p("ours"), Force: true, Ours: ours}, "", true},
		{"ours replaced without a --force flag", Output{Path: p("ours"), Replace: true, Ours: ours}, "", true},
		{"theirs with force", Output{Path: p("theirs"), Force: true, Ours: ours}, "not a thing that skipgraph wrote (no marker)", true},
		{"theirs without force", Output{Path: p("theirs"), Ours: ours}, "already exists and is not a thing", true},
		{"theirs, nothing recognises", Output{Path: p("theirs"), Replace: true}, "not a thing that skipgraph wrote", true},
		{"inside an input folder is fine", Output{Path: p("models/m/bundle"), Inputs: []string{p("models/m")}}, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.out.What = "a thing"
			err := tc.out.Check()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errs.IsInput(err) {
				t.Fatalf("error %v: want an input error saying %q", err, tc.want)
			}
		})
	}
}

// TestTempDir: Commit replaces the target; a stale temporary folder (lock free) is removed and
// a target it had moved aside is moved back; a held one stays.
func TestTempDir(t *testing.T) {
	root := t.TempDir()
	target := filepath.Join(root, "b")
	os.MkdirAll(target, 0o755)
	os.WriteFile(filepath.Join(target, "old"), nil, 0o644)
	td, err := NewTempDir(target)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(td.Path, "new"), nil, 0o644)
	if err := td.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(target, "new")); err != nil {
		t.Fatal("the new content is not in place")
	}
	if left, _ := filepath.Glob(filepath.Join(root, ".b.tmp-*")); len(left) != 0 {
		t.Fatalf("left after commit: %v", left)
	}

	// a dead writer that had moved the target aside: the target comes back
	stale := filepath.Join(root, ".b.tmp-123")
	os.MkdirAll(stale, 0o755)
	os.WriteFile(stale+".lock", nil, 0o600)
	os.Rename(target, stale+".old")
	// a live writer: its lock is held
	live, err := NewTempDir(target)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Abort()
	if _, err := os.Stat(filepath.Join(target, "new")); err != nil {
		t.Fatalf("the target moved aside by a dead writer was not moved back: %v", err)
	}
	for _, p := range []string{stale, stale + ".lock", stale + ".old"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s is still there", p)
		}
	}
	CleanStale(target)
	if _, err := os.Stat(live.Path); err != nil {
		t.Fatalf("the live writer's folder was removed: %v", err)
	}
	// a folder without a lock file is not recognised, and stays
	foreign := filepath.Join(root, ".b.tmp-999")
	os.MkdirAll(foreign, 0o755)
	CleanStale(target)
	if _, err := os.Stat(foreign); err != nil {
		t.Fatal("a folder without a lock file was removed")
	}
	live.Abort()
	if _, err := os.Stat(live.Path); err == nil {
		t.Fatal("Abort left the folder")
	}
}
