package grad

import (
	"strings"

	"github.com/skipgraph/skipgraph/graph"
)

// This file holds the small emitters rules share. They target opset 13 or newer (axes of
// ReduceSum, Squeeze and Unsqueeze, and the sizes of Split, are inputs) and, where it matters,
// the opset of the model (Backward raises it to at least 16).

// Op emits one node with one output.
func (c *Context) Op(op string, inputs []*graph.Value, attrs ...graph.Attr) *graph.Value {
	return c.B.Op(op, inputs, attrs...)
}

// Ints emits a 1-D int64 constant.
func (c *Context) Ints(v ...int64) *graph.Value { return c.B.Int64s(v...) }

// Shape emits Shape(v).
func (c *Context) Shape(v *graph.Value) *graph.Value { return c.Op("Shape", []*graph.Value{v}) }

// Scalar emits a rank-0 constant of the element type of like.
func (c *Context) Scalar(x float64, like *graph.Value) *graph.Value {
	switch dt := c.DType(like); dt {
	case graph.Float, graph.Double, graph.Float16:
		return c.B.Scalar(dt, x)
	default:
		return c.Op("CastLike", []*graph.Value{c.B.Scalar(graph.Float, x), like})
	}
}

// Mul emits a * b.
func (c *Context) Mul(a, b *graph.Value) *graph.Value { return c.Op("Mul", []*graph.Value{a, b}) }

// Add emits a + b.
func (c *Context) Add(a, b *graph.Value) *graph.Value { return c.Op("Add", []*graph.Value{a, b}) }

// Sub emits a - b.
func (c *Context) Sub(a, b *graph.Value) *graph.Value { return c.Op("Sub", []*graph.Value{a, b}) }

// Div emits a / b.
func (c *Context) Div(a, b *graph.Value) *graph.Value { return c.Op("Div", []*graph.Value{a, b}) }

// Neg emits -a.
func (c *Context) Neg(a *graph.Value) *graph.Value { return c.Op("Neg", []*graph.Value{a}) }

// Reshape emits Reshape(v, shape).
func (c *Context) Reshape(v, shape *graph.Value) *graph.Value {
	return c.Op("Reshape", []*graph.Value{v, shape})
}

// ReshapeLike reshapes v to the shape of like.
func (c *Context) ReshapeLike(v, like *graph.Value) *graph.Value {
	if dims, ok := c.bw.inf.staticShape(like); ok {
		return c.Reshape(v, c.Ints(dims...))
	}
	return c.Reshape(v, c.Shape(like))
}

// Unsqueeze emits Unsqueeze(v, axes).
func (c *Context) Unsqueeze(v *graph.Value, axes ...int64) *graph.Value {
	return c.Op("Unsqueeze", []*graph.Value{v, c.Ints(axes...)})
}

// Transpose emits Transpose(v, perm).
func (c *Context) Transpose(v *graph.Value, perm ...int64) *graph.Value {
	return c.Op("Transpose", []*graph.Value{v}, graph.IntsAttr("perm", perm...))
}

// SumAxes emits ReduceSum over constant axes (all axes when none are given).
func (c *Context) SumAxes(v *graph.Value, keepdims bool, axes ...int64) *graph.Value {
	ins := []*graph.Value{v}
	if len(axes) > 0 {
		ins = append(ins, c.Ints(axes...))
	}
	return c.Op("ReduceSum", ins, graph.IntAttr("keepdims", int64(boolInt(keepdims))))
}

// SumAxesV emits ReduceSum over the axes held by a 1-D int64 value; no axes means no reduction.
func (c *Context) SumAxesV(v, axes *graph.Value, keepdims bool) *graph.Value {
	return c.Op("ReduceSum", []*graph.Value{v, axes},
		graph.IntAttr("keepdims", int64(boolInt(keepdims))), graph.IntAttr("noop_with_empty_axes", 1))
}

// ZerosLike emits a tensor of zeros with the shape and element type of v.
func (c *Context) ZerosLike(v *graph.Value) *graph.Value {
	return c.filled(0, v)
}

