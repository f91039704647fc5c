package bundle

import (
	"context"
	"maps"
	"math"
	"path/filepath"
	"sort"
	"testing"

	"github.com/skipgraph/skipgraph/internal/onnxcheck"
	"github.com/skipgraph/skipgraph/internal/testenv"
	"github.com/skipgraph/skipgraph/plugins/cskip"
	"github.com/skipgraph/skipgraph/plugins/full"
	"github.com/skipgraph/skipgraph/plugins/lskip"
	"github.com/skipgraph/skipgraph/tensorio"
)

// gradErr is ‖a−b‖ / ‖b‖, with ‖b‖ floored at 1e-2 so that gradients that are zero in exact
// arithmetic compare on an absolute scale: the key-projection biases get none (softmax over
// keys ignores the per-query constant q·b_k), and torch and ONNX Runtime both return float32
// rounding noise of norm ~1e-7 for them, while the other gradients here have norms 0.3 to 30.
func gradErr(a, b []float32) float64 {
	var num, den float64
	for i := range b {
		d := float64(a[i]) - float64(b[i])
		num += d * d
		den += float64(b[i]) * float64(b[i])
	}
	return math.Sqrt(num) / math.Max(math.Sqrt(den), 1e-2)
}

// fixture is the shared torch reference, loaded once per test.
type fixture struct {
	dir    string
	ref    map[string]any
	inputs map[string]*tensorio.Tensor
	labels *tensorio.Tensor
	src    *SourceModel
}

func loadFixture(t *testing.T) *fixture {
	dir := testenv.Fixture(t, "clip-hf-tiny")
	f := &fixture{dir: dir, ref: testenv.LoadJSON(t, filepath.Join(dir, "reference.json"))}
	var err error
	if f.inputs, err = tensorio.LoadJSONMap(filepath.Join(dir, "reference.json"), "inputs"); err != nil {
		t.Fatal(err)
	}
	f.labels = testenv.Tensor(t, f.ref["labels"])
	if f.src, err = LoadSource(filepath.Join(dir, "model.onnx")); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) refCase(name string) map[string]any {
	return f.ref["cases"].(map[string]any)[name].(map[string]any)
}

// convert writes a bundle of the fixture and runs the ONNX checker on its graphs.
func (f *fixture) convert(t *testing.T, specs ...StrategySpec) (string, *Manifest) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "bundle")
	man, err := Convert(context.Background(), f.src, out, Options{Strategies: specs, EmitGrads: true})
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, g := range man.Graphs {
		files = append(files, filepath.Join(out, g.File))
	}
	onnxcheck.Check(t, files...)
	return out, man
}

// features runs features.onnx (when the bundle has one) on the fixture's inputs.
func (f *fixture) features(t *testing.T, out string, man *Manifest) map[string]*tensorio.Tensor {
	t.Helper()
	d := data(f, nil)
	if _, err := NewRunner(out, man, nil).Features(d); err != nil {
		t.Fatal(err)
	}
	return d
}

// feedAll binds every data input of the train step: fixture inputs, cached states, labels,
// learning rate lr, step 1, and CSkip's inputs (prototypes from the reference, no tail).
func (f *fixture) feedAll(t *testing.T, st *Stepper, man *Manifest, data map[string]*tensorio.Tensor, labels *tensorio.Tensor, lr float64) {
	t.Helper()
	d := maps.Clone(data)
	for _, in := range man.Graphs["train_step"].Inputs {
		switch in.Role {
		case RoleLabels:
			d[in.Name] = labels
		case RoleCSkipPrototypes:
			d[in.Name] = testenv.Tensor(t, f.refCase("lskip_cskip")["cskip"].(map[string]any)["prototypes"])
		case RoleCSkipK:
			k := cskip.Config{Ratio: 0.5, Max: 50}.TopK(int(f.inputs["input_ids"].Shape[0]))
			d[in.Name], _ = tensorio.FromSlice([]int64{1}, []int64{int64(k)})
		case RoleCSkipTail:
			d[in.Name], _ = tensorio.FromSlice([]int64{0}, []int64{})
		}
	}
	r := &Runner{Man: man}
	if err := r.Feed(st, d); err != nil {
		t.Fatal(err)
	}
	if err := r.FeedHyper(st, lr, 1); err != nil {
		t.Fatal(err)
	}
}

