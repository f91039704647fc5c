package graph

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skipgraph/skipgraph/internal/testenv"
)

// mlp builds y = Relu(x @ W + b) -> ReduceSum, a small graph used across the tests.
func mlp(t *testing.T) (*Graph, map[string]*Node) {
	t.Helper()
	g := New("mlp")
	x, err := g.AddInput("x", Type{Elem: Float, Shape: []Dim{Sym("B"), Fixed(3)}, HasShape: true})
	if err != nil {
		t.Fatal(err)
	}
	w, _ := g.AddInitializer("W", FromFloat32([]int64{3, 2}, []float32{1, 2, 3, 4, 5, 6}))
	bias, _ := g.AddInitializer("b", FromFloat32([]int64{2}, []float32{0.5, -0.5}))
	mm := g.NewNode("MatMul", "", "mm", []*Value{x, w}, []string{"h"})
	add := g.NewNode("Add", "", "add", []*Value{mm.Output(0), bias}, []string{"z"})
	relu := g.NewNode("Relu", "", "relu", []*Value{add.Output(0)}, []string{"y"})
	sum := g.NewNode("ReduceSum", "", "sum", []*Value{relu.Output(0)}, []string{"s"}, IntAttr("keepdims", 0))
	g.AddOutput(sum.Output(0))
	return g, map[string]*Node{"mm": mm, "add": add, "relu": relu, "sum": sum}
}