func (c *Context) filled(x float64, v *graph.Value) *graph.Value {
	dt := c.DType(v)
	shape := c.Shape(v)
	if dims, ok := c.bw.inf.staticShape(v); ok {
		shape = c.Ints(dims...)
	}
	switch dt {
	case graph.Float, graph.Double, graph.Float16:
		return c.Op("ConstantOfShape", []*graph.Value{shape}, graph.TensorAttr("value", oneElem(dt, x)))
	}
	z := c.Op("ConstantOfShape", []*graph.Value{shape}, graph.TensorAttr("value", oneElem(graph.Float, x)))
	return c.Op("CastLike", []*graph.Value{z, v})
}

func oneElem(dt graph.DType, x float64) *graph.Tensor {
	t := graph.ScalarFloat(dt, x)
	b, _ := t.Bytes()
	return graph.NewTensor(dt, []int64{1}, b)
}

// ReduceTo sums a gradient g, computed for the broadcast shape, down to the shape of input x
// (numpy broadcasting). like, when not nil, is a value known to have g's shape (usually the
// forward output). When the symbolic shapes prove which axes x was broadcast along, this is a
// ReduceSum over constant axes; otherwise the axes are found at run time (DynamicReductionDoc).
func (c *Context) ReduceTo(g, x, like *graph.Value) *graph.Value {
	inf := c.bw.inf
	xi, gi := inf.info(x), inf.info(g)
	if xi.Rank() == 0 {
		return c.SumAxes(g, false)
	}
	lead, inner, ok := inf.broadcastAxes(xi, gi)
	if !ok && like != nil {
		// like has g's shape; its inference may prove more (gradients add up contributions)
		gi = inf.info(like)
		lead, inner, ok = inf.broadcastAxes(xi, gi)
	}
	if ok {
		switch {
		case len(lead) == 0 && len(inner) == 0:
			return g
		case len(inner) == 0:
			return c.SumAxes(g, false, lead...)
		}
		s := c.SumAxes(g, true, append(append([]int64(nil), lead...), inner...)...)
		if len(lead) > 0 {
			s = c.Op("Squeeze", []*graph.Value{s, c.Ints(lead...)})
		}
		return s
	}
	return c.reduceToDynamic(g, x, gi.Rank(), xi.Rank())
}

// DynamicReductionDoc starts the doc string of the NonZero node of a broadcast reduction whose
// axes are found at run time (its shapes could not be proved); on an accelerator it copies data
// to the host in the middle of a step.
const DynamicReductionDoc = "dynamic broadcast reduction"

// DynamicReductions lists the dynamic broadcast reductions of g: each NonZero node that
// ReduceTo emitted, as "name: doc" (the doc names the gradient it serves).
func DynamicReductions(g *graph.Graph) []string {
	var out []string
	for _, n := range g.Nodes() {
		if n.OpType == "NonZero" && strings.HasPrefix(n.Doc, DynamicReductionDoc) {
			out = append(out, n.Name+": "+n.Doc)
		}
	}
	return out
}

// reduceToDynamic pads Shape(x) with leading ones to the rank of g and reduces where the padded
// shape is 1 (ranks rg, rx: -1 when unknown).
func (c *Context) reduceToDynamic(g, x *graph.Value, rg, rx int) *graph.Value {
	sx := c.Shape(x)
	padded := sx
	switch {
	case rg >= 0 && rx >= 0 && rg == rx:
	case rg >= 0 && rx >= 0 && rg > rx:
		ones := make([]int64, rg-rx)
		for i := range ones {
			ones[i] = 1
		}
		padded = c.Op("Concat", []*graph.Value{c.Ints(ones...), sx}, graph.IntAttr("axis", 0))
	default:
		diff := c.Sub(c.Shape(c.Shape(g)), c.Shape(sx))
		ones := c.Op("ConstantOfShape", []*graph.Value{diff}, graph.TensorAttr("value", graph.FromInt64([]int64{1}, []int64{1})))
		padded = c.Op("Concat", []*graph.Value{ones, sx}, graph.IntAttr("axis", 0))
	}
	isOne := c.Op("Equal", []*graph.Value{padded, c.Ints(1)})
	nz := c.Op("NonZero", []*graph.Value{isOne})
	if n, _ := nz.Producer(); n != nil {
		n.Doc = DynamicReductionDoc + " for the gradient of " + c.Node.OpType + " node " + c.Node.Name + " (input " + x.Name + ")"
	}
	axes := c.Reshape(nz, c.Ints(-1))
	return c.Reshape(c.SumAxesV(g, axes, true), sx)
}
