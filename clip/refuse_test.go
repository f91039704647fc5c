package clip

import (
	"strings"
	"testing"

	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/graph"
	"github.com/skipgraph/skipgraph/synth"
)

// tinyCLIP returns a small combined synthetic export.
func tinyCLIP(t *testing.T) *graph.Model {
	t.Helper()
	res, err := synth.Build(synth.Config{Style: synth.StyleHF})
	if err != nil {
		t.Fatal(err)
	}
	return res.Models[synth.ModelCombined]
}

// newModel returns an empty model at opset 14 and its graph.
func newModel() (*graph.Model, *graph.Graph) {
	g := graph.New("g")
	return &graph.Model{Graph: g, IRVersion: 8, Opsets: []graph.Opset{{Domain: "", Version: 14}}}, g
}

func mustInput(t *testing.T, g *graph.Graph, name string, ty graph.Type) *graph.Value {
	t.Helper()
	v, err := g.AddInput(name, ty)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mustInit(t *testing.T, g *graph.Graph, name string, dims ...int64) *graph.Value {
	t.Helper()
	n := int64(1)
	for _, d := range dims {
		n *= d
	}
	v, err := g.AddInitializer(name, graph.FromFloat32(dims, make([]float32, n)))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestRefusals(t *testing.T) {
	fused := func(op string) func(t *testing.T) *graph.Model {
		return func(t *testing.T) *graph.Model {
			m := tinyCLIP(t)
			in := m.Graph.Inputs[0]
			out := m.Graph.NewNode(op, "com.microsoft", "fused_"+op, []*graph.Value{in}, []string{"fused_out"})
			m.Graph.AddOutput(out.Output(0))
			return m
		}
	}
	cases := []struct {
		name  string
		model func(t *testing.T) *graph.Model
		want  []string
	}{
		{"ort-attention", fused("Attention"), []string{`"fused_Attention"`, "com.microsoft.Attention", "without ONNX Runtime graph optimisation"}},
		{"ort-skip-layernorm", fused("SkipLayerNormalization"), []string{"com.microsoft.SkipLayerNormalization", "export the model again"}},
		{"ort-quickgelu", fused("QuickGelu"), []string{"com.microsoft.QuickGelu"}},
		{"ort-fusedmatmul", fused("FusedMatMul"), []string{"com.microsoft.FusedMatMul"}},
		{"ort-biasgelu", fused("BiasGelu"), []string{"com.microsoft.BiasGelu"}},
		{"plain-mlp", func(t *testing.T) *graph.Model {
			m, g := newModel()
			x := mustInput(t, g, "x", graph.TensorType(graph.Float, -1, 784))
			h := g.NewNode("MatMul", "", "", []*graph.Value{x, mustInit(t, g, "w1", 784, 64)}, []string{"h"}).Output(0)
			h = g.NewNode("Relu", "", "", []*graph.Value{h}, []string{"r"}).Output(0)
			y := g.NewNode("MatMul", "", "", []*graph.Value{h, mustInit(t, g, "w2", 64, 10)}, []string{"y"}).Output(0)
			g.AddOutput(y)
			return m
		}, []string{"not a CLIP model", "pixel_values", "input_ids", "x: float32[?,784]"}},
		{"convnet", func(t *testing.T) *graph.Model {
			m, g := newModel()
			x := mustInput(t, g, "pixel_values", graph.TensorType(graph.Float, -1, 3, 32, 32))
			h := g.NewNode("Conv", "", "", []*graph.Value{x, mustInit(t, g, "k", 8, 3, 3, 3)}, []string{"h"}).Output(0)
			y := g.NewNode("GlobalAveragePool", "", "", []*graph.Value{h}, []string{"y"}).Output(0)
			g.AddOutput(y)
			return m
		}, []string{"no transformer layers found in the vision tower", "residual Add chains around LayerNorm+attention"}},
		{"bag-of-words", func(t *testing.T) *graph.Model {
			m, g := newModel()
			ids := mustInput(t, g, "input_ids", graph.TensorType(graph.Int64, -1, 8))
			e := g.NewNode("Gather", "", "", []*graph.Value{mustInit(t, g, "emb", 64, 16), ids}, []string{"e"}).Output(0)
			y := g.NewNode("ReduceMean", "", "", []*graph.Value{e}, []string{"y"}, graph.IntsAttr("axes", 1)).Output(0)
			g.AddOutput(y)
			return m
		}, []string{"no transformer layers found in the text tower", `"input_ids"`}},
		{"no-graph", func(t *testing.T) *graph.Model { return &graph.Model{} }, []string{"no graph"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Discover(c.model(t))
			if err == nil {
				t.Fatal("accepted")
			}
			if !errs.IsInput(err) {
				t.Errorf("not an input error: %v", err)
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("message is not one line: %q", msg)
			}
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q lacks %q", msg, w)
				}
			}
		})
	}
}

func TestFixtureRefusesFusedAttention(t *testing.T) {
	m := loadFixture(t, "clip-hf-tiny")
	g := m.Graph
	// Replace nothing: an inserted fused node is enough to refuse the graph.
	x := g.Value("/vision_model/pre_layrnorm/Add_1_output_0")
	if x == nil {
		t.Fatal("fixture changed: pre-norm output not found")
	}
	n := g.NewNode("Attention", "com.microsoft", "/vision_model/encoder/layers.0/self_attn/Attention", []*graph.Value{x}, []string{"attn_fused"}, graph.IntAttr("num_heads", 2))
	g.AddOutput(n.Output(0))
	_, err := Discover(m)
	if err == nil || !errs.IsInput(err) || !strings.Contains(err.Error(), "com.microsoft.Attention") || !strings.Contains(err.Error(), "layers.0/self_attn/Attention") {
		t.Fatalf("got %v", err)
	}
}

func TestDiscoverSplitRefusesSwapped(t *testing.T) {
	res, err := synth.Build(synth.Config{Style: synth.StyleOpenAI, Split: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = DiscoverSplit(res.Models[synth.ModelText], res.Models[synth.ModelVision])
	if err == nil || !errs.IsInput(err) || !strings.Contains(err.Error(), "vision model") {
		t.Fatalf("got %v", err)
	}
}
