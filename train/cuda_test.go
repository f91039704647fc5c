package train

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// On CUDA (SKIPGRAPH_CUDA=1, a GPU and the CUDA provider): training the fixture's LSkip+CSkip
// bundle for at least 20 steps raises the test accuracy well above chance, and the exported
// model runs on CUDA with the accuracy of the trained bundle.
func TestCUDATrainAndExport(t *testing.T) {
	if os.Getenv("SKIPGRAPH_CUDA") != "1" {
		t.Skip("SKIPGRAPH_CUDA=1 not set (needs an NVIDIA GPU and the CUDA provider; bench/cuda.sh runs it)")
	}
	b := fixtureBundle(t, "lskip,cskip")
	model, dataDir := fixture(t)
	before, err := Evaluate(EvalConfig{Model: b, Data: dataDir, Device: "cuda"})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "run")
	cfg := quickConfig(t, b, out)
	cfg.Device = "cuda"
	res, err := Train(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Steps < 20 {
		t.Fatalf("%d steps, want at least 20", res.Steps)
	}
	after, err := Evaluate(EvalConfig{Model: b, Params: out, Data: dataDir, Device: "cuda"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cuda: %d steps, %.1f steps/s, test accuracy %.1f%% -> %.1f%%, loss %.3f", res.Steps, res.StepsPerSec, 100*before.Accuracy, 100*after.Accuracy, res.Loss)
	chance := 1.0 / fixClasses
	if after.Accuracy < 3*chance || after.Accuracy <= before.Accuracy {
		t.Errorf("test accuracy %.1f%% -> %.1f%% on CUDA (chance %.1f%%): it did not rise", 100*before.Accuracy, 100*after.Accuracy, 100*chance)
	}
	onnx := filepath.Join(t.TempDir(), "trained.onnx")
	if _, err := Export(ExportConfig{Bundle: b, Params: out, Out: onnx}); err != nil {
		t.Fatal(err)
	}
	exported, err := Evaluate(EvalConfig{Model: onnx, Data: dataDir, Tokenizer: model, Device: "cuda"})
	if err != nil {
		t.Fatal(err)
	}
	if d := exported.Accuracy - after.Accuracy; d > 0.05 || d < -0.05 {
		t.Errorf("exported model on CUDA: accuracy %.1f%%, trained bundle %.1f%%", 100*exported.Accuracy, 100*after.Accuracy)
	}
}
