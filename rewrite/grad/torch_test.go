package grad

import (
	"encoding/json"
	"github.com/skipgraph/skipgraph/internal/testenv"
	"math"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/skipgraph/skipgraph/graph"
	"github.com/skipgraph/skipgraph/graph/onnxio"
	"github.com/skipgraph/skipgraph/internal/onnxcheck"
	"github.com/skipgraph/skipgraph/tensorio"
)

// fixtureDir returns the folder of a reference fixture (see testenv.FixturesDir).
func fixtureDir(tb testing.TB, name string) string {
	tb.Helper()
	return filepath.Dir(testenv.FixtureFile(tb, name+"/model.onnx"))
}

type reference struct {
	Inputs map[string]*tensorio.Tensor `json:"inputs"`
	Labels *tensorio.Tensor            `json:"labels"`
	Cases  map[string]struct {
		Loss  float64                     `json:"loss"`
		Grads map[string]*tensorio.Tensor `json:"grads"`
	} `json:"cases"`
}

// graphToTensorio converts an initializer's tensor for feeding.
func graphToTensorio(tb testing.TB, t *graph.Tensor) *tensorio.Tensor {
	tb.Helper()
	raw, err := t.Bytes()
	if err != nil {
		tb.Fatal(err)
	}
	out, err := tensorio.FromBytes(tensorio.DType(t.DType), t.Dims, raw)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// TestTorchFullFineTune differentiates the reference CLIP export (every initializer but
// logit_scale trainable, softmax cross-entropy of logits_per_image) and compares the loss and
// every gradient, run on ONNX Runtime, with PyTorch's.
func TestTorchFullFineTune(t *testing.T) {
	dir := fixtureDir(t, "clip-hf-tiny")
	requireORT(t)
	var ref reference
	b, err := os.ReadFile(filepath.Join(dir, "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	want, ok := ref.Cases["full_ft"]
	if !ok {
		t.Fatal("reference.json has no cases.full_ft")
	}
	m, err := onnxio.Load(filepath.Join(dir, "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	g := m.Graph
	feeds := map[string]*tensorio.Tensor{}
	for name, v := range ref.Inputs {
		feeds[name] = v
	}
	var names []string
	for name := range want.Grads {
		names = append(names, name)
	}
	sort.Strings(names)
	var params []*graph.Value
	for _, name := range names {
		v := g.Value(name)
		if v == nil || v.Const == nil {
			t.Fatalf("reference gradient %q names no initializer of the model", name)
		}
		tv, err := g.InitializerToInput(v)
		if err != nil {
			t.Fatal(err)
		}
		feeds[name] = graphToTensorio(t, tv)
		params = append(params, v)
	}
	labels, err := g.AddInput("labels", graph.TensorType(graph.Int64, ref.Labels.Shape...))
	if err != nil {
		t.Fatal(err)
	}
	feeds["labels"] = ref.Labels
	logits := g.Value("logits_per_image")
	if logits == nil {
		t.Fatal("the model has no logits_per_image")
	}
	loss := SoftmaxCrossEntropy(graph.NewBuilder(g, "loss"), logits, labels)
	if err := g.Rename(loss, "loss"); err != nil {
		t.Fatal(err)
	}
	loss.Type = graph.TensorType(graph.Float)
	grads, err := Backward(m, loss, params, Options{})
	if err != nil {
		t.Fatalf("backward: %v", err)
	}
	if m.Opset("") != RaisedOpset {
		t.Errorf("opset %d after Backward, want %d", m.Opset(""), RaisedOpset)
	}
	g.Outputs = nil
	g.AddOutput(loss)
	for _, p := range params {
		gv := grads[p]
		if gv.IsGraphOutput() {
			gv = graph.NewBuilder(g, "out").Op("Identity", []*graph.Value{gv})
			gv.Type = p.Type
		}
		if err := g.Rename(gv, p.Name+"_grad"); err != nil {
			t.Fatal(err)
		}
		g.AddOutput(gv)
	}
	if err := g.Verify(); err != nil {
		t.Fatal(err)
	}
	t.Logf("forward+backward graph: %d nodes", g.NumNodes())
	if p := saveForChecker(t, t.TempDir(), m); p != "" {
		onnxcheck.Check(t, p)
	}
	out := run(t, m, feeds)

	gotLoss := asFloat64s(out["loss"])[0]
	if rel := math.Abs(gotLoss-want.Loss) / math.Abs(want.Loss); rel > 1e-4 {
		t.Errorf("loss %.7g, torch %.7g (relative error %.2e)", gotLoss, want.Loss, rel)
	}
	// A gradient that is zero in exact arithmetic (the key-projection biases: softmax ignores a
	// shift shared by a whole row of scores) is float32 rounding noise in both results, many
	// orders of magnitude below the others: for those (norm under 1e-6 of the largest gradient
	// norm) the difference is bounded by that level instead of the tensor's own norm.
	norms := map[string]float64{}
	maxNorm := 0.0
	for _, name := range names {
		var n float64
		for _, x := range asFloat64s(want.Grads[name]) {
			n += x * x
		}
		norms[name] = math.Sqrt(n)
		maxNorm = max(maxNorm, norms[name])
	}
	worst, worstName := 0.0, ""
	for _, name := range names {
		got, ref := out[name+"_grad"], want.Grads[name]
		if !tensorio.SameShape(got.Shape, ref.Shape) {
			t.Errorf("%s: gradient shape %v, torch %v", name, got.Shape, ref.Shape)
			continue
		}
		a, r := asFloat64s(got), asFloat64s(ref)
		var diff float64
		for i := range a {
			diff += (a[i] - r[i]) * (a[i] - r[i])
		}
		floor := 1e-6 * maxNorm
		d := math.Sqrt(diff)
		if norms[name] < floor {
			t.Logf("%s: |torch| %.2e is float32 noise (< %.2e); |ours - torch| %.2e", name, norms[name], floor, d)
			if d > floor {
				t.Errorf("%s: |ours - torch| %.2e exceeds the noise level %.2e", name, d, floor)
			}
			continue
		}
		rel := d / norms[name]
		if rel > worst {
			worst, worstName = rel, name
		}
		if rel > 1e-4 {
			t.Errorf("%s: relative error %.2e (|torch| %.3g)", name, rel, norms[name])
		}
	}
	t.Logf("loss %.7g (torch %.7g); %d gradients, largest relative error %.2e (%s)", gotLoss, want.Loss, len(names), worst, worstName)
}
