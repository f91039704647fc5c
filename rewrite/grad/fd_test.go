package grad

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/skipgraph/skipgraph/graph"
	"github.com/skipgraph/skipgraph/graph/onnxio"
	"github.com/skipgraph/skipgraph/internal/onnxcheck"
	"github.com/skipgraph/skipgraph/runtime"
	"github.com/skipgraph/skipgraph/tensorio"
)

// The finite-difference harness. A case is a tiny model around one operator; the loss is
// sum(y * R) for a fixed random R shaped like the output y. For each parameter p and a random
// direction d, the analytic directional derivative <dL/dp, d> from the backward graph, run on
// ONNX Runtime, is compared with the central difference (L(p + eps d) - L(p - eps d)) / 2 eps,
// also computed on ONNX Runtime.

// fdInput is an input of a finite-difference case.
type fdInput struct {
	name  string
	dt    graph.DType // graph.Double unless the operator's CPU kernel lacks it
	shape []int64
	// param: the gradient of this input is checked.
	param bool
	// ints holds the data of an integer input (which is never a parameter).
	ints []int64
	// lo, hi bound the uniform random data (default -1, 1).
	lo, hi float64
	// noRank declares the input without a shape, so that the rules see an unknown rank.
	noRank bool
	// syms, when set, declares the axes with these dim_params ("" keeps the size).
	syms []string
}

// fdCase is one finite-difference check.
type fdCase struct {
	name   string
	opset  int64 // 17 when 0
	inputs []fdInput
	build  func(b *graph.Builder, in []*graph.Value) *graph.Value
	eps    float64 // 1e-6 when 0
	tol    float64 // 1e-4 when 0
	// static: the shapes prove every broadcast reduction of the case's own nodes (no NonZero).
	static bool
}

// checkerWanted reports whether ONNX's checker should run on the graphs these tests build: when
// it is installed, or required (CI).
func checkerWanted() bool {
	return onnxcheck.Available() || os.Getenv("SKIPGRAPH_REQUIRE_ONNX_CHECKER") != ""
}

// saveForChecker writes m under dir for ONNX's checker and returns the path, or "" when the
// checker will not run. The installed checker (onnx 1.12) knows opsets up to 17, so newer models
// are not written.
func saveForChecker(tb testing.TB, dir string, m *graph.Model) string {
	tb.Helper()
	if !checkerWanted() || m.Opset("") > 17 {
		return ""
	}
	name := strings.NewReplacer("/", "_", " ", "_").Replace(m.Graph.Name) + ".onnx"
	p := filepath.Join(dir, name)
	if err := onnxio.Save(m, p, onnxio.SaveOptions{}); err != nil {
		tb.Fatalf("save: %v", err)
	}
	return p
}

func requireORT(tb testing.TB) {
	tb.Helper()
	if err := runtime.Init(); err != nil {
		tb.Fatalf("ONNX Runtime is needed for the finite-difference checks: %v", err)
	}
}

func fdValue(in fdInput, rng *rand.Rand) *tensorio.Tensor {
	n := 1
	for _, d := range in.shape {
		n *= int(d)
	}
	if in.ints != nil {
		t, _ := tensorio.FromSlice(in.shape, append([]int64(nil), in.ints...))
		return t
	}
	lo, hi := in.lo, in.hi
	if lo == 0 && hi == 0 {
		lo, hi = -1, 1
	}
	x := make([]float64, n)
	for i := range x {
		x[i] = lo + (hi-lo)*rng.Float64()
	}
	return fromFloat64s(in.dt, in.shape, x)
}

func fromFloat64s(dt graph.DType, shape []int64, x []float64) *tensorio.Tensor {
	if dt == graph.Float {
		f := make([]float32, len(x))
		for i, v := range x {
			f[i] = float32(v)
		}
		t, _ := tensorio.FromSlice(shape, f)
		return t
	}
	t, _ := tensorio.FromSlice(shape, append([]float64(nil), x...))
	return t
}

func asFloat64s(t *tensorio.Tensor) []float64 {
	x, err := t.AsFloat64()
	if err != nil {
		panic(err)
	}
	return x
}

