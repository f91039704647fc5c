// Package testenv finds the shared reference fixtures for tests and reads their JSON.
package testenv

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

// Fixture returns ../shared/fixtures/NAME beside the repository, or skips the test (only it)
// saying why when the shared fixtures are not there.
func Fixture(t testing.TB, name string) string {
	t.Helper()
	return FixtureFile(t, name)
}

// FixtureFile returns the path of ../shared/fixtures/REL (a fixture folder or a file in one),
// or skips the test (only it) saying why when it is not there.
func FixtureFile(t testing.TB, rel string) string {
	t.Helper()
	p := filepath.Join(filepath.Dir(RepoRoot(t)), "shared", "fixtures", filepath.FromSlash(rel))
	if _, err := os.Stat(p); err != nil {
		t.Skipf("reference fixture %s not found (it lives in ../shared/fixtures beside the repository; CI has it)", p)
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
