package train

import (
	"context"
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/skipgraph/skipgraph/runtime"
)

// TestExport: the exported model keeps the source's inputs and outputs, runs in ORT, and
// classifies as the bundle with the trained parameters does.
func TestExport(t *testing.T) {
	b := fixtureBundle(t, "lskip,cskip")
	model, dataDir := fixture(t)
	out := filepath.Join(t.TempDir(), "run")
	cfg := quickConfig(t, b, out)
	cfg.Epochs = 3
	if _, err := Train(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	onnx := filepath.Join(t.TempDir(), "trained.onnx")
	files, err := Export(ExportConfig{Bundle: b, Params: out, Out: onnx})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || files[0] != onnx {
		t.Fatalf("wrote %v", files)
	}
	src, err := runtime.NewSession(filepath.Join(model, "model.onnx"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	exp, err := runtime.NewSession(onnx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer exp.Close()
	if !slices.Equal(src.InputNames(), exp.InputNames()) || !slices.Equal(src.OutputNames(), exp.OutputNames()) {
		t.Errorf("inputs/outputs changed: %v %v -> %v %v", src.InputNames(), src.OutputNames(), exp.InputNames(), exp.OutputNames())
	}
	trained, err := Evaluate(EvalConfig{Model: b, Params: out, Data: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	exported, err := Evaluate(EvalConfig{Model: onnx, Data: dataDir, Tokenizer: model})
	if err != nil {
		t.Fatal(err)
	}
	original, err := Evaluate(EvalConfig{Model: model, Data: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("accuracy: original %.1f%%, bundle with trained parameters %.1f%%, exported model %.1f%%", 100*original.Accuracy, 100*trained.Accuracy, 100*exported.Accuracy)
	if math.Abs(trained.Accuracy-exported.Accuracy) > 1e-9 {
		t.Errorf("the exported model's accuracy %.4f differs from the trained bundle's %.4f", exported.Accuracy, trained.Accuracy)
	}
	for i := range trained.Confusion {
		if !slices.Equal(trained.Confusion[i], exported.Confusion[i]) {
			t.Errorf("confusion row %d: exported %v, bundle %v", i, exported.Confusion[i], trained.Confusion[i])
		}
	}
	if trained.Accuracy <= original.Accuracy {
		t.Errorf("training did not help: %.3f -> %.3f", original.Accuracy, trained.Accuracy)
	}
}