// fdModel builds the case's forward model; it returns the model, its inputs and output y.
func fdModel(tc fdCase) (*graph.Model, []*graph.Value, *graph.Value, error) {
	g := graph.New(tc.name)
	opset := tc.opset
	if opset == 0 {
		opset = 17
	}
	m := &graph.Model{Graph: g, IRVersion: 8, Opsets: []graph.Opset{{Domain: "", Version: opset}}}
	var ins []*graph.Value
	for _, in := range tc.inputs {
		dt := in.dt
		if in.ints != nil {
			dt = graph.Int64
		}
		typ := graph.TensorType(dt, in.shape...)
		if in.noRank {
			typ = graph.Type{Elem: dt}
		}
		for i, name := range in.syms {
			if name != "" {
				typ.Shape[i] = graph.Sym(name)
			}
		}
		v, err := g.AddInput(in.name, typ)
		if err != nil {
			return nil, nil, nil, err
		}
		ins = append(ins, v)
	}
	y := tc.build(graph.NewBuilder(g, "fwd"), ins)
	return m, ins, y, nil
}

// session loads m on ONNX Runtime and returns a function that runs it.
func session(tb testing.TB, m *graph.Model) func(feeds map[string]*tensorio.Tensor) map[string]*tensorio.Tensor {
	tb.Helper()
	data, err := onnxio.Encode(m)
	if err != nil {
		tb.Fatalf("encode: %v", err)
	}
	s, err := runtime.NewSessionFromBytes(m.Graph.Name, data, nil)
	if err != nil {
		tb.Fatalf("session: %v\n%s", err, m.Graph)
	}
	tb.Cleanup(func() { s.Close() })
	return func(feeds map[string]*tensorio.Tensor) map[string]*tensorio.Tensor {
		tb.Helper()
		out, err := s.Run(feeds)
		if err != nil {
			tb.Fatalf("run: %v\n%s", err, m.Graph)
		}
		return out
	}
}

// run runs m once.
func run(tb testing.TB, m *graph.Model, feeds map[string]*tensorio.Tensor) map[string]*tensorio.Tensor {
	tb.Helper()
	return session(tb, m)(feeds)
}

// checkFD runs one case and returns the largest relative error over its parameters; it saves
// the backward model under dir for ONNX's checker and returns its path ("" when not saved).
func checkFD(t *testing.T, tc fdCase, dir string) (float64, string) {
	t.Helper()
	rng := rand.New(rand.NewPCG(uint64(len(tc.name)), 7))
	feeds := map[string]*tensorio.Tensor{}
	for _, in := range tc.inputs {
		feeds[in.name] = fdValue(in, rng)
	}
	// Forward once to learn y's shape and type.
	m, ins, y, err := fdModel(tc)
	if err != nil {
		t.Fatal(err)
	}
	// (The output's shape, not the output: ORT cannot hand back a rank-0 output whose shape the
	// model does not declare.)
	ydt := newInfer().dtype(y)
	ys := graph.NewBuilder(m.Graph, "probe").Op("Shape", []*graph.Value{y})
	ys.Type = graph.TensorType(graph.Int64, -1)
	m.Graph.AddOutput(ys)
	yshape := run(t, m, feeds)[ys.Name].Int64s()

	// The loss model: L = sum(y * R).
	m, ins, y, err = fdModel(tc)
	if err != nil {
		t.Fatal(err)
	}
	g := m.Graph
	n := 1
	for _, d := range yshape {
		n *= int(d)
	}
	r := make([]float64, n)
	for i := range r {
		r[i] = rng.NormFloat64()
	}
	rdt := graph.Double
	if ydt == graph.Float {
		rdt = graph.Float
	}
	var rt *graph.Tensor
	if rdt == graph.Double {
		rt = graph.FromFloat64(yshape, r)
	} else {
		f := make([]float32, len(r))
		for i := range r {
			f[i] = float32(r[i])
		}
		rt = graph.FromFloat32(yshape, f)
	}
	b := graph.NewBuilder(g, "loss")
	loss := b.Op("ReduceSum", []*graph.Value{b.Op("Mul", []*graph.Value{y, b.Const(rt)})}, graph.IntAttr("keepdims", 0))
	loss.Type = graph.TensorType(rdt)
	if err := g.Rename(loss, "loss"); err != nil {
		t.Fatal(err)
	}
	g.AddOutput(loss)
	var params []*graph.Value
	for i, in := range tc.inputs {
		if in.param {
			params = append(params, ins[i])
		}
	}
	grads, err := Backward(m, loss, params, Options{})
	if err != nil {
		t.Fatalf("backward: %v", err)
	}
	if tc.static {
		// (the loss's product with a constant of the concrete shape may stay dynamic)
		for _, d := range DynamicReductions(g) {
			if strings.HasPrefix(d, "grad/fwd/") {
				t.Errorf("%s: dynamic reduction %s", tc.name, d)
			}
		}
	}
	for _, p := range params {
		gv := grads[p]
		if gv.IsGraphOutput() || gv.IsGraphInput() || gv.Const != nil {
			// shared with another output (equal gradients): give it its own name
			gv = b.Op("Identity", []*graph.Value{gv})
			gv.Type = p.Type
		}
		if err := g.Rename(gv, p.Name+"_grad"); err != nil {
			t.Fatal(err)
		}
		g.AddOutput(gv)
	}
	if err := g.Verify(); err != nil {
		t.Fatalf("verify: %v\n%s", err, g)
	}
	path := ""
	if !slices.ContainsFunc(tc.inputs, func(in fdInput) bool { return in.noRank }) {
		// (onnx 1.12's checker wants every graph input to have a shape field)
		path = saveForChecker(t, dir, m)
	}
	exec := session(t, m)
	base := exec(feeds)

	eps, tol := tc.eps, tc.tol
	if eps == 0 {
		eps = 1e-6
	}
	if tol == 0 {
		tol = 1e-4
	}
	worst := 0.0
	for i, in := range tc.inputs {
		if !in.param {
			continue
		}
		gt := base[in.name+"_grad"]
		if !tensorio.SameShape(gt.Shape, feeds[in.name].Shape) {
			t.Fatalf("gradient of %s has shape %v, want %v", in.name, gt.Shape, feeds[in.name].Shape)
		}
		if gt.DType != feeds[in.name].DType {
			t.Fatalf("gradient of %s is %v, want %v", in.name, gt.DType, feeds[in.name].DType)
		}
		x := asFloat64s(feeds[in.name])
		d := make([]float64, len(x))
		for k := range d {
			d[k] = rng.NormFloat64()
		}
		analytic := 0.0
		for k, gk := range asFloat64s(gt) {
			analytic += gk * d[k]
		}
		at := func(s float64) float64 {
			xs := make([]float64, len(x))
			for k := range x {
				xs[k] = x[k] + s*d[k]
			}
			f := map[string]*tensorio.Tensor{}
			for k, v := range feeds {
				f[k] = v
			}
			f[in.name] = fromFloat64s(tc.inputs[i].dt, in.shape, xs)
			return asFloat64s(exec(f)["loss"])[0]
		}
		numeric := (at(eps) - at(-eps)) / (2 * eps)
		rel := math.Abs(analytic-numeric) / max(math.Abs(analytic), math.Abs(numeric), 1e-8)
		worst = max(worst, rel)
		if rel > tol || math.IsNaN(rel) {
			t.Errorf("%s: d/d%s: analytic %.10g, finite difference %.10g, relative error %.3g > %.3g\n%s",
				tc.name, in.name, analytic, numeric, rel, tol, g)
		}
	}
	return worst, path
}

