// Package shapecheck holds the test steps that compare symbolic shape inference (graph/shapes)
// with the sizes ONNX Runtime produces: expose every intermediate value as an output, run, and
// evaluate each inferred dimension with the input symbols bound to the fed sizes.
package shapecheck

import (
	"maps"
	"slices"
	"testing"

	"github.com/skipgraph/skipgraph/graph"
	"github.com/skipgraph/skipgraph/graph/shapes"
	"github.com/skipgraph/skipgraph/tensorio"
)

// Expose infers every node output of m (Constants aside) and makes each of rank 1 or more a
// graph output (the runtime does not hand back rank-0 outputs; their users are checked). A
// value whose rank or element type stays unknown is an error, and so, when strict, is a size
// nothing proves. It returns the infos of the exposed values by name.
func Expose(t testing.TB, m *graph.Model, strict bool) map[string]*shapes.Info {
	t.Helper()
	f := shapes.New()
	infos := map[string]*shapes.Info{}
	g := m.Graph
	for _, n := range g.Nodes() {
		for _, o := range n.Outputs() {
			if o == nil || n.OpType == "Constant" {
				continue
			}
			i := f.Infer(o)
			if i.Rank() < 0 || i.Elem == graph.Undefined {
				t.Errorf("%s %s: inferred %v", n.OpType, o.Name, i)
				continue
			}
			if strict && slices.ContainsFunc(i.Shape, shapes.Expr.Unknown) {
				t.Errorf("%s %s: inferred %v, with a size nothing proves", n.OpType, o.Name, i)
			}
			if i.Rank() == 0 {
				continue
			}
			infos[o.Name] = i
			if !o.IsGraphOutput() {
				o.Type = graph.Type{Elem: i.Elem}
				g.AddOutput(o)
			}
		}
	}
	return infos
}

// Bind adds to bind each dim_param of g's inputs with the size of its feed.
func Bind(g *graph.Graph, feeds map[string]*tensorio.Tensor, bind map[string]int64) {
	for _, in := range g.Inputs {
		f := feeds[in.Name]
		if f == nil {
			continue
		}
		for k, d := range in.Type.Shape {
			if d.Param != "" && k < len(f.Shape) {
				bind[d.Param] = f.Shape[k]
			}
		}
	}
}

// BindFresh binds each fresh symbol (a size that depends on data) to the size ORT gave the
// first value, by name, holding it alone on an axis, so that the sizes built from it can be
// checked. It returns how many it bound.
func BindFresh(infos map[string]*shapes.Info, got map[string]*tensorio.Tensor, bind map[string]int64) int {
	n := 0
	for _, name := range slices.Sorted(maps.Keys(infos)) {
		for k, d := range infos[name].Shape {
			if sym, ok := d.Symbol(); ok && d.Unknown() && got[name] != nil {
				if _, bound := bind[sym]; !bound {
					bind[sym] = got[name].Shape[k]
					n++
				}
			}
		}
	}
	return n
}

// Compare checks each exposed value's shape, and the elements of int64 values whose data was
// inferred, against ORT's outputs. It returns how many values it checked and how many it could
// not evaluate (a symbol left unbound).
func Compare(t testing.TB, infos map[string]*shapes.Info, got map[string]*tensorio.Tensor, bind map[string]int64) (checked, unevaluated int) {
	t.Helper()
	for _, name := range slices.Sorted(maps.Keys(infos)) {
		inf, v := infos[name], got[name]
		if v == nil {
			t.Errorf("%s: no output from ORT", name)
			continue
		}
		want, ok := eval(inf.Shape, bind)
		if !ok {
			unevaluated++
			continue
		}
		if !slices.Equal(v.Shape, want) {
			t.Errorf("%s (%v): ORT gives shape %v, inference %v with %v", name, inf, v.Shape, want, bind)
		}
		if inf.Data != nil && v.DType == tensorio.Int64 {
			if vals, ok := eval(inf.Data, bind); !ok || !slices.Equal(v.Int64s(), vals) {
				t.Errorf("%s: ORT gives %v, inference %v", name, v.Int64s(), inf.Data)
			}
		}
		checked++
	}
	return checked, unevaluated
}

func eval(es []shapes.Expr, bind map[string]int64) ([]int64, bool) {
	out := make([]int64, len(es))
	for k, e := range es {
		v, ok := e.Eval(bind)
		if !ok {
			return nil, false
		}
		out[k] = v
	}
	return out, true
}
