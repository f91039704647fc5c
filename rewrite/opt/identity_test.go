package opt

import (
	"testing"

	"github.com/skipgraph/skipgraph/graph"
)

func TestFoldIdentities(t *testing.T) {
	g := graph.New("g")
	x, err := g.AddInput("x", graph.TensorType(graph.Float, 2))
	if err != nil {
		t.Fatal(err)
	}
	b := graph.NewBuilder(g, "t")
	inner := b.Op("Identity", []*graph.Value{x})
	sum := b.Op("Add", []*graph.Value{inner, x})
	out := b.Op("Identity", []*graph.Value{sum})
	if err := g.Rename(out, "y.next"); err != nil {
		t.Fatal(err)
	}
	out.Type = graph.TensorType(graph.Float, 2)
	g.AddOutput(out)
	passThrough := b.Op("Identity", []*graph.Value{x}) // an input as an output: kept
	if err := g.Rename(passThrough, "x.copy"); err != nil {
		t.Fatal(err)
	}
	g.AddOutput(passThrough)

	changed, err := FoldIdentities(g)
	if err != nil || !changed {
		t.Fatalf("FoldIdentities: changed %v, err %v", changed, err)
	}
	if err := g.Verify(); err != nil {
		t.Fatal(err)
	}
	if n := g.NumNodes(); n != 2 {
		t.Fatalf("%d nodes left, want the Add and the kept Identity:\n%s", n, g)
	}
	y := g.Outputs[0]
	if y.Name != "y.next" || !y.Type.Equal(graph.TensorType(graph.Float, 2)) {
		t.Fatalf("output 0 is %q %v", y.Name, y.Type)
	}
	p, _ := y.Producer()
	if p == nil || p.OpType != "Add" || p.Input(0) != x || p.Input(1) != x {
		t.Fatalf("y.next is not Add(x, x): %v", p)
	}
	if g.Outputs[1].Name != "x.copy" {
		t.Fatalf("output 1 is %q, want x.copy", g.Outputs[1].Name)
	}
}
