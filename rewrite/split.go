package rewrite

import (
	"fmt"

	"github.com/skipgraph/skipgraph/graph"
	"github.com/skipgraph/skipgraph/rewrite/grad"
)

// LowerStopGradient replaces skipgraph's StopGradient markers by Identity before a graph is
// written, so no custom op reaches ONNX Runtime.
var LowerStopGradient = Register(&Pass{
	Name: "lower-stop-gradient",
	Doc:  "replace skipgraph's StopGradient markers by Identity before a graph is written",
	Run:  func(c *Context) (bool, error) { return grad.LowerStopGradients(c.Model) > 0, nil },
})

// Cut replaces each cut point's value by a new graph input (the point's Name and Type), so that
// the nodes computing it, and everything only they needed, fall away: the suffix of the graph
// that starts from those values. Graph inputs nothing reads any more are removed.
func Cut(g *graph.Graph, cuts []CutPoint) error {
	for _, c := range cuts {
		if c.Value.IsGraphOutput() {
			return fmt.Errorf("cannot cut at %q: it is a graph output", c.Value.Name)
		}
		in, err := g.AddInput(c.Name, c.Type)
		if err != nil {
			return fmt.Errorf("cut at %q: %w", c.Value.Name, err)
		}
		if err := g.ReplaceAllUsesWith(c.Value, in, false); err != nil {
			return err
		}
	}
	if _, err := EliminateDeadCode(g); err != nil {
		return err
	}
	RemoveUnusedInputs(g)
	return nil
}

// CutPoint names a value to cut at and the graph input that replaces it.
type CutPoint struct {
	Value *graph.Value
	Name  string
	Type  graph.Type
}

// KeepOutputs makes outs the graph's only outputs (each renamed through an Identity node to the
// given name and typed), then removes what no output needs: the prefix of the graph that ends
// at those values.
func KeepOutputs(g *graph.Graph, outs []CutPoint) error {
	g.Outputs = nil
	b := graph.NewBuilder(g, "outputs")
	for _, o := range outs {
		v := b.Op("Identity", []*graph.Value{o.Value})
		if err := g.Rename(v, o.Name); err != nil {
			return err
		}
		v.Type = o.Type
		g.AddOutput(v)
	}
	if _, err := EliminateDeadCode(g); err != nil {
		return err
	}
	RemoveUnusedInputs(g)
	return nil
}

// RemoveUnusedInputs drops graph inputs that no node reads and that are not outputs.
func RemoveUnusedInputs(g *graph.Graph) {
	for _, v := range append([]*graph.Value(nil), g.Inputs...) {
		if v.NumUses() == 0 && !v.IsGraphOutput() {
			if v.Const != nil {
				_ = g.RemoveInitializer(v)
			} else {
				_ = g.RemoveInput(v)
			}
		}
	}
}
