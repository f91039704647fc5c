package train

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skipgraph/skipgraph/tensorio"
)

// FuzzParamsIndex: no index.json makes LoadTensors panic or answer with several lines, and
// every tensor it returns comes from a file of the folder.
func FuzzParamsIndex(f *testing.F) {
	dir := f.TempDir()
	x, _ := tensorio.FromSlice([]int64{2, 3}, []float32{1, 2, 3, 4, 5, 6})
	if err := SaveTensors(dir, map[string]*tensorio.Tensor{"text_model.w": x, "a/b": x}); err != nil {
		f.Fatal(err)
	}
	seed, err := os.ReadFile(filepath.Join(dir, IndexFile))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(`{"files": {"x": "../x.npy"}}`))
	f.Add([]byte(`{"files": {"x": ""}}`))
	f.Add([]byte(`{"files": {"x": "."}}`))
	f.Add([]byte(`{"files": null}`))
	f.Add([]byte(`{"files": {"x": "line\nbreak.npy"}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d := t.TempDir()
		for _, name := range []string{"text_model.w.npy", "a%2Fb.npy"} {
			src, _ := os.ReadFile(filepath.Join(dir, name))
			os.WriteFile(filepath.Join(d, name), src, 0o644)
		}
		os.WriteFile(filepath.Join(d, IndexFile), b, 0o644)
		ts, err := LoadTensors(d)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error has several lines: %v", err)
			}
			return
		}
		for name, v := range ts {
			if v == nil || !tensorio.SameShape(v.Shape, x.Shape) {
				t.Fatalf("tensor %q: %v", name, v)
			}
		}
	})
}

// FuzzCheckpoint: no checkpoint.json makes the resume check panic, and one it accepts is a
// position of the run (3 epochs of 12 steps, seed 3).
func FuzzCheckpoint(f *testing.F) {
	f.Add([]byte(`{"epoch": 1, "step": 14, "cursor": 2, "seed": 3, "rng": "x", "loss_sum": 2.5, "correct": 3, "seen": 8, "elapsed_s": 1.5}`), "step-14")
	f.Add([]byte(`{"epoch": 2, "step": 24, "cursor": 0, "seed": 3}`), "epoch-2")
	f.Add([]byte(`{"epoch": 99, "step": 24, "cursor": 0, "seed": 3}`), "epoch-99")
	f.Add([]byte(`{"epoch": 1, "step": 500, "cursor": 488, "seed": 3}`), "step-500")
	f.Add([]byte(`{"epoch": 1, "loss_sum": 1e400}`), "epoch-1")
	f.Add([]byte(`{"epoch": 1,`), "epoch-1")
	f.Fuzz(func(t *testing.T, b []byte, name string) {
		if strings.ContainsAny(name, "/\x00") || name == "" || name == "." || name == ".." {
			return
		}
		d := filepath.Join(t.TempDir(), name)
		if err := os.Mkdir(d, 0o755); err != nil {
			return
		}
		os.WriteFile(filepath.Join(d, CheckpointFile), b, 0o644)
		var ck Checkpoint
		if err := readJSON(filepath.Join(d, CheckpointFile), &ck); err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error has several lines: %v", err)
			}
			return
		}
		const epochs, perEpoch = 3, 12
		if err := ck.check(d, epochs, perEpoch, 3); err != nil {
			return
		}
		if ck.Epoch < 0 || ck.Epoch > epochs || ck.Cursor < 0 || ck.Cursor >= perEpoch || ck.Step != ck.Epoch*perEpoch+ck.Cursor || ck.Correct > ck.Seen {
			t.Fatalf("accepted %+v", ck)
		}
	})
}
