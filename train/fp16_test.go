package train

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/skipgraph/skipgraph/bundle"
	"github.com/skipgraph/skipgraph/graph"
	"github.com/skipgraph/skipgraph/graph/onnxio"
	"github.com/skipgraph/skipgraph/internal/onnxcheck"
	"github.com/skipgraph/skipgraph/plugins/cskip"
	"github.com/skipgraph/skipgraph/plugins/lskip"
	"github.com/skipgraph/skipgraph/runtime"
	"github.com/skipgraph/skipgraph/synth"
	"github.com/skipgraph/skipgraph/tensorio"
)

// TestFloat16Export: a float16 export trains with float32 master weights (the bundle computes
// in float32) and the trained weights go back into the float16 export, which ONNX Runtime runs
// and which scores like the trained float32 weights.
func TestFloat16Export(t *testing.T) {
	dir := t.TempDir()
	res, err := synth.Build(synth.Config{Style: "hf", Size: "tiny", Opset: 17, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	m := res.Models["model.onnx"]
	synth.ToFloat16(m)
	src16 := filepath.Join(dir, "model.onnx")
	if err := onnxio.Save(m, src16, onnxio.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	src, err := bundle.LoadSource(src16)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "bundle")
	man, err := bundle.Convert(context.Background(), src, out, bundle.Options{Strategies: []bundle.StrategySpec{
		{Strategy: lskip.Strategy{}, Args: map[string]string{"start": "1"}},
		{Strategy: cskip.Strategy{}, Args: map[string]string{"lambda": "0"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range man.Parameters {
		if p.SourceDType != "float16" || p.DType != "float32" {
			t.Fatalf("parameter %s: source %s, trained as %s; want float16 -> float32", p.Initializer, p.SourceDType, p.DType)
		}
	}
	for _, g := range man.Graphs {
		for _, in := range g.Inputs {
			if in.Type[:7] == "float16" {
				t.Fatalf("%s input %s is %s: the bundle must compute in float32", g.File, in.Name, in.Type)
			}
		}
		onnxcheck.Check(t, filepath.Join(out, g.File))
	}

	// A few SGD steps on one batch through features + train step: the loss must fall.
	r := rand.New(rand.NewPCG(3, 4))
	const images, classes = 4, 5
	px := make([]float32, images*3*32*32)
	for i := range px {
		px[i] = float32(r.NormFloat64())
	}
	pxT, _ := tensorio.FromSlice([]int64{images, 3, 32, 32}, px)
	ids := make([]int64, classes*8)
	mask := make([]int64, classes*8)
	for c := 0; c < classes; c++ {
		for j := 0; j <= 2+c; j++ {
			ids[c*8+j], mask[c*8+j] = 1+r.Int64N(60), 1
		}
		ids[c*8+2+c] = man.Text.EOSToken
	}
	idsT, _ := tensorio.FromSlice([]int64{classes, 8}, ids)
	maskT, _ := tensorio.FromSlice([]int64{classes, 8}, mask)
	labels, _ := tensorio.FromSlice([]int64{images}, []int64{0, 1, 2, 3})
	k, _ := tensorio.FromSlice([]int64{1}, []int64{int64(cskip.Config{Ratio: 0.5, Max: 50}.TopK(classes))})
	tail, _ := tensorio.FromSlice([]int64{0}, []int64{})
	protos := make([]float32, classes*16)
	for i := range protos {
		protos[i] = float32(r.NormFloat64())
	}
	pT, _ := tensorio.FromSlice([]int64{classes, 16}, protos)
	feeds := map[string]*tensorio.Tensor{"pixel_values": pxT, "input_ids": idsT, "attention_mask": maskT, "labels": labels,
		"cskip.k": k, "cskip.tail": tail, "cskip.prototypes": pT}
	run := bundle.NewRunner(out, man, nil)
	if _, err := run.Features(feeds); err != nil {
		t.Fatal(err)
	}
	st, err := run.OpenFed(feeds, 0.05, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var losses []float64
	for i := 0; i < 6; i++ {
		l, err := st.Step()
		if err != nil {
			t.Fatal(err)
		}
		losses = append(losses, l)
	}
	if !(losses[5] < losses[0]) || math.IsNaN(losses[5]) {
		t.Fatalf("losses %v: training a float16 export does not learn", losses)
	}
	trained := map[string]*tensorio.Tensor{}
	for _, p := range man.Trainable() {
		trained[p.Initializer] = st.Param(p.Initializer).Clone()
	}
	paramsFile := filepath.Join(dir, ParamsFile)
	if err := SaveParams(paramsFile, man, trained); err != nil {
		t.Fatal(err)
	}
	exported := filepath.Join(dir, "tuned.onnx")
	if _, err := Export(ExportConfig{Bundle: out, Params: paramsFile, Out: exported}); err != nil {
		t.Fatal(err)
	}
	em, err := onnxio.Load(exported)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range trained {
		v := em.Graph.Value(name)
		if v == nil || v.Const == nil || v.Const.DType != graph.Float16 {
			t.Fatalf("exported %s is not a float16 initializer", name)
		}
		got, _ := v.Const.Float32s()
		for i, x := range want.Float32s() {
			if math.Abs(float64(got[i]-x)) > 1e-3*math.Max(1, math.Abs(float64(x))) {
				t.Fatalf("exported %s[%d] = %g, trained %g", name, i, got[i], x)
			}
		}
	}
	// The float16 export runs on ONNX Runtime (outputs bound with their shapes).
	sess, err := runtime.NewSession(exported, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	b, err := sess.NewBinding()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	px16, _ := tensorio.ToFloat16(pxT)
	var vals []*runtime.Value
	bind := func(name string, v *runtime.Value, err error, output bool) {
		if err != nil {
			t.Fatal(err)
		}
		vals = append(vals, v)
		if output {
			err = b.BindOutput(name, v)
		} else {
			err = b.BindInput(name, v)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	v, err := runtime.NewValue(px16)
	bind("pixel_values", v, err, false)
	v, err = runtime.NewValue(idsT)
	bind("input_ids", v, err, false)
	v, err = runtime.NewValue(maskT)
	bind("attention_mask", v, err, false)
	v, err = runtime.NewEmptyValue(tensorio.Float16, images, classes)
	bind("logits_per_image", v, err, true)
	defer func() {
		for _, v := range vals {
			v.Close()
		}
	}()
	if err := b.Run(); err != nil {
		t.Fatal(err)
	}
	logits, _ := b.Output("logits_per_image").Tensor().AsFloat32()
	for _, x := range logits {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			t.Fatalf("float16 export gives %v", logits)
		}
	}
	t.Logf("losses %v; exported float16 logits %v", losses, logits[:classes])
}