func TestVerifyDetectsBrokenGraphs(t *testing.T) {
	cases := []struct {
		name   string
		break_ func(g *Graph, n map[string]*Node)
		want   string
	}{
		{"ok", func(*Graph, map[string]*Node) {}, ""},
		{"undefined input", func(g *Graph, n map[string]*Node) {
			n["relu"].SetInput(0, &Value{Name: "ghost"})
		}, `input 0 "ghost" is not produced`},
		{"cycle", func(g *Graph, n map[string]*Node) {
			n["mm"].SetInput(0, n["relu"].Output(0))
		}, "cycle"},
		{"undefined output", func(g *Graph, n map[string]*Node) {
			g.Outputs = append(g.Outputs, &Value{Name: "nowhere"})
		}, `graph output "nowhere" is not defined`},
		{"duplicate name", func(g *Graph, n map[string]*Node) {
			n["relu"].Output(0).Name = "h"
		}, `defined twice`},
		{"stale use", func(g *Graph, n map[string]*Node) {
			v := n["add"].Output(0)
			v.uses = append(v.uses, Use{n["sum"], 0})
		}, "stale use"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g, n := mlp(t)
			tc.break_(g, n)
			err := g.Verify()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Verify = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestCycleErrorIsErrCycle(t *testing.T) {
	g, n := mlp(t)
	n["mm"].SetInput(0, n["relu"].Output(0))
	if err := g.Sort(); !errors.Is(err, ErrCycle) {
		t.Fatalf("Sort = %v, want ErrCycle", err)
	}
}

func TestSortIsStableAndTopological(t *testing.T) {
	g, n := mlp(t)
	// Reverse the node list; Sort must restore the dependency order, and keep independent
	// nodes in their current relative order.
	extra := g.NewNode("Neg", "", "neg", []*Value{g.Inputs[0]}, []string{"nx"})
	g.AddOutput(extra.Output(0))
	g.nodes = []*Node{n["sum"], n["relu"], extra, n["add"], n["mm"]}
	if err := g.Sort(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range g.Nodes() {
		got = append(got, m.Name)
	}
	want := "neg mm add relu sum"
	if strings.Join(got, " ") != want {
		t.Fatalf("order %v, want %s", got, want)
	}
}

func TestReplaceAllUsesWith(t *testing.T) {
	g, n := mlp(t)
	h := n["mm"].Output(0)
	neg := g.NewNode("Neg", "", "neg", []*Value{h}, []string{"nh"})
	if err := g.ReplaceAllUsesWith(h, neg.Output(0), false); err != nil {
		t.Fatal(err)
	}
	// the Neg node itself used h, so it now uses its own output: a cycle Verify must see.
	if err := g.Verify(); err == nil {
		t.Fatal("expected a cycle after replacing the Neg's own input")
	}
	neg.SetInput(0, h)
	if n["add"].Input(0) != neg.Output(0) || h.NumUses() != 1 {
		t.Fatalf("uses not moved: add input %v, h uses %d", n["add"].Input(0), h.NumUses())
	}
	if err := g.Sort(); err != nil {
		t.Fatal(err)
	}
	if err := g.Verify(); err != nil {
		t.Fatal(err)
	}
	s := n["sum"].Output(0)
	if err := g.ReplaceAllUsesWith(s, h, false); err == nil {
		t.Fatal("replacing a graph output without outputsToo must fail")
	}
	if err := g.ReplaceAllUsesWith(s, h, true); err != nil || g.Outputs[0] != h {
		t.Fatalf("outputsToo: err %v, output %v", err, g.Outputs[0])
	}
}

func TestRemoveNodesAllOrNothing(t *testing.T) {
	g, n := mlp(t)
	before := g.String()
	if err := g.RemoveNodes(n["add"]); err == nil {
		t.Fatal("removing a node whose output is used must fail")
	}
	if err := g.RemoveNodes(n["relu"], n["sum"]); err == nil {
		t.Fatal("removing the producer of a graph output must fail")
	}
	if g.String() != before {
		t.Fatal("a failed removal changed the graph")
	}
	g.Outputs = []*Value{n["add"].Output(0)}
	if err := g.RemoveNodes(n["sum"], n["relu"]); err != nil {
		t.Fatal(err)
	}
	if g.NumNodes() != 2 || g.Value("y") != nil || n["add"].Output(0).NumUses() != 0 {
		t.Fatalf("after removal: %d nodes, y=%v", g.NumNodes(), g.Value("y"))
	}
	if err := g.Verify(); err != nil {
		t.Fatal(err)
	}
}

func TestCloneIsIndependent(t *testing.T) {
	g, _ := mlp(t)
	c := g.Clone()
	if c.String() != g.String() {
		t.Fatalf("clone differs:\n%s\nvs\n%s", c, g)
	}
	if err := c.Verify(); err != nil {
		t.Fatal(err)
	}
	cn := c.Nodes()
	cn[2].OpType = "Sigmoid"
	cn[0].Attrs = append(cn[0].Attrs, IntAttr("x", 1))
	cn[1].SetInput(1, c.Value("W"))
	if g.Nodes()[2].OpType != "Relu" || len(g.Nodes()[0].Attrs) != 0 || g.Nodes()[1].Input(1).Name != "b" {
		t.Fatal("editing the clone changed the original")
	}
	if g.Value("W").NumUses() != 1 {
		t.Fatal("clone shares use lists with the original")
	}
}

func TestInitializerToInput(t *testing.T) {
	g, _ := mlp(t)
	w := g.Value("W")
	tensor, err := g.InitializerToInput(w)
	if err != nil {
		t.Fatal(err)
	}
	if w.Const != nil || !w.IsGraphInput() || tensor.NumElements() != 6 || w.Type.String() != "float32[3,2]" {
		t.Fatalf("after InitializerToInput: const %v input %v type %s", w.Const, w.IsGraphInput(), w.Type)
	}
	if err := g.Verify(); err != nil {
		t.Fatal(err)
	}
}

func TestBuilderNamesAreUnique(t *testing.T) {
	g, n := mlp(t)
	b := NewBuilder(g, "grad")
	y := n["relu"].Output(0)
	a := b.Op("Neg", []*Value{y})
	c := b.Op("Neg", []*Value{a})
	k := b.Int64s(1, 2)
	if a.Name == c.Name || len(b.Added) != 2 || k.Const == nil {
		t.Fatalf("builder outputs %s %s", a, c)
	}
	if err := g.Verify(); err != nil {
		t.Fatal(err)
	}
}

func TestDumpGolden(t *testing.T) {
	g, _ := mlp(t)
	var buf bytes.Buffer
	if err := g.Dump(&buf); err != nil {
		t.Fatal(err)
	}
	golden(t, "mlp.golden", buf.Bytes())
}

// golden compares got with testdata/name (testenv.Golden; -update rewrites it).
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	testenv.Golden(t, filepath.Join("testdata", name), got)
}

func TestTensorAccessors(t *testing.T) {
	tt := FromInt64([]int64{2}, []int64{-3, 7})
	v, err := tt.Int64s()
	if err != nil || v[0] != -3 || v[1] != 7 {
		t.Fatalf("Int64s = %v %v", v, err)
	}
	if _, err := tt.Float32s(); err == nil {
		t.Fatal("Float32s of an int tensor must fail")
	}
	calls := 0
	lazy := NewLazyTensor(Float, []int64{1}, 4, func() ([]byte, error) { calls++; return []byte{0, 0, 128, 63}, nil }, nil)
	if lazy.Loaded() {
		t.Fatal("lazy tensor loaded early")
	}
	f, _ := lazy.Float32s()
	f2, _ := lazy.Float32s()
	if f[0] != 1 || f2[0] != 1 || calls != 1 {
		t.Fatalf("lazy load: %v calls %d", f, calls)
	}
}
