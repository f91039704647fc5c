package grad

import (
	"github.com/skipgraph/skipgraph/graph"
	"github.com/skipgraph/skipgraph/graph/shapes"
)

// infer answers the rules' questions about element types and shapes through the symbolic
// shape inference of graph/shapes. Values built by passes carry no recorded type; their
// producers' rules say what they are.
type infer struct {
	s *shapes.Inferer
}

func init() {
	shapes.Register(Domain, StopGradientOp, shapes.Passthrough)
}

func newInfer() *infer { return &infer{s: shapes.New()} }

func (f *infer) info(v *graph.Value) *shapes.Info { return f.s.Infer(v) }

func (f *infer) dtype(v *graph.Value) graph.DType { return f.info(v).Elem }

// isFloat reports whether v may carry a gradient: its element type is floating point, or unknown.
func (f *infer) isFloat(v *graph.Value) bool {
	d := f.dtype(v)
	return d == graph.Undefined || d.IsFloat()
}

func (f *infer) rank(v *graph.Value) int { return f.info(v).Rank() }

// staticShape returns the shape of v when every dimension is a known constant.
func (f *infer) staticShape(v *graph.Value) ([]int64, bool) {
	if v == nil {
		return nil, false
	}
	return f.info(v).Static()
}

// hint records that gradient gv has the element type and shape of the forward value v, where
// inference knows less about gv.
func (f *infer) hint(gv, v *graph.Value) {
	gi, vi := f.info(gv), f.info(v)
	if gi.Rank() >= 0 && gi.Elem != graph.Undefined {
		return
	}
	h := *gi
	if h.Elem == graph.Undefined {
		h.Elem = vi.Elem
	}
	if h.Rank() < 0 {
		h.Shape, h.Ranked = vi.Shape, vi.Ranked
	}
	f.s.Set(gv, &h)
}

// constTensor returns the tensor of an initializer or of a Constant node's value attribute.
func constTensor(v *graph.Value) *graph.Tensor { return shapes.ConstTensor(v) }

// constInts returns the values of a constant integer tensor (any size once loaded).
func constInts(v *graph.Value) ([]int64, bool) {
	t := constTensor(v)
	if t == nil || !t.Loaded() && t.NumElements() > 64 {
		return nil, false
	}
	switch t.DType {
	case graph.Int64, graph.Int32, graph.Int8, graph.Uint8, graph.Bool:
	default:
		return nil, false
	}
	x, err := t.Int64s()
	if err != nil {
		return nil, false
	}
	return x, true
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// axesOf returns the axes of a node that takes them as an attribute or as input inputIdx. ok is
// false when they are given by a non-constant input; axes is nil when they are absent.
func axesOf(n *graph.Node, inputIdx int) (axes []int64, ok bool) {
	if a, has := n.AttrInts("axes"); has {
		return a, true
	}
	in := n.Input(inputIdx)
	if in == nil {
		return nil, true
	}
	x, ok := constInts(in)
	if !ok {
		return nil, false
	}
	if x == nil {
		x = []int64{}
	}
	return x, true
}

// broadcastAxes proves along which axes a value shaped xi was broadcast to gi: lead are the
// axes g has in excess (summed away), inner those where x has size 1 and g may not (summed,
// kept). ok is false when a rank is unknown or some axis is not decided.
func (f *infer) broadcastAxes(xi, gi *shapes.Info) (lead, inner []int64, ok bool) {
	rx, rg := xi.Rank(), gi.Rank()
	if rx < 0 || rg < rx {
		return nil, nil, false
	}
	for a := range rg - rx {
		lead = append(lead, int64(a))
	}
	for a, dx := range xi.Shape {
		dg := gi.Shape[rg-rx+a]
		_, xConst := dx.Const()
		switch {
		case f.s.Same(dx, dg), dg.IsConst(1), xConst && !dx.IsConst(1):
			// same size (a valid broadcast needs it when x's size is a constant other than 1)
		case dx.IsConst(1):
			inner = append(inner, int64(rg-rx+a))
		default:
			return nil, nil, false
		}
	}
	return lead, inner, true
}
