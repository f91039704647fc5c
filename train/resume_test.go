package train

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/skipgraph/skipgraph/bundle"
	"github.com/skipgraph/skipgraph/tensorio"
)

// TestResume: a run stopped at an arbitrary step and resumed gives the same weights as a run
// that was never interrupted (same seed), whether it was stopped gracefully (context
// cancelled: an interrupt checkpoint) or crashed (only the epoch checkpoints survive).
func TestResume(t *testing.T) {
	b := fixtureBundle(t, "lskip,cskip")
	base := func(out string) Config {
		cfg := quickConfig(t, b, out)
		cfg.Epochs = 3
		cfg.NoAugment = false // the augmentation stream must be reproducible too
		cfg.Shots = 8         // same-class batches
		cfg.Batch = 4
		return cfg
	}
	ref := filepath.Join(t.TempDir(), "ref")
	if _, err := Train(context.Background(), base(ref)); err != nil {
		t.Fatal(err)
	}
	man, err := bundle.ReadManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	want, err := LoadParams(ref, man)
	if err != nil {
		t.Fatal(err)
	}
	crash := errors.New("simulated crash")
	for _, tc := range []struct {
		name   string
		stopAt int
		cancel bool
	}{
		{"cancel mid-epoch", 17, true},
		{"crash mid-epoch", 19, false},
		{"cancel at an epoch's last step", 12, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "run")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			cfg := base(out)
			cfg.OnStep = func(s StepInfo) error {
				if s.Step == tc.stopAt {
					if tc.cancel {
						cancel()
						return nil
					}
					return crash
				}
				return nil
			}
			_, err := Train(ctx, cfg)
			if err == nil {
				t.Fatal("the run was not stopped")
			}
			if tc.cancel && !errors.Is(err, ErrStopped) || !tc.cancel && !errors.Is(err, crash) {
				t.Fatalf("stopped with %v", err)
			}
			if _, err := os.Stat(filepath.Join(out, ParamsFile)); err == nil {
				t.Fatal("a stopped run wrote final parameters")
			}
			again := base(out)
			again.Resume = true
			res, err := Train(context.Background(), again)
			if err != nil {
				t.Fatal(err)
			}
			got, err := LoadParams(out, man)
			if err != nil {
				t.Fatal(err)
			}
			worst := 0.0
			for name, w := range want {
				d, err := tensorio.MaxAbsDiff(got[name], w)
				if err != nil {
					t.Fatal(err)
				}
				worst = max(worst, d)
			}
			t.Logf("stopped at step %d, resumed to step %d: largest difference %.3g", tc.stopAt, res.Steps, worst)
			if worst > 1e-6 {
				t.Errorf("resumed weights differ from the uninterrupted run's by %.3g", worst)
			}
			// metrics.jsonl holds each step once.
			steps := countSteps(t, filepath.Join(out, MetricsFile))
			if steps != res.Steps {
				t.Errorf("metrics.jsonl has %d step records, want %d", steps, res.Steps)
			}
		})
	}
}

func countSteps(t *testing.T, path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range splitLines(b) {
		if len(line) > 0 && containsStep(line) {
			n++
		}
	}
	return n
}

func splitLines(b []byte) [][]byte {
	var out [][]byte
	start := 0
	for i, c := range b {
		if c == '\n' {
			out = append(out, b[start:i])
			start = i + 1
		}
	}
	return out
}

func containsStep(line []byte) bool {
	const key = `"type":"step"`
	for i := 0; i+len(key) <= len(line); i++ {
		if string(line[i:i+len(key)]) == key {
			return true
		}
	}
	return false
}