// checkGrads compares the step's gradient outputs with torch's, and the trainable set with the
// reference's: exactly the parameters torch trains get a gradient.
func checkGrads(t *testing.T, st *Stepper, man *Manifest, grads map[string]any) {
	t.Helper()
	var got, exp []string
	for _, p := range man.Trainable() {
		got = append(got, p.Initializer)
	}
	worst := 0.0
	for name, g := range grads {
		exp = append(exp, name)
		tg := st.Output(name + "_grad")
		if tg == nil {
			t.Errorf("no gradient output for %s", name)
			continue
		}
		e := gradErr(tg.Float32s(), testenv.Tensor(t, g).Float32s())
		worst = math.Max(worst, e)
		if e > 1e-4 {
			t.Errorf("gradient of %s: relative error %.3g", name, e)
		}
	}
	sort.Strings(got)
	sort.Strings(exp)
	if len(got) != len(exp) {
		t.Fatalf("trainable parameters differ from torch's:\n ours  %v\n torch %v", got, exp)
	}
	for i := range got {
		if got[i] != exp[i] {
			t.Fatalf("trainable parameters differ: %s vs %s", got[i], exp[i])
		}
	}
	t.Logf("%d gradients, worst relative error %.2e", len(got), worst)
}

func checkLoss(t *testing.T, what string, got, want float64) {
	t.Helper()
	if math.Abs(got-want)/math.Abs(want) > 1e-4 {
		t.Errorf("%s: loss %.7g, torch %.7g", what, got, want)
	}
}

func checkParams(t *testing.T, st *Stepper, want map[string]any) {
	t.Helper()
	worst := 0.0
	for name, p := range want {
		cur := st.Param(name)
		if cur == nil {
			t.Errorf("parameter %s is not trained", name)
			continue
		}
		e := gradErr(cur.Float32s(), testenv.Tensor(t, p).Float32s())
		worst = math.Max(worst, e)
		if e > 1e-4 {
			t.Errorf("%s after two SGD steps: relative error %.3g", name, e)
		}
	}
	t.Logf("parameters after two SGD steps: worst relative error %.2e", worst)
}

func data(f *fixture, feats map[string]*tensorio.Tensor) map[string]*tensorio.Tensor {
	d := map[string]*tensorio.Tensor{}
	for k, v := range f.inputs {
		d[k] = v
	}
	for k, v := range feats {
		d[k] = v
	}
	return d
}

