package grad

import (
	"github.com/skipgraph/skipgraph/graph"
	"slices"
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
// forward output), which helps the static analysis.
func (c *Context) ReduceTo(g, x, like *graph.Value) *graph.Value {
	if like == nil {
		like = g
	}
	inf := c.bw.inf
	xs, xStatic := inf.staticShape(x)
	rg, rx := inf.rank(like), inf.rank(x)
	if rx < 0 && xStatic {
		rx = len(xs)
	}
	if gs, ok := inf.staticShape(like); ok {
		rg = len(gs)
		if xStatic && slices.Equal(gs, xs) {
			return g
		}
	}
	if rx == 0 {
		return c.SumAxes(g, false)
	}
	if inf.sameShape(x, like) {
		return g
	}
	if axes, ok := inf.reducedFrom(x, like); ok {
		// x is a keepdims reduction of a value shaped like g: sum over the same axes.
		return c.SumAxes(g, true, axes...)
	}
	if xStatic && rg >= 0 {
		// Static: the leading axes g has in excess, plus the axes where x has size 1.
		var axes []int64
		inner := false
		for i := 0; i < rg-len(xs); i++ {
			axes = append(axes, int64(i))
		}
		for i, d := range xs {
			if d == 1 {
				axes = append(axes, int64(rg-len(xs)+i))
				inner = true
			}
		}
		if len(axes) == 0 {
			return g
		}
		if !inner {
			return c.SumAxes(g, false, axes...)
		}
		return c.Reshape(c.SumAxes(g, true, axes...), c.Ints(xs...))
	}
	// Dynamic: pad Shape(x) with leading ones to the rank of g, reduce where the padded shape is 1.
	sx := c.Shape(x)
	padded := sx
	switch {
	case rg >= 0 && rx >= 0 && rg == rx:
	case rg >= 0 && rx >= 0:
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
	axes := c.Reshape(c.Op("NonZero", []*graph.Value{isOne}), c.Ints(-1))
	return c.Reshape(c.SumAxesV(g, axes, true), sx)
}
