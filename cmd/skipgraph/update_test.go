package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skipgraph/skipgraph/bundle"
	"github.com/skipgraph/skipgraph/tensorio"
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

// TestMixedPrecisionCheckpoints: a run of a bundle converted with --precision fp16 (dynamic loss
// scaling, the update in the graph) writes its checkpoints, loss-scaling state included.
func TestMixedPrecisionCheckpoints(t *testing.T) {
	fix := trainFixture(t)
	b := filepath.Join(t.TempDir(), "fp16")
	if code, _, stderr := runCLI("convert", filepath.Join(fix, "model", "model.onnx"), "-o", b, "--strategy", "lskip", "--precision", "fp16", "-q"); code != 0 {
		t.Fatalf("convert: exit %d: %s", code, stderr)
	}
	out := filepath.Join(t.TempDir(), "run")
	code, _, stderr := runCLI("train", b, "-o", out, "--data", filepath.Join(fix, "data"), "--epochs", "2", "--batch", "2", "--threads", "1", "-q")
	if code != 0 {
		t.Fatalf("train: exit %d: %s", code, stderr)
	}
	entries, _ := os.ReadDir(filepath.Join(out, train.CheckpointsDir))
	if len(entries) == 0 {
		t.Fatal("no checkpoint written")
	}
	st, err := tensorio.LoadSafetensors(filepath.Join(out, train.CheckpointsDir, entries[len(entries)-1].Name(), train.OptimizerFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{bundle.LossScaleInput, bundle.LossScaleGood} {
		if st.Tensors[name] == nil {
			t.Errorf("the checkpoint's optimizer state has no %s", name)
		}
	}
}
