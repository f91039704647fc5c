package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skipgraph/skipgraph/internal/testenv"
	"github.com/skipgraph/skipgraph/tensorio"
)

// TestBadModelFiles: truncated, empty, non-ONNX and cyclic inputs each give one clear line on
// stderr and exit code 2, never a panic.
func TestBadModelFiles(t *testing.T) {
	fixture := filepath.Join(testenv.Fixture(t, "clip-hf-tiny"), "model.onnx")
	good, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cyclic := cyclicModel(t, dir)
	cases := []struct {
		name, path, want string
	}{
		{"truncated", write("truncated.onnx", good[:len(good)/2]), "truncated"},
		{"empty", write("empty.onnx", nil), "empty"},
		{"text", write("notes.onnx", []byte("hello, this is not a model\n")), "not an ONNX model"},
		{"png", write("image.onnx", []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")), "not an ONNX model"},
		{"cyclic", cyclic, "cycle"},
		{"missing", filepath.Join(dir, "nope.onnx"), "no such file"},
	}
	for _, tc := range cases {
		for _, cmd := range [][]string{{"inspect", tc.path}, {"convert", tc.path, "-o", filepath.Join(dir, "out-"+tc.name)}} {
			t.Run(tc.name+"/"+cmd[0], func(t *testing.T) {
				code, _, stderr := runCLI(cmd...)
				if code != 2 {
					t.Fatalf("exit %d, want 2; stderr %q", code, stderr)
				}
				lines := strings.Split(strings.TrimSpace(stderr), "\n")
				last := lines[len(lines)-1]
				if !strings.Contains(last, tc.want) || !strings.Contains(last, filepath.Base(tc.path)) || strings.Contains(stderr, "goroutine") {
					t.Fatalf("stderr %q: want one line naming %s and saying %q", stderr, filepath.Base(tc.path), tc.want)
				}
				if _, err := os.Stat(filepath.Join(dir, "out-"+tc.name)); err == nil {
					t.Fatal("a failed convert left an output folder")
				}
			})
		}
	}
}

// cyclicModel writes a synthetic model in which one node reads the last node's output.
func cyclicModel(t *testing.T, dir string) string {
	t.Helper()
	if code, _, stderr := runCLI("synth", "-o", dir); code != 0 {
		t.Fatal(stderr)
	}
	return writeCyclic(t, filepath.Join(dir, "model.onnx"), filepath.Join(dir, "cyclic.onnx"))
}

// TestRunSavedFixture: the fixture saved again by skipgraph runs on ONNX Runtime with the
// reference outputs (max abs diff < 1e-5).
func TestRunSavedFixture(t *testing.T) {
	dir := testenv.Fixture(t, "clip-hf-tiny")
	tmp := t.TempDir()
	saved := filepath.Join(tmp, "saved.onnx")
	resaveModel(t, filepath.Join(dir, "model.onnx"), saved)
	a, _ := os.ReadFile(filepath.Join(dir, "model.onnx"))
	b, _ := os.ReadFile(saved)
	if string(a) != string(b) {
		t.Fatal("saved copy differs from the fixture")
	}
	inputs, err := tensorio.LoadJSONMap(filepath.Join(dir, "reference.json"), "inputs")
	if err != nil {
		t.Fatal(err)
	}
	outputs, err := tensorio.LoadJSONMap(filepath.Join(dir, "reference.json"), "outputs")
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	for name, tt := range inputs {
		p := filepath.Join(tmp, name+".npy")
		if err := tensorio.SaveNPY(p, tt); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--input", name+"="+p)
	}
	outDir := filepath.Join(tmp, "out")
	code, _, stderr := runCLI(append([]string{"run", saved, "-o", outDir}, args...)...)
	if code != 0 {
		t.Fatalf("run: exit %d: %s", code, stderr)
	}
	for name, want := range outputs {
		got, err := tensorio.LoadNPY(filepath.Join(outDir, name+".npy"))
		if err != nil {
			t.Fatal(err)
		}
		d, err := tensorio.MaxAbsDiff(got, want)
		if err != nil || d >= 1e-5 {
			t.Errorf("%s: max abs diff %g (%v)", name, d, err)
		}
	}
}
