package train

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// TestLearns: training the tiny model goes from chance to clearly above it, with full
// fine-tuning and with LSkip+CSkip.
func TestLearns(t *testing.T) {
	for _, strategies := range []string{"full", "lskip,cskip"} {
		t.Run(strategies, func(t *testing.T) {
			b := fixtureBundle(t, strategies)
			_, dataDir := fixture(t)
			before, err := Evaluate(EvalConfig{Model: b, Data: dataDir, Threads: 1})
			if err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "run")
			start := time.Now()
			res, err := Train(context.Background(), quickConfig(t, b, out))
			if err != nil {
				t.Fatal(err)
			}
			after, err := Evaluate(EvalConfig{Model: b, Params: out, Data: dataDir, Threads: 1})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %d steps in %v, test accuracy %.1f%% -> %.1f%% (val %.1f%%, train %.1f%%, loss %.3f; %.1f steps/s)",
				strategies, res.Steps, time.Since(start).Round(time.Millisecond), 100*before.Accuracy, 100*after.Accuracy, 100*res.ValAcc, 100*res.TrainAcc, res.Loss, res.StepsPerSec)
			chance := 1.0 / fixClasses
			if before.Accuracy > 1.5*chance {
				t.Errorf("zero-shot accuracy %.1f%% of the random model, want about chance (%.1f%%)", 100*before.Accuracy, 100*chance)
			}
			if after.Accuracy < 3*chance {
				t.Errorf("test accuracy %.1f%% after training, chance is %.1f%%", 100*after.Accuracy, 100*chance)
			}
		})
	}
}