// in64 is a float64 input; p64 a float64 parameter.
func in64(name string, shape ...int64) fdInput {
	return fdInput{name: name, dt: graph.Double, shape: shape}
}
func p64(name string, shape ...int64) fdInput {
	return fdInput{name: name, dt: graph.Double, shape: shape, param: true}
}
func p32(name string, shape ...int64) fdInput {
	return fdInput{name: name, dt: graph.Float, shape: shape, param: true}
}
func pos(in fdInput) fdInput    { in.lo, in.hi = 0.5, 2; return in }
func noRank(in fdInput) fdInput { in.noRank = true; return in }

// sym declares in's axes with dim_params ("" keeps an axis' size).
func sym(in fdInput, names ...string) fdInput { in.syms = names; return in }
func ints(name string, shape []int64, v ...int64) fdInput {
	return fdInput{name: name, shape: shape, ints: v}
}

// op is a one-node build step.
func op(name string, attrs ...graph.Attr) func(b *graph.Builder, in []*graph.Value) *graph.Value {
	return func(b *graph.Builder, in []*graph.Value) *graph.Value { return b.Op(name, in, attrs...) }
}

// opConst applies an op to the inputs followed by constant int64 inputs.
func opInts(name string, consts [][]int64, attrs ...graph.Attr) func(b *graph.Builder, in []*graph.Value) *graph.Value {
	return func(b *graph.Builder, in []*graph.Value) *graph.Value {
		ins := append([]*graph.Value(nil), in...)
		for _, c := range consts {
			if c == nil {
				ins = append(ins, nil)
				continue
			}
			ins = append(ins, b.Int64s(c...))
		}
		return b.Op(name, ins, attrs...)
	}
}

func runCases(t *testing.T, cases []fdCase) {
	requireORT(t)
	dir := t.TempDir()
	var paths []string
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			worst, path := checkFD(t, tc, dir)
			t.Logf("max relative error %.2e", worst)
			if path != "" {
				paths = append(paths, path)
			}
		})
	}
	if len(paths) > 0 {
		onnxcheck.Check(t, paths...)
	}
}
