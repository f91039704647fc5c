package rewrite

import (
	"fmt"
	"math"
	"testing"

	"github.com/skipgraph/skipgraph/graph"
	"github.com/skipgraph/skipgraph/graph/onnxio"
	"github.com/skipgraph/skipgraph/runtime"
	"github.com/skipgraph/skipgraph/tensorio"
)

// optimizerModel is p, g -> AppendOptimizer(p, grad g): the update alone, with the gradient
// fed as an input so the test controls it.
func optimizerModel(t *testing.T, cfg OptimizerConfig) []byte {
	t.Helper()
	g := graph.New("opt")
	p, _ := g.AddInput("w", graph.TensorType(graph.Float, 3))
	gr, _ := g.AddInput("gw", graph.TensorType(graph.Float, 3))
	lr, _ := g.AddInput("lr.all", graph.TensorType(graph.Float))
	step, _ := g.AddInput("step", graph.TensorType(graph.Float))
	if err := AppendOptimizer(g, cfg, []OptimizerStep{{Param: p, Grad: gr, LR: lr}}, step); err != nil {
		t.Fatal(err)
	}
	EliminateDeadCode(g)
	if err := g.Verify(); err != nil {
		t.Fatal(err)
	}
	b, err := onnxio.Encode(&graph.Model{Graph: g, IRVersion: 8, Opsets: []graph.Opset{{Version: 17}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestOptimizers runs three steps of SGD (PyTorch semantics: decay added to the gradient,
// buf = m*buf + g, p -= lr*buf, zero initial buffer) and AdamW (decoupled decay, bias
// correction) on ONNX Runtime and compares with the same updates computed here in float64.
func TestOptimizers(t *testing.T) {
	grads := [][]float64{{0.5, -1, 2}, {0.1, 0.3, -0.2}, {-1, 0, 0.7}}
	w0 := []float64{1, -2, 0.5}
	const lr = 0.1
	for _, cfg := range []OptimizerConfig{DefaultSGD, {Kind: "sgd", Momentum: 0, WeightDecay: 0.01}, DefaultAdamW} {
		t.Run(fmt.Sprintf("%s-momentum%g", cfg.Kind, cfg.Momentum), func(t *testing.T) {
			sess, err := runtime.NewSessionFromBytes("opt", optimizerModel(t, cfg), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer sess.Close()
			want := append([]float64(nil), w0...)
			buf, m, v := make([]float64, 3), make([]float64, 3), make([]float64, 3)
			cur := f32(w0)
			state := map[string][]float32{}
			for _, s := range cfg.OptimizerState() {
				state["w."+s] = make([]float32, 3)
			}
			for k, gk := range grads {
				stepN := float64(k + 1)
				for i := range want {
					g := gk[i]
					switch cfg.Kind {
					case "sgd":
						g += cfg.WeightDecay * want[i]
						if cfg.Momentum != 0 {
							buf[i] = cfg.Momentum*buf[i] + g
							g = buf[i]
						}
						want[i] -= lr * g
					case "adamw":
						m[i] = cfg.Beta1*m[i] + (1-cfg.Beta1)*g
						v[i] = cfg.Beta2*v[i] + (1-cfg.Beta2)*g*g
						mh := m[i] / (1 - math.Pow(cfg.Beta1, stepN))
						vh := v[i] / (1 - math.Pow(cfg.Beta2, stepN))
						want[i] = want[i]*(1-lr*cfg.WeightDecay) - lr*mh/(math.Sqrt(vh)+cfg.Eps)
					}
				}
				in := map[string]*tensorio.Tensor{
					"w": vec(cur), "gw": vec(f32(gk)), "lr.all": tensorio.Scalar(float32(lr)), "step": tensorio.Scalar(float32(stepN)),
				}
				for name, s := range state {
					in[name] = vec(s)
				}
				out, err := sess.Run(in)
				if err != nil {
					t.Fatal(err)
				}
				cur = out["w.next"].Float32s()
				for name := range state {
					state[name] = out[name+".next"].Float32s()
				}
			}
			for i := range want {
				// float32 graph against a float64 reference over three steps: AdamW's division by
				// sqrt(v) amplifies float32 rounding to a few 1e-6.
				if d := math.Abs(float64(cur[i]) - want[i]); d > 1e-5*math.Max(1, math.Abs(want[i])) {
					t.Errorf("w[%d] after 3 steps = %.8g, want %.8g", i, cur[i], want[i])
				}
			}
		})
	}
}

func f32(x []float64) []float32 {
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = float32(v)
	}
	return out
}

func vec(x []float32) *tensorio.Tensor {
	t, _ := tensorio.FromSlice([]int64{int64(len(x))}, append([]float32(nil), x...))
	return t
}

// TestSGDOps pins the ops of the SGD update to binary elementwise kernels: ORT's variadic Sum
// was the slowest elementwise kernel per byte in the train-step profiles, and the Sum form of the
// update was not faster.
func TestSGDOps(t *testing.T) {
	for _, tc := range []struct {
		cfg  OptimizerConfig
		want map[string]int
	}{
		{DefaultSGD, map[string]int{"Mul": 3, "Add": 2, "Sub": 1}},
		{OptimizerConfig{Kind: "sgd", Momentum: 0.9}, map[string]int{"Mul": 2, "Add": 1, "Sub": 1}},
		{OptimizerConfig{Kind: "sgd"}, map[string]int{"Mul": 1, "Sub": 1}},
	} {
		t.Run(fmt.Sprintf("momentum%g-decay%g", tc.cfg.Momentum, tc.cfg.WeightDecay), func(t *testing.T) {
			g := graph.New("opt")
			p, _ := g.AddInput("w", graph.TensorType(graph.Float, 3))
			gr, _ := g.AddInput("gw", graph.TensorType(graph.Float, 3))
			lr, _ := g.AddInput("lr.all", graph.TensorType(graph.Float))
			step, _ := g.AddInput("step", graph.TensorType(graph.Float))
			if err := AppendOptimizer(g, tc.cfg, []OptimizerStep{{Param: p, Grad: gr, LR: lr}}, step); err != nil {
				t.Fatal(err)
			}
			got := map[string]int{}
			for _, n := range g.Nodes() {
				if n.OpType != "Identity" && n.OpType != "Constant" {
					got[n.OpType]++
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("ops %v, want %v", got, tc.want)
			}
		})
	}
}
