package grad

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"github.com/skipgraph/skipgraph/graph"
	"github.com/skipgraph/skipgraph/graph/onnxio"
	"github.com/skipgraph/skipgraph/internal/testenv"
	"github.com/skipgraph/skipgraph/synth"
	"github.com/skipgraph/skipgraph/tensorio"
)

// unsupportedOps lists the op types of m that have neither a rule nor a stop edge.
func unsupportedOps(m *graph.Model) []string {
	seen := map[string]bool{}
	for _, n := range m.Graph.Nodes() {
		if Supported(n.Domain, n.OpType) == Unsupported {
			seen[opLabel(n)] = true
		}
	}
	var out []string
	for op := range seen {
		out = append(out, op)
	}
	sort.Strings(out)
	return out
}

func TestCoverageFixture(t *testing.T) {
	dir := testenv.Fixture(t, "clip-hf-tiny")
	m, err := onnxio.Load(dir + "/model.onnx")
	if err != nil {
		t.Fatal(err)
	}
	if ops := unsupportedOps(m); len(ops) > 0 {
		t.Errorf("op types of the reference export without a gradient rule or stop edge: %v", ops)
	}
}

type synthCase struct {
	cfg   synth.Config
	model string
}

func (s synthCase) String() string {
	return fmt.Sprintf("%s/opset%d/%s", s.cfg.Style, s.cfg.Opset, strings.TrimSuffix(s.model, ".onnx"))
}

func synthCases(opsets ...int) []synthCase {
	var out []synthCase
	for _, style := range []string{synth.StyleHF, synth.StyleOpenAI, synth.StyleOpenCLIP} {
		for _, opset := range opsets {
			for _, split := range []bool{false, true} {
				cfg := synth.Config{Style: style, Opset: opset, Split: split, Seed: 3}
				models := []string{synth.ModelCombined}
				if split {
					models = []string{synth.ModelText, synth.ModelVision}
				}
				for _, key := range models {
					out = append(out, synthCase{cfg, key})
				}
			}
		}
	}
	return out
}

// trainAll makes every floating-point initializer but the logit scale a graph input, appends a
// loss (the cross-entropy of the first output for a combined model, the sum of squares of the
// outputs for a tower) and differentiates it. It returns the parameters and the loss.
func trainAll(t *testing.T, m *graph.Model, combined bool) ([]*graph.Value, *graph.Value, map[*graph.Value]*graph.Value, map[string]*graph.Tensor) {
	t.Helper()
	g := m.Graph
	var params []*graph.Value
	values := map[string]*graph.Tensor{}
	for _, v := range append([]*graph.Value(nil), g.Initializers...) {
		if !v.Const.DType.IsFloat() || v.Const.NumElements() <= 1 || strings.Contains(v.Name, "logit_scale") {
			continue
		}
		tv, err := g.InitializerToInput(v)
		if err != nil {
			t.Fatal(err)
		}
		values[v.Name] = tv
		params = append(params, v)
	}
	b := graph.NewBuilder(g, "loss")
	var loss *graph.Value
	if combined {
		labels, err := g.AddInput("labels", graph.TensorType(graph.Int64, -1))
		if err != nil {
			t.Fatal(err)
		}
		loss = SoftmaxCrossEntropy(b, g.Outputs[0], labels)
	} else {
		// sum(out * R) for a fixed random R over the first rows of each output
		rng := rand.New(rand.NewPCG(5, 5))
		var terms []*graph.Value
		for _, o := range g.Outputs {
			dims, ok := o.Type.StaticDims()
			if !ok {
				dims = []int64{1, o.Type.Shape[len(o.Type.Shape)-1].Value}
			}
			r := make([]float32, dims[len(dims)-1])
			for i := range r {
				r[i] = float32(rng.NormFloat64())
			}
			rc := b.Const(graph.FromFloat32([]int64{int64(len(r))}, r))
			terms = append(terms, b.Op("ReduceSum", []*graph.Value{b.Op("Mul", []*graph.Value{o, rc})}, graph.IntAttr("keepdims", 0)))
		}
		loss = b.Op("Sum", terms)
	}
	loss.Type = graph.TensorType(graph.Float)
	grads, err := Backward(m, loss, params, Options{})
	if err != nil {
		t.Fatalf("backward: %v", err)
	}
	if err := g.Verify(); err != nil {
		t.Fatal(err)
	}
	return params, loss, grads, values
}

