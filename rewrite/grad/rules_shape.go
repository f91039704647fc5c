package grad

import (
	"math"

	"github.com/skipgraph/skipgraph/graph"
)

// Shape and data-movement operators. Their gradients move the incoming gradient back to where
// each element came from; index, shape and size inputs are stop edges.

func init() {
	reshapeBack := func(c *Context) error {
		c.SetGI(0, c.ReshapeLike(c.GO(0), c.I(0)))
		return nil
	}
	Register("Reshape", reshapeBack)
	Register("Flatten", reshapeBack)
	Register("Squeeze", reshapeBack)
	Register("Unsqueeze", reshapeBack)
	Register("Transpose", transposeGrad)
	Register("Concat", concatGrad)
	Register("Split", splitGrad)
	Register("Slice", sliceGrad)
	Register("Gather", gatherGrad)
	Register("GatherElements", gatherElementsGrad)
	// y = expand(x, shape): sum the gradient back over the broadcast axes.
	Register("Expand", func(c *Context) error {
		c.SetGI(0, c.ReduceTo(c.GO(0), c.I(0), c.O(0)))
		return nil
	})
	// Trilu keeps a triangle and zeroes the rest: the same mask applies to the gradient.
	Register("Trilu", func(c *Context) error {
		ins := []*graph.Value{c.GO(0)}
		if k := c.I(1); k != nil {
			ins = append(ins, k)
		}
		c.SetGI(0, c.Op("Trilu", ins, graph.IntAttr("upper", c.Node.AttrInt("upper", 1))))
		return nil
	})
	// Shape queries, index generators and constants have no gradient.
	RegisterNoGradient("Shape", "Size", "Range", "ConstantOfShape", "NonZero", "ArgMax", "ArgMin",
		"Constant", "OneHot", "EyeLike", "RandomNormal", "RandomUniform", "RandomNormalLike",
		"RandomUniformLike", "Bernoulli", "Multinomial")
}

// y = transpose(x, perm): dx = transpose(g, perm^-1). Without perm the axes are reversed, which
// is its own inverse.
func transposeGrad(c *Context) error {
	perm, ok := c.Node.AttrInts("perm")
	if !ok {
		c.SetGI(0, c.Op("Transpose", []*graph.Value{c.GO(0)}))
		return nil
	}
	inv := make([]int64, len(perm))
	for i, p := range perm {
		if p < 0 || int(p) >= len(perm) {
			return c.Errorf("perm %v is not a permutation", perm)
		}
		inv[p] = int64(i)
	}
	c.SetGI(0, c.Transpose(c.GO(0), inv...))
	return nil
}

// dimOf returns the size of axis of v as a 1-D int64 value of one element.
func (c *Context) dimOf(v *graph.Value, axis int64) *graph.Value {
	if dims, ok := c.bw.inf.staticShape(v); ok {
		a := axis
		if a < 0 {
			a += int64(len(dims))
		}
		if a >= 0 && int(a) < len(dims) {
			return c.Ints(dims[a])
		}
	}
	return c.Op("Gather", []*graph.Value{c.Shape(v), c.Ints(axis)})
}

// scalarDimOf returns the size of axis of v as an int64 scalar.
func (c *Context) scalarDimOf(v *graph.Value, axis int64) *graph.Value {
	return c.Op("Gather", []*graph.Value{c.Shape(v), c.B.Const(graph.FromInt64(nil, []int64{axis}))})
}

// y = concat(x_0, ..., x_n; axis): split g into pieces of the inputs' sizes along axis.
func concatGrad(c *Context) error {
	axis := c.Node.AttrInt("axis", 0)
	n := c.NumI()
	sizes := make([]*graph.Value, n)
	for i := range n {
		sizes[i] = c.dimOf(c.I(i), axis)
	}
	split := c.Op("Concat", sizes, graph.IntAttr("axis", 0))
	outs := c.B.OpN("Split", "", []*graph.Value{c.GO(0), split}, n, graph.IntAttr("axis", axis))
	for i, o := range outs {
		c.SetGI(i, o)
	}
	return nil
}

// y_0, ..., y_n = split(x; axis): concatenate the gradients, zeros for outputs without one.
func splitGrad(c *Context) error {
	axis := c.Node.AttrInt("axis", 0)
	parts := make([]*graph.Value, c.Node.NumOutputs())
	for i := range parts {
		if g := c.GO(i); g != nil {
			parts[i] = g
		} else {
			parts[i] = c.ZerosLike(c.O(i))
		}
	}
	c.SetGI(0, c.Op("Concat", parts, graph.IntAttr("axis", axis)))
	return nil
}

