package train

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/skipgraph/skipgraph/bundle"
	"github.com/skipgraph/skipgraph/tensorio"

	"github.com/skipgraph/skipgraph/errs"
)

// stepCheckpointRun is a run of the fixture with a step checkpoint every two steps, crashed
// at step 23 (epoch 2 of 3, 12 steps per epoch).
func stepCheckpointRun(t *testing.T, out string) Config {
	b := fixtureBundle(t, "lskip,cskip")
	cfg := quickConfig(t, b, out)
	cfg.Epochs, cfg.Shots, cfg.Batch, cfg.NoAugment = 3, 8, 4, false
	cfg.CheckpointSteps = 2
	return cfg
}

// crashedRun makes a run of stepCheckpointRun that crashed at step 23, and returns its folder.
func crashedRun(t *testing.T) string {
	out := filepath.Join(t.TempDir(), "run")
	cfg := stepCheckpointRun(t, out)
	cfg.OnStep = func(s StepInfo) error {
		if s.Step == 23 {
			return errors.New("simulated crash")
		}
		return nil
	}
	if _, err := Train(context.Background(), cfg); err == nil {
		t.Fatal("the run did not stop")
	}
	return out
}

// TestStepCheckpoints: with CheckpointSteps a crash loses at most that many steps, the newest
// two step checkpoints are kept beside the epoch ones, and the resumed run ends with the same
// parameters as an uninterrupted one.
func TestStepCheckpoints(t *testing.T) {
	ref := filepath.Join(t.TempDir(), "ref")
	if _, err := Train(context.Background(), stepCheckpointRun(t, ref)); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "run")
	cfg := stepCheckpointRun(t, out)
	crash := errors.New("simulated crash")
	cfg.OnStep = func(s StepInfo) error {
		if s.Step == 23 {
			return crash
		}
		return nil
	}
	if _, err := Train(context.Background(), cfg); !errors.Is(err, crash) {
		t.Fatalf("crashed run: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Join(out, CheckpointsDir))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"epoch-1", "step-20", "step-22"}; !slices.Equal(names, want) {
		t.Errorf("checkpoints %v, want %v", names, want)
	}
	again := stepCheckpointRun(t, out)
	again.Resume = true
	var prog bytes.Buffer
	again.Progress = &prog
	if _, err := Train(context.Background(), again); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(prog.String(), "step-22") {
		t.Errorf("did not resume from step-22: %s", prog.String())
	}
	man, err := bundle.ReadManifest(cfg.Bundle)
	if err != nil {
		t.Fatal(err)
	}
	want, err := LoadParams(ref, man)
	if err != nil || len(want) == 0 {
		t.Fatalf("reference parameters: %d (%v)", len(want), err)
	}
	got, err := LoadParams(out, man)
	if err != nil {
		t.Fatal(err)
	}
	for name, w := range want {
		if !slices.Equal(got[name].Float32s(), w.Float32s()) {
			t.Errorf("%s differs from the uninterrupted run's", name)
		}
	}
	if n := countSteps(t, filepath.Join(out, MetricsFile)); n != 36 {
		t.Errorf("metrics.jsonl has %d step records, want 36", n)
	}
}