// TestCoverageSynth: every synthetic export style, opset and layout differentiates with respect
// to all its weights (every op type on a path has a rule or a stop edge).
func TestCoverageSynth(t *testing.T) {
	for _, sc := range synthCases(14, 15, 16, 17, 18) {
		t.Run(sc.String(), func(t *testing.T) {
			res, err := synth.Build(sc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			m := res.Models[sc.model]
			if ops := unsupportedOps(m); len(ops) > 0 {
				t.Errorf("op types without a gradient rule or stop edge: %v", ops)
			}
			before := m.Opset("")
			params, _, _, _ := trainAll(t, m, sc.model == synth.ModelCombined)
			if len(params) == 0 {
				t.Fatal("no parameters")
			}
			if want := max(before, 16); before < 16 && m.Opset("") != RaisedOpset || before >= 16 && m.Opset("") != want {
				t.Errorf("opset %d -> %d", before, m.Opset(""))
			}
		})
	}
}

// synthFeeds makes inputs for a synthetic model: images, prompts (random tokens with the
// end-of-text token at a varying position, zero padding after it), masks and labels.
func synthFeeds(t *testing.T, m *graph.Model, d synth.Dims, rng *rand.Rand) map[string]*tensorio.Tensor {
	const images, classes = 3, 4
	feeds := map[string]*tensorio.Tensor{}
	for _, in := range m.Graph.Inputs {
		if in.Const != nil {
			continue
		}
		switch {
		case in.Name == "labels":
			lab := make([]int64, images)
			for i := range lab {
				lab[i] = rng.Int64N(classes)
			}
			feeds[in.Name], _ = tensorio.FromSlice([]int64{images}, lab)
		case in.Type.Elem.IsFloat():
			x := make([]float32, images*3*d.ImageSize*d.ImageSize)
			for i := range x {
				x[i] = float32(rng.NormFloat64())
			}
			feeds[in.Name], _ = tensorio.FromSlice([]int64{images, 3, int64(d.ImageSize), int64(d.ImageSize)}, x)
		case strings.Contains(in.Name, "mask") || in.Name == "input_ids" || in.Name == "text":
			S := d.Context
			ids, mask := make([]int64, classes*S), make([]int64, classes*S)
			for c := range classes {
				eot := 2 + c%(S-2)
				for s := 0; s <= eot; s++ {
					ids[c*S+s] = 1 + rng.Int64N(int64(d.Vocab-2))
					mask[c*S+s] = 1
				}
				ids[c*S+eot] = int64(d.Vocab - 1)
			}
			v := ids
			if strings.Contains(in.Name, "mask") {
				v = mask
			}
			feeds[in.Name], _ = tensorio.FromSlice([]int64{classes, int64(S)}, v)
		}
	}
	return feeds
}

// TestSynthORT runs the backward graphs of the synthetic exports on ONNX Runtime and checks the
// gradients against float32 central differences in random directions, one weight at a time for
// a sample of weights. float32 through a whole CLIP limits the agreement to about 1e-3, so the
// tolerance (2e-2) catches wrong rules, not rounding; the per-rule float64 checks are the exact
// ones.
func TestSynthORT(t *testing.T) {
	requireORT(t)
	for _, sc := range synthCases(14, 18) {
		t.Run(sc.String(), func(t *testing.T) {
			res, err := synth.Build(sc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			m := res.Models[sc.model]
			params, loss, grads, values := trainAll(t, m, sc.model == synth.ModelCombined)
			g := m.Graph
			if err := g.Rename(loss, "loss"); err != nil {
				t.Fatal(err)
			}
			g.Outputs = []*graph.Value{loss}
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
			rng := rand.New(rand.NewPCG(11, uint64(len(sc.String()))))
			feeds := synthFeeds(t, m, res.Dims, rng)
			for name, tv := range values {
				feeds[name] = graphToTensorio(t, tv)
			}
			exec := session(t, m)
			out := exec(feeds)
			for _, p := range params {
				for _, x := range asFloat64s(out[p.Name+"_grad"]) {
					if math.IsNaN(x) || math.IsInf(x, 0) {
						t.Fatalf("gradient of %s is not finite", p.Name)
					}
				}
			}
			// Finite differences on a sample of weights: the direction is scaled to the weight's
			// size (a step of 1% of its RMS), and the float32 rounding of the loss, amplified by
			// 1/eps, is allowed on top of the relative tolerance.
			base := math.Abs(asFloat64s(out["loss"])[0])
			worst := 0.0
			for k := 0; k < len(params); k += max(1, len(params)/8) {
				p := params[k]
				x := asFloat64s(feeds[p.Name])
				rms := 0.0
				for _, v := range x {
					rms += v * v
				}
				rms = math.Sqrt(rms / float64(len(x)))
				if rms < 1e-3 {
					rms = 1e-3
				}
				d := make([]float64, len(x))
				for i := range d {
					d[i] = rms * rng.NormFloat64()
				}
				analytic := 0.0
				for i, gi := range asFloat64s(out[p.Name+"_grad"]) {
					analytic += gi * d[i]
				}
				const eps = 1e-2
				at := func(s float64) float64 {
					xs := make([]float64, len(x))
					for i := range x {
						xs[i] = x[i] + s*d[i]
					}
					f := map[string]*tensorio.Tensor{}
					for k, v := range feeds {
						f[k] = v
					}
					f[p.Name] = fromFloat64s(graph.Float, feeds[p.Name].Shape, xs)
					return asFloat64s(exec(f)["loss"])[0]
				}
				numeric := (at(eps) - at(-eps)) / (2 * eps)
				noise := 1e-5 * max(base, 1) / eps
				rel := math.Abs(analytic-numeric) / max(math.Abs(analytic), math.Abs(numeric), noise)
				worst = max(worst, rel)
				if math.Abs(analytic-numeric) > 2e-2*max(math.Abs(analytic), math.Abs(numeric))+noise {
					t.Errorf("d/d%s: analytic %.6g, finite difference %.6g, relative error %.2e (noise level %.2g)", p.Name, analytic, numeric, rel, noise)
				}
			}
			t.Logf("%d parameters, %d nodes; sampled finite differences: largest relative error %.2e", len(params), g.NumNodes(), worst)
		})
	}
}