// y = slice(x; starts, ends, axes, steps). Any starts, ends, axes and steps: the same Slice
// applied to the flat positions of x (an int64 iota shaped like x) says where each element of y
// came from, and the gradient is scattered there into zeros.
func sliceGrad(c *Context) error {
	x, g := c.I(0), c.GO(0)
	n := c.Op("Size", []*graph.Value{x})
	zero := c.B.Const(graph.FromInt64(nil, []int64{0}))
	one := c.B.Const(graph.FromInt64(nil, []int64{1}))
	iota := c.Reshape(c.Op("Range", []*graph.Value{zero, n, one}), c.Shape(x))
	ins := []*graph.Value{iota}
	for i := 1; i < c.NumI(); i++ {
		ins = append(ins, c.I(i))
	}
	pos := c.Reshape(c.Op("Slice", ins), c.Ints(-1))
	flat := c.Reshape(c.ZerosLike(x), c.Ints(-1))
	scattered := c.Op("ScatterElements", []*graph.Value{flat, pos, c.Reshape(g, c.Ints(-1))},
		graph.IntAttr("axis", 0))
	c.SetGI(0, c.ReshapeLike(scattered, x))
	return nil
}

// normIndices maps negative indices into [0, dim) (dim is the size of axis of data); constant
// non-negative indices are returned as they are.
func (c *Context) normIndices(idx, data *graph.Value, axis int64) *graph.Value {
	if v, ok := constInts(idx); ok {
		neg := false
		for _, x := range v {
			neg = neg || x < 0
		}
		if !neg {
			return idx
		}
	}
	dim := c.scalarDimOf(data, axis)
	zero := c.B.Const(graph.FromInt64(nil, []int64{0}))
	if dt := c.DType(idx); dt != graph.Int64 {
		dim = c.Op("CastLike", []*graph.Value{dim, idx})
		zero = c.Op("CastLike", []*graph.Value{zero, idx})
	}
	isNeg := c.Op("Less", []*graph.Value{idx, zero})
	return c.Op("Where", []*graph.Value{isNeg, c.Add(idx, dim), idx})
}

// y = gather(data, idx; axis): scatter-add g into zeros shaped like data at the gathered
// positions (repeated indices add up).
func gatherGrad(c *Context) error {
	if !c.Need(0) {
		return nil
	}
	data, idx, g := c.I(0), c.I(1), c.GO(0)
	axis := c.Node.AttrInt("axis", 0)
	if axis < 0 {
		r := c.Rank(data)
		if r < 0 {
			return c.Errorf("negative axis %d on data of unknown rank", axis)
		}
		axis += int64(r)
	}
	idx = c.normIndices(idx, data, axis)
	zeros := c.ZerosLike(data)
	if axis == 0 {
		// An embedding table: ScatterND rows, indices [..., 1], updates g = idx.shape + row.
		c.SetGI(0, c.Op("ScatterND", []*graph.Value{zeros, c.Unsqueeze(idx, -1), g},
			graph.StringAttr("reduction", "add")))
		return nil
	}
	// Any other axis: fold the index axes of g into one, broadcast the flat indices along the
	// other axes, and ScatterElements-add along axis.
	if c.DType(idx) != graph.Int64 {
		idx = c.Op("Cast", []*graph.Value{idx}, graph.IntAttr("to", int64(graph.Int64)))
	}
	sd := c.Shape(data)
	head := c.Op("Slice", []*graph.Value{sd, c.Ints(0), c.Ints(axis)})
	tail := c.Op("Slice", []*graph.Value{sd, c.Ints(axis + 1), c.Ints(math.MaxInt64)})
	gShape := c.Op("Concat", []*graph.Value{head, c.Ints(-1), tail}, graph.IntAttr("axis", 0))
	gr := c.Reshape(g, gShape)
	ones := make([]int64, axis)
	for i := range ones {
		ones[i] = 1
	}
	tailOnes := c.Op("ConstantOfShape", []*graph.Value{c.Shape(tail)},
		graph.TensorAttr("value", graph.FromInt64([]int64{1}, []int64{1})))
	iShape := c.Op("Concat", []*graph.Value{c.Ints(append(ones, -1)...), tailOnes}, graph.IntAttr("axis", 0))
	ie := c.Op("Expand", []*graph.Value{c.Reshape(idx, iShape), c.Shape(gr)})
	c.SetGI(0, c.Op("ScatterElements", []*graph.Value{zeros, ie, gr},
		graph.IntAttr("axis", axis), graph.StringAttr("reduction", "add")))
	return nil
}

// y = gather_elements(data, idx; axis): scatter-add g into zeros at the same positions.
func gatherElementsGrad(c *Context) error {
	if !c.Need(0) {
		return nil
	}
	data, idx := c.I(0), c.I(1)
	axis := c.Node.AttrInt("axis", 0)
	idx = c.normIndices(idx, data, axis)
	c.SetGI(0, c.Op("ScatterElements", []*graph.Value{c.ZerosLike(data), idx, c.GO(0)},
		graph.IntAttr("axis", axis), graph.StringAttr("reduction", "add")))
	return nil
}
