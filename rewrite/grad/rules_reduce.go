package grad

import (
	"github.com/skipgraph/skipgraph/graph"
)

// Reductions. The incoming gradient first gets the reduced axes back (when keepdims is 0), then
// broadcasts over them:
//
//	ReduceSum:  dx = g
//	ReduceMean: dx = g / n            (n elements reduced into each output)
//	ReduceL2:   dx = g * x / y
//	ReduceMax:  dx = g where x == y   (ties each get the whole gradient)

func init() {
	Register("ReduceSum", func(c *Context) error {
		c.SetGI(0, c.Op("Expand", []*graph.Value{c.keptGrad(c.GO(0)), c.Shape(c.I(0))}))
		return nil
	})
	Register("ReduceMean", func(c *Context) error {
		x, y := c.I(0), c.O(0)
		ge := c.Op("Expand", []*graph.Value{c.keptGrad(c.GO(0)), c.Shape(x)})
		c.SetGI(0, c.Div(ge, c.countPerOutput(x, y)))
		return nil
	})
	Register("ReduceL2", func(c *Context) error {
		x := c.I(0)
		c.SetGI(0, c.Div(c.Mul(c.keptGrad(c.GO(0)), x), c.keptGrad(c.O(0))))
		return nil
	})
	maxMin := func(c *Context) error {
		x := c.I(0)
		hit := c.Op("Equal", []*graph.Value{x, c.keptGrad(c.O(0))})
		gx := c.Op("Where", []*graph.Value{hit, c.keptGrad(c.GO(0)), c.Scalar(0, x)})
		c.SetGI(0, c.Op("Expand", []*graph.Value{gx, c.Shape(x)}))
		return nil
	}
	Register("ReduceMax", maxMin)
	Register("ReduceMin", maxMin)
}

// reduceAxes returns the axes of the reduction node being differentiated: a value, or nil when
// every axis is reduced (or, with noop_with_empty_axes, none).
func (c *Context) reduceAxes() *graph.Value {
	if a, ok := c.Node.AttrInts("axes"); ok {
		if len(a) == 0 {
			return nil
		}
		return c.Ints(a...)
	}
	return c.I(1)
}

// keptGrad gives v, shaped like the reduction's output, the reduced axes back as size-1 axes
// (it is v itself when keepdims is set). Without axes the output is a scalar, which broadcasts
// as it is; an empty axes value leaves Unsqueeze a no-op, which is right both when everything was
// reduced (a scalar) and when nothing was (noop_with_empty_axes).
func (c *Context) keptGrad(v *graph.Value) *graph.Value {
	if c.Node.AttrInt("keepdims", 1) == 1 {
		return v
	}
	axes := c.reduceAxes()
	if axes == nil {
		return v
	}
	return c.Op("Unsqueeze", []*graph.Value{v, axes})
}

// countPerOutput returns, in x's element type, how many elements of x are reduced into each
// element of y.
func (c *Context) countPerOutput(x, y *graph.Value) *graph.Value {
	if xs, ok := c.bw.inf.staticShape(x); ok {
		if axes, ok := axesOf(c.Node, 1); ok {
			n := int64(1)
			switch {
			case len(axes) == 0 && c.Node.AttrInt("noop_with_empty_axes", 0) == 1:
			case len(axes) == 0:
				for _, d := range xs {
					n *= d
				}
			default:
				for _, a := range axes {
					if a < 0 {
						a += int64(len(xs))
					}
					n *= xs[a]
				}
			}
			return c.Scalar(float64(n), x)
		}
	}
	n := c.Div(c.Op("Size", []*graph.Value{x}), c.Op("Size", []*graph.Value{y}))
	return c.Op("CastLike", []*graph.Value{n, x})
}