// TestBadCheckpoint: a checkpoint that cannot be read or does not fit the run is refused with
// an input error naming its file and saying what to do, and nothing of the run changes.
func TestBadCheckpoint(t *testing.T) {
	crashed := crashedRun(t)
	newest := filepath.Join(CheckpointsDir, "step-22", CheckpointFile)
	edit := func(field string, v any) func([]byte) []byte {
		return func(b []byte) []byte {
			var m map[string]any
			json.Unmarshal(b, &m)
			m[field] = v
			out, _ := json.Marshal(m)
			return out
		}
	}
	for _, tc := range []struct {
		name string
		edit func([]byte) []byte
		want string
	}{
		{"not JSON", func([]byte) []byte { return []byte("{\"epoch\": 1,") }, "not valid JSON"},
		{"epoch past the end", edit("epoch", 99), "epoch 99 is outside the run's 0..3"},
		{"cursor out of range", edit("cursor", 500), "cursor 500 is outside the epoch's 12 batches"},
		{"negative cursor", edit("cursor", -1), "cursor -1"},
		{"step mismatch", edit("step", 5), "step 5 does not match"},
		{"cursor and step moved together", func(b []byte) []byte { return edit("step", 14)(edit("cursor", 2)(b)) }, "not named step-14"},
		{"other seed", edit("seed", 12345), "seed 12345 differs"},
		{"correct above seen", edit("correct", 1e6), "correct of"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "run")
			copyDir(t, crashed, out)
			file := filepath.Join(out, newest)
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(file, tc.edit(b), 0o644)
			before := snapshot(t, out)
			again := stepCheckpointRun(t, out)
			again.Resume = true
			_, err = Train(context.Background(), again)
			if err == nil || !errs.IsInput(err) {
				t.Fatalf("resume: %v, want an input error", err)
			}
			for _, w := range []string{file, tc.want, "remove"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message lacks %q: %v", w, err)
				}
			}
			if after := snapshot(t, out); after != before {
				t.Error("the refused resume changed the run's folder")
			}
		})
	}
}

// TestMissingOptimizerState: a checkpoint without an optimizer state file is refused, not
// resumed with zero momentum.
func TestMissingOptimizerState(t *testing.T) {
	out := crashedRun(t)
	file := filepath.Join(out, CheckpointsDir, "step-22", OptimizerFile)
	st, err := tensorio.LoadSafetensors(file)
	if err != nil {
		t.Fatal(err)
	}
	n := len(st.Tensors)
	for name := range st.Tensors {
		delete(st.Tensors, name)
		break
	}
	if n < 2 {
		t.Fatalf("%s holds %d tensors", file, n)
	}
	if err := tensorio.SaveSafetensors(file, st.Tensors, st.Metadata); err != nil {
		t.Fatal(err)
	}
	again := stepCheckpointRun(t, out)
	again.Resume = true
	_, err = Train(context.Background(), again)
	if err == nil || !errs.IsInput(err) || !strings.Contains(err.Error(), "optimizer state") || !strings.Contains(err.Error(), "step-22") {
		t.Fatalf("resume: %v, want an input error naming the optimizer state", err)
	}
}

// TestCheckConfigBounds: numbers a run cannot use are refused before anything is read.
func TestCheckConfigBounds(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"threads negative", func(c *Config) { c.Threads = -5 }, "--threads -5"},
		{"threads huge", func(c *Config) { c.Threads = 100000 }, "--threads 100000"},
		{"batch huge", func(c *Config) { c.Batch = MaxBatch + 1 }, "--batch"},
		{"warmup lr NaN", func(c *Config) { c.WarmupLR = math.NaN() }, "--warmup-lr NaN"},
		{"warmup lr Inf", func(c *Config) { c.WarmupLR = math.Inf(1) }, "--warmup-lr +Inf"},
		{"val fraction NaN", func(c *Config) { c.ValFraction = math.NaN() }, "--val-fraction NaN"},
		{"checkpoint steps negative", func(c *Config) { c.CheckpointSteps = -1 }, "--checkpoint-every -1"},
		{"keep negative", func(c *Config) { c.KeepCheckpoints = -1 }, "--keep-checkpoints -1"},
	} {
		cfg := DefaultConfig()
		cfg.Bundle, cfg.Data, cfg.Out = "b", "d", "o"
		tc.edit(&cfg)
		err := checkConfig(&cfg)
		if err == nil || !errs.IsInput(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an input error with %q", tc.name, err, tc.want)
		}
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.CopyFS(to, os.DirFS(from)); err != nil {
		t.Fatal(err)
	}
}

// snapshot lists a folder's files with their sizes, and the contents of its JSON files.
func snapshot(t *testing.T, dir string) string {
	var b strings.Builder
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil {
			c, _ := os.ReadFile(p)
			fmt.Fprintf(&b, "%s %d\n", p, len(c))
			if !info.IsDir() && strings.HasSuffix(p, ".json") {
				b.Write(c)
			}
		}
		return nil
	})
	return b.String()
}
