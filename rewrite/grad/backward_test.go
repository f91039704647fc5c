package grad

import (
	"strings"
	"testing"

	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/graph"
	"github.com/skipgraph/skipgraph/tensorio"
)

// tiny returns a model with float64 inputs x [2,3] and w [3], at the given opset.
func tiny(t *testing.T, opset int64) (*graph.Model, *graph.Value, *graph.Value, *graph.Builder) {
	t.Helper()
	g := graph.New("tiny")
	x, err := g.AddInput("x", graph.TensorType(graph.Double, 2, 3))
	if err != nil {
		t.Fatal(err)
	}
	w, err := g.AddInput("w", graph.TensorType(graph.Double, 3))
	if err != nil {
		t.Fatal(err)
	}
	m := &graph.Model{Graph: g, IRVersion: 8, Opsets: []graph.Opset{{Domain: "", Version: opset}}}
	return m, x, w, graph.NewBuilder(g, "fwd")
}

func sumAll(b *graph.Builder, v *graph.Value) *graph.Value {
	return b.Op("ReduceSum", []*graph.Value{v}, graph.IntAttr("keepdims", 0))
}

func TestMissingRule(t *testing.T) {
	m, x, w, b := tiny(t, 17)
	hs := b.Op("HardSwish", []*graph.Value{b.Op("Mul", []*graph.Value{x, w})})
	n, _ := hs.Producer()
	n.Name = "/block/act/HardSwish"
	loss := sumAll(b, hs)
	nodes, inits := m.Graph.NumNodes(), len(m.Graph.Initializers)
	_, err := Backward(m, loss, []*graph.Value{w}, Options{})
	if err == nil {
		t.Fatal("no error for an op without a rule on the path")
	}
	for _, want := range []string{"HardSwish", "/block/act/HardSwish", "no gradient rule"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if m.Graph.NumNodes() != nodes || len(m.Graph.Initializers) != inits || m.Opset("") != 17 {
		t.Errorf("the failed Backward changed the graph")
	}
	if err := m.Graph.Verify(); err != nil {
		t.Fatal(err)
	}
}

// An op without a rule off the path, and stop edges on float paths, are fine.
func TestStopEdgesAndOffPath(t *testing.T) {
	m, x, w, b := tiny(t, 17)
	// off the path: HardSwish of a constant feeds the loss but no parameter reaches it
	off := b.Op("HardSwish", []*graph.Value{b.Const(graph.FromFloat64([]int64{3}, []float64{1, 2, 3}))})
	// stop edges: Shape of a parameter path, ArgMax, Equal, Cast to int
	y := b.Op("Mul", []*graph.Value{x, w})
	shape := b.Op("Shape", []*graph.Value{y})
	ones := b.Op("ConstantOfShape", []*graph.Value{shape}, graph.TensorAttr("value", graph.FromFloat64([]int64{1}, []float64{1})))
	am := b.Op("ArgMax", []*graph.Value{y}, graph.IntAttr("axis", 1))
	eq := b.Op("Cast", []*graph.Value{b.Op("Equal", []*graph.Value{y, y})}, graph.IntAttr("to", int64(graph.Double)))
	ci := b.Op("Cast", []*graph.Value{y}, graph.IntAttr("to", int64(graph.Int64)))
	z := b.Op("Add", []*graph.Value{b.Op("Mul", []*graph.Value{y, ones}), off})
	z = b.Op("Add", []*graph.Value{z, eq})
	z = b.Op("Add", []*graph.Value{z, b.Op("Cast", []*graph.Value{b.Op("Add", []*graph.Value{ci, b.Op("Unsqueeze", []*graph.Value{am, b.Int64s(1)})})}, graph.IntAttr("to", int64(graph.Double)))})
	loss := sumAll(b, z)
	grads, err := Backward(m, loss, []*graph.Value{x, w}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if grads[x] == nil || grads[w] == nil {
		t.Fatal("missing gradients")
	}
	if err := m.Graph.Verify(); err != nil {
		t.Fatal(err)
	}
}

func TestOpsets(t *testing.T) {
	for _, tc := range []struct {
		opset, want int64
		input       bool
	}{
		{12, 12, true}, {13, 17, false}, {14, 17, false}, {15, 17, false}, {16, 16, false}, {18, 18, false},
	} {
		m, x, w, b := tiny(t, tc.opset)
		loss := sumAll(b, b.Op("Mul", []*graph.Value{x, w}))
		_, err := Backward(m, loss, []*graph.Value{w}, Options{})
		switch {
		case tc.input && (err == nil || !errs.IsInput(err)):
			t.Errorf("opset %d: got %v, want an input error", tc.opset, err)
		case !tc.input && err != nil:
			t.Errorf("opset %d: %v", tc.opset, err)
		}
		if got := m.Opset(""); got != tc.want {
			t.Errorf("opset %d: model opset %d after Backward, want %d", tc.opset, got, tc.want)
		}
	}
}

func TestUnreachedParameter(t *testing.T) {
	m, x, w, b := tiny(t, 17)
	loss := sumAll(b, x)
	if _, err := Backward(m, loss, []*graph.Value{x, w}, Options{}); err == nil || !strings.Contains(err.Error(), `"w"`) {
		t.Errorf("got %v, want an error naming w", err)
	}
	grads, err := Backward(m, loss, []*graph.Value{x, w}, Options{ZeroUnreached: true})
	if err != nil {
		t.Fatal(err)
	}
	requireORT(t)
	g := m.Graph
	for _, p := range []*graph.Value{x, w} {
		gv := grads[p]
		if err := g.Rename(gv, p.Name+"_grad"); err != nil {
			t.Fatal(err)
		}
		g.AddOutput(gv)
	}
	xs, _ := tensorio.FromSlice([]int64{2, 3}, []float64{1, 2, 3, 4, 5, 6})
	ws, _ := tensorio.FromSlice([]int64{3}, []float64{1, 2, 3})
	out := run(t, m, map[string]*tensorio.Tensor{"x": xs, "w": ws})
	for _, v := range asFloat64s(out["w_grad"]) {
		if v != 0 {
			t.Fatalf("w_grad %v, want zeros", out["w_grad"].Data)
		}
	}
	for _, v := range asFloat64s(out["x_grad"]) {
		if v != 1 {
			t.Fatalf("x_grad %v, want ones", out["x_grad"].Data)
		}
	}
}

// StopGradient blocks one path; the other still carries the gradient. After lowering, the graph
// has no ai.skipgraph node or import and runs on ONNX Runtime.
func TestStopGradient(t *testing.T) {
	m, x, w, b := tiny(t, 17)
	// loss = sum(stop(x) * w + x * x): d/dx = 2x, d/dw = x
	stopped := InsertStopGradient(m, b.Op("Identity", []*graph.Value{x}))
	loss := sumAll(b, b.Op("Add", []*graph.Value{b.Op("Mul", []*graph.Value{stopped, w}), b.Op("Mul", []*graph.Value{x, x})}))
	if m.Opset(Domain) != DomainVersion {
		t.Fatalf("the %s import is missing", Domain)
	}
	grads, err := Backward(m, loss, []*graph.Value{x, w}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if n := LowerStopGradients(m); n != 1 {
		t.Errorf("lowered %d markers, want 1", n)
	}
	for _, n := range m.Graph.Nodes() {
		if n.Domain == Domain {
			t.Fatalf("node %s is still in %s", n, Domain)
		}
	}
	if m.Opset(Domain) != 0 {
		t.Errorf("the %s import is still there", Domain)
	}
	requireORT(t)
	g := m.Graph
	for _, p := range []*graph.Value{x, w} {
		if err := g.Rename(grads[p], p.Name+"_grad"); err != nil {
			t.Fatal(err)
		}
		g.AddOutput(grads[p])
	}
	xv, _ := tensorio.FromSlice([]int64{2, 3}, []float64{1, 2, 3, 4, 5, 6})
	wv, _ := tensorio.FromSlice([]int64{3}, []float64{7, 8, 9})
	out := run(t, m, map[string]*tensorio.Tensor{"x": xv, "w": wv})
	gx, gw := asFloat64s(out["x_grad"]), asFloat64s(out["w_grad"])
	for i, v := range []float64{2, 4, 6, 8, 10, 12} {
		if gx[i] != v {
			t.Fatalf("x_grad %v, want 2x", gx)
		}
	}
	for i, v := range []float64{5, 7, 9} {
		if gw[i] != v {
			t.Fatalf("w_grad %v, want column sums of x", gw)
		}
	}
}

func TestDropoutTrainingRefused(t *testing.T) {
	m, x, _, b := tiny(t, 17)
	tm := b.Const(graph.NewTensor(graph.Bool, nil, []byte{1}))
	y := b.OpN("Dropout", "", []*graph.Value{x, nil, tm}, 1)[0]
	_, err := Backward(m, sumAll(b, y), []*graph.Value{x}, Options{})
	if err == nil || !strings.Contains(err.Error(), "Dropout") {
		t.Errorf("got %v, want an error about Dropout in training mode", err)
	}
}

func TestRegistry(t *testing.T) {
	for op, want := range map[string]Support{
		"MatMul": Differentiable, "Shape": NoGradient, "Equal": NoGradient, "HardSwish": Unsupported,
	} {
		if got := Supported("", op); got != want {
			t.Errorf("%s: %v, want %v", op, got, want)
		}
	}
	if got := Supported(Domain, StopGradientOp); got != NoGradient {
		t.Errorf("StopGradient: %v", got)
	}
	if got := Supported("ai.onnx", "Add"); got != Differentiable {
		t.Errorf("ai.onnx Add: %v", got)
	}
}
