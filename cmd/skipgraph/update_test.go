package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skipgraph/skipgraph/train"
)

// TestUpdateFlag: a run with the optimizer update applied on the host and one with ORT's update
// inside train_step.onnx train the same parameters, byte for byte; an unknown --update is a
// usage error.
func TestUpdateFlag(t *testing.T) {
	fix := trainFixture(t)
	b := filepath.Join(fix, "bundle")
	common := []string{"--data", filepath.Join(fix, "data"), "--epochs", "2", "--batch", "2", "--lr-text", "0.05", "--lr-vision", "0.05", "--threads", "1", "-q"}
	var params [][]byte
	for _, u := range []string{"host", "graph"} {
		out := filepath.Join(t.TempDir(), u)
		if code, _, stderr := runCLI(append([]string{"train", b, "-o", out, "--update", u}, common...)...); code != 0 {
			t.Fatalf("--update %s: exit %d: %s", u, code, stderr)
		}
		p, err := os.ReadFile(filepath.Join(out, train.ParamsFile))
		if err != nil {
			t.Fatal(err)
		}
		params = append(params, p)
	}
	if len(params[0]) < 1024 || !bytes.Equal(params[0], params[1]) {
		t.Errorf("the host update's parameters (%d bytes) differ from the graph update's (%d bytes)", len(params[0]), len(params[1]))
	}
	code, _, stderr := runCLI(append([]string{"train", b, "-o", filepath.Join(t.TempDir(), "x"), "--update", "gpu"}, common...)...)
	if code != 2 || !strings.Contains(stderr, "--update") || strings.Count(strings.TrimSpace(stderr), "\n") > 1 {
		t.Errorf("--update gpu: exit %d, %q; want 2 and a line naming the flag", code, stderr)
	}
}