// TestTorchReference: full fine-tuning and LSkip (start layer 1) against torch: loss, the
// gradients of exactly the trainable parameters, and two SGD steps (losses and parameters).
func TestTorchReference(t *testing.T) {
	f := loadFixture(t)
	for _, tc := range []struct {
		name string
		spec StrategySpec
	}{
		{"full_ft", StrategySpec{Strategy: full.Strategy{}}},
		{"lskip", StrategySpec{Strategy: lskip.Strategy{}, Args: map[string]string{"start": "1"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := f.refCase(tc.name)
			sgd := c["sgd"].(map[string]any)
			out, man := f.convert(t, tc.spec)
			if g := man.Optimizer; g.Momentum != sgd["momentum"].(float64) || g.WeightDecay != sgd["weight_decay"].(float64) {
				t.Fatalf("optimizer %+v differs from the reference's SGD", g)
			}
			st, err := NewRunner(out, man, nil).Open(nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			f.feedAll(t, st, man, f.features(t, out, man), f.labels, sgd["lr"].(float64))
			loss, err := st.Step()
			if err != nil {
				t.Fatal(err)
			}
			checkLoss(t, "step 1", loss, c["loss"].(float64))
			checkGrads(t, st, man, c["grads"].(map[string]any))
			st.FeedScalar("step", 2)
			loss2, err := st.Step()
			if err != nil {
				t.Fatal(err)
			}
			checkLoss(t, "step 2", loss2, sgd["losses"].([]any)[1].(float64))
			checkParams(t, st, sgd["params_after"].(map[string]any))
		})
	}
}

// gatherRows keeps rows ids (axis 0) of a tensor of any element type.
func gatherRows(t *testing.T, x *tensorio.Tensor, ids []int64) *tensorio.Tensor {
	t.Helper()
	raw, err := x.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	row := len(raw) / int(x.Shape[0])
	var out []byte
	for _, i := range ids {
		out = append(out, raw[int(i)*row:(int(i)+1)*row]...)
	}
	shape := append([]int64{int64(len(ids))}, x.Shape[1:]...)
	y, err := tensorio.FromBytes(x.DType, shape, out)
	if err != nil {
		t.Fatal(err)
	}
	return y
}

// hostGathered returns the text inputs and text state restricted to classes, and the labels
// remapped to positions in classes: what CSkip does in the graph, done on the host.
func hostGathered(t *testing.T, d map[string]*tensorio.Tensor, labels *tensorio.Tensor, classes []int64) (map[string]*tensorio.Tensor, *tensorio.Tensor) {
	out := map[string]*tensorio.Tensor{}
	for k, v := range d {
		out[k] = v
	}
	for _, k := range []string{"input_ids", "attention_mask", "state.text"} {
		out[k] = gatherRows(t, d[k], classes)
	}
	pos := map[int64]int64{}
	for i, c := range classes {
		pos[c] = int64(i)
	}
	var rl []int64
	for _, l := range labels.Int64s() {
		rl = append(rl, pos[l])
	}
	lt, _ := tensorio.FromSlice([]int64{int64(len(rl))}, rl)
	return out, lt
}

// TestTorchReferenceCSkip: LSkip (start 1) + CSkip (ratio 0.5, no tail). Step 1 of the in-graph
// selection must keep torch's classes and match its loss and gradients. Torch's two SGD steps
// hold that class set fixed, while the train step selects anew at every step (the paper's
// method), so the two SGD steps are checked through the LSkip bundle fed the same classes on the
// host; and the in-graph step 2, which selects from the updated image features, is checked
// against that LSkip bundle fed the classes it chose, from the same state.
func TestTorchReferenceCSkip(t *testing.T) {
	f := loadFixture(t)
	c := f.refCase("lskip_cskip")
	sgd := c["sgd"].(map[string]any)
	lr := sgd["lr"].(float64)
	var torchClasses []int64
	for _, x := range c["classes"].([]any) {
		torchClasses = append(torchClasses, int64(x.(float64)))
	}
	startAt1 := StrategySpec{Strategy: lskip.Strategy{}, Args: map[string]string{"start": "1"}}
	outC, manC := f.convert(t, startAt1, StrategySpec{Strategy: cskip.Strategy{}, Args: map[string]string{"ratio": "0.5", "max": "50", "lambda": "0"}})
	outL, manL := f.convert(t, startAt1)
	params, err := InitialParams(outC, manC)
	if err != nil {
		t.Fatal(err)
	}
	d := f.features(t, outC, manC)

	// In-graph CSkip, step 1.
	stC, err := OpenStepper(outC, manC, params, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer stC.Close()
	f.feedAll(t, stC, manC, d, f.labels, lr)
	loss, err := stC.Step()
	if err != nil {
		t.Fatal(err)
	}
	kept := append([]int64(nil), stC.Output(CSkipClassesOutput).Int64s()...)
	if len(kept) != len(torchClasses) {
		t.Fatalf("kept classes %v, torch %v", kept, torchClasses)
	}
	for i := range kept {
		if kept[i] != torchClasses[i] {
			t.Fatalf("kept classes %v, torch %v", kept, torchClasses)
		}
	}
	checkLoss(t, "step 1", loss, c["loss"].(float64))
	checkGrads(t, stC, manC, c["grads"].(map[string]any))

	// Torch's two steps with the class set held: the LSkip bundle on host-gathered inputs.
	stL, err := OpenStepper(outL, manL, params, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer stL.Close()
	dg, lg := hostGathered(t, d, f.labels, torchClasses)
	f.feedAll(t, stL, manL, dg, lg, lr)
	l1, err := stL.Step()
	if err != nil {
		t.Fatal(err)
	}
	checkLoss(t, "held classes, step 1", l1, sgd["losses"].([]any)[0].(float64))
	stL.FeedScalar("step", 2)
	l2, err := stL.Step()
	if err != nil {
		t.Fatal(err)
	}
	checkLoss(t, "held classes, step 2", l2, sgd["losses"].([]any)[1].(float64))
	checkParams(t, stL, sgd["params_after"].(map[string]any))

	// In-graph step 2 versus the LSkip bundle fed the classes step 2 kept, from the same state.
	after1 := map[string]*tensorio.Tensor{}
	state1 := map[string]*tensorio.Tensor{}
	for _, p := range manC.Trainable() {
		after1[p.Initializer] = stC.Param(p.Initializer).Clone()
		state1[p.Initializer+".momentum"] = stC.Param(p.Initializer + ".momentum").Clone()
	}
	stC.FeedScalar("step", 2)
	lossC2, err := stC.Step()
	if err != nil {
		t.Fatal(err)
	}
	kept2 := append([]int64(nil), stC.Output(CSkipClassesOutput).Int64s()...)
	t.Logf("kept classes: step 1 %v, step 2 %v", kept, kept2)
	stL2, err := OpenStepper(outL, manL, after1, state1, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer stL2.Close()
	dg2, lg2 := hostGathered(t, d, f.labels, kept2)
	f.feedAll(t, stL2, manL, dg2, lg2, lr)
	stL2.FeedScalar("step", 2)
	lossL2, err := stL2.Step()
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(lossC2-lossL2) > 1e-5*math.Abs(lossL2) {
		t.Errorf("in-graph step 2 loss %.7g, host-gathered %.7g", lossC2, lossL2)
	}
	worst := 0.0
	for _, p := range manC.Trainable() {
		e := gradErr(stC.Param(p.Initializer).Float32s(), stL2.Param(p.Initializer).Float32s())
		worst = math.Max(worst, e)
	}
	if worst > 1e-5 {
		t.Errorf("in-graph step 2 parameters differ from the host-gathered step: %.3g", worst)
	}
}
