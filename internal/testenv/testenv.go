// Package testenv finds the reference fixtures for tests and reads their JSON.
package testenv

//go:generate /usr/bin/python3 ../../testdata/clip-hf-tiny/gen.py

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/skipgraph/skipgraph/tensorio"
)

// RepoRoot returns the repository root (the folder holding go.mod), walking up from the current
// directory.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
}

// FixturesEnv names the environment variable that points the fixture lookup at another folder
// of reference fixtures (laid out like testdata: NAME/model.onnx, NAME/reference.json), for
// example a second export to cross-check against. Unset, the repository's testdata is used.
const FixturesEnv = "SKIPGRAPH_FIXTURES"

// FixturesDir returns the folder the reference fixtures are read from: $SKIPGRAPH_FIXTURES when
// set (a relative path is taken from the repository root), else the repository's testdata folder
// (written by testdata/clip-hf-tiny/gen.py).
func FixturesDir(t testing.TB) string {
	t.Helper()
	root := RepoRoot(t)
	if d := os.Getenv(FixturesEnv); d != "" {
		if !filepath.IsAbs(d) {
			d = filepath.Join(root, d)
		}
		return filepath.Clean(d)
	}
	return filepath.Join(root, "testdata")
}

// Fixture returns the reference fixture folder NAME (see FixturesDir).
func Fixture(t testing.TB, name string) string {
	t.Helper()
	return FixtureFile(t, name)
}

// FixtureFile returns the path of REL (a fixture folder or a file in one) under FixturesDir.
// The fixtures are part of the repository, so a missing one fails the test.
func FixtureFile(t testing.TB, rel string) string {
	t.Helper()
	p := filepath.Join(FixturesDir(t), filepath.FromSlash(rel))
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("reference fixture %s not found (/usr/bin/python3 testdata/clip-hf-tiny/gen.py writes it; %s overrides the folder)", p, FixturesEnv)
	}
	return p
}

// LoadJSON reads a JSON object.
func LoadJSON(t testing.TB, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

// Tensor converts a decoded {shape, dtype, data} object to a tensor.
func Tensor(t testing.TB, v any) *tensorio.Tensor {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var x tensorio.Tensor
	if err := json.Unmarshal(b, &x); err != nil {
		t.Fatalf("not a tensor: %v", err)
	}
	return &x
}
