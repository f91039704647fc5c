package grad

import (
	"github.com/skipgraph/skipgraph/graph"
)

// Neural-network operators.

func init() {
	// y = softmax(x) along axis (opset >= 13 semantics): dx = y * (g - sum(g * y, axis)).
	Register("Softmax", func(c *Context) error {
		g, y := c.GO(0), c.O(0)
		s := c.SumAxes(c.Mul(g, y), true, c.Node.AttrInt("axis", -1))
		c.SetGI(0, c.Mul(y, c.Sub(g, s)))
		return nil
	})
	// y = log_softmax(x) along axis: dx = g - exp(y) * sum(g, axis).
	Register("LogSoftmax", func(c *Context) error {
		g, y := c.GO(0), c.O(0)
		s := c.SumAxes(g, true, c.Node.AttrInt("axis", -1))
		c.SetGI(0, c.Sub(g, c.Mul(c.Op("Exp", []*graph.Value{y}), s)))
		return nil
	})
	Register("LayerNormalization", layerNormGrad)
	Register("Conv", convGrad)
	// values, indices = topk(x, k; axis): scatter the values' gradient back to the indices.
	Register("TopK", func(c *Context) error {
		if c.GO(0) == nil {
			return nil
		}
		x := c.I(0)
		c.SetGI(0, c.Op("ScatterElements", []*graph.Value{c.ZerosLike(x), c.O(1), c.GO(0)},
			graph.IntAttr("axis", c.Node.AttrInt("axis", -1)), graph.StringAttr("reduction", "add")))
		return nil
	})
}

// layerNormGrad differentiates y = (x - mean) * rstd * scale + bias over the axes from axis to
// the last, with rstd = 1/sqrt(var + epsilon). For float32 x the forward node's own Mean and
// InvStdDev outputs are kept (made when it left them out); otherwise the two are recomputed.
// With xhat = (x - mean) * rstd and h = g * scale:
//
//	dscale = sum over the other axes of g * xhat
//	dbias  = sum over the other axes of g
//	dx     = rstd * (h - mean(h) - xhat * mean(h * xhat))
func layerNormGrad(c *Context) error {
	if c.GO(1) != nil || c.GO(2) != nil {
		return c.Errorf("gradients through the Mean and InvStdDev outputs are not supported")
	}
	x, scale, g, y := c.I(0), c.I(1), c.GO(0), c.O(0)
	axis := c.Node.AttrInt("axis", -1)
	eps := float64(c.Node.AttrFloat("epsilon", 1e-5))
	var axes *graph.Value
	switch r := c.Rank(x); {
	case axis < 0:
		var a []int64
		for i := axis; i < 0; i++ {
			a = append(a, i)
		}
		axes = c.Ints(a...)
	case r >= 0:
		var a []int64
		for i := axis; i < int64(r); i++ {
			a = append(a, i)
		}
		axes = c.Ints(a...)
	default:
		rank := c.Op("Size", []*graph.Value{c.Shape(x)})
		axes = c.Op("Range", []*graph.Value{c.B.Const(graph.FromInt64(nil, []int64{axis})), rank,
			c.B.Const(graph.FromInt64(nil, []int64{1}))})
	}
	sum := func(v *graph.Value) *graph.Value { return c.SumAxesV(v, axes, true) }
	// count is the number of elements each mean is over: |x| / |a reduced value|.
	count := func(reduced *graph.Value) *graph.Value {
		return c.Op("CastLike", []*graph.Value{c.Div(c.Op("Size", []*graph.Value{x}), c.Op("Size", []*graph.Value{reduced})), x})
	}
	var n, xc, rstd *graph.Value
	if c.Node.AttrInt("stash_type", 1) == 1 && c.DType(x) == graph.Float {
		mu, err := c.Saved(1, "mean", graph.TensorType(graph.Float))
		if err != nil {
			return err
		}
		if rstd, err = c.Saved(2, "inv_std_dev", graph.TensorType(graph.Float)); err != nil {
			return err
		}
		n, xc = count(mu), c.Sub(x, mu)
	} else {
		sx := sum(x)
		n = count(sx)
		xc = c.Sub(x, c.Div(sx, n))
		variance := c.Div(sum(c.Mul(xc, xc)), n)
		rstd = c.Op("Reciprocal", []*graph.Value{c.Op("Sqrt", []*graph.Value{c.Add(variance, c.Scalar(eps, x))})})
	}
	mean := func(v *graph.Value) *graph.Value { return c.Div(sum(v), n) }
	xhat := c.Mul(xc, rstd)
	if c.Need(1) {
		c.SetGI(1, c.ReduceTo(c.Mul(g, xhat), scale, y))
	}
	if c.Need(2) {
		c.SetGI(2, c.ReduceTo(g, c.I(2), y))
	}
	if c.Need(0) {
		h := c.Mul(g, scale)
		inner := c.Sub(c.Sub(h, mean(h)), c.Mul(xhat, mean(c.Mul(h, xhat))))
		c.SetGI(0, c.Mul(rstd, inner))
	}
	return nil
}

// convGrad differentiates y = conv(x, w) + b for group 1 with any strides, dilations and
// explicit pads:
//
//	db = sum of g over every axis but the channels
//	dw = conv(x^T, g^T) with strides and dilations swapped, where ^T swaps the batch and channel
//	     axes, cropped to the kernel size
//	dx = conv_transpose(g, w) without the trailing pads, padded with zeros or cropped at the
//	     end to x's size
func convGrad(c *Context) error {
	x, w, g := c.I(0), c.I(1), c.GO(0)
	if grp := c.Node.AttrInt("group", 1); grp != 1 {
		return c.Errorf("group %d is not supported (only group 1)", grp)
	}
	switch ap := c.Node.AttrString("auto_pad", "NOTSET"); ap {
	case "NOTSET", "VALID":
	default:
		return c.Errorf("auto_pad %s is not supported (use explicit pads)", ap)
	}
	r := c.Rank(w)
	if r < 0 {
		r = c.Rank(x)
	}
	if r < 3 {
		return c.Errorf("the rank of the weight is unknown")
	}
	k := r - 2
	ones := func() []int64 {
		v := make([]int64, k)
		for i := range v {
			v[i] = 1
		}
		return v
	}
	strides, ok := c.Node.AttrInts("strides")
	if !ok {
		strides = ones()
	}
	dilations, ok := c.Node.AttrInts("dilations")
	if !ok {
		dilations = ones()
	}
	pads, ok := c.Node.AttrInts("pads")
	if !ok || c.Node.AttrString("auto_pad", "NOTSET") == "VALID" {
		pads = make([]int64, 2*k)
	}
	swap := make([]int64, r)
	for i := range swap {
		swap[i] = int64(i)
	}
	swap[0], swap[1] = 1, 0
	if c.Need(2) {
		axes := []int64{0}
		for i := 2; i < r; i++ {
			axes = append(axes, int64(i))
		}
		c.SetGI(2, c.SumAxes(g, false, axes...))
	}
	if c.Need(1) {
		full := c.Op("Conv", []*graph.Value{c.Transpose(x, swap...), c.Transpose(g, swap...)},
			graph.IntsAttr("strides", dilations...), graph.IntsAttr("dilations", strides...),
			graph.IntsAttr("pads", pads...))
		full = c.Transpose(full, swap...)
		spatial := make([]int64, k)
		zeros := make([]int64, k)
		for i := range spatial {
			spatial[i] = int64(i + 2)
		}
		kernel := c.Op("Shape", []*graph.Value{w}, graph.IntAttr("start", 2))
		if dims, ok := c.bw.inf.staticShape(w); ok {
			kernel = c.Ints(dims[2:]...)
		}
		c.SetGI(1, c.Op("Slice", []*graph.Value{full, c.Ints(zeros...), kernel, c.Ints(spatial...)}))
	}
	if c.Need(0) {
		// ConvTranspose crops only the leading pads: its output then starts at x's first
		// element and ends where the last window ended, which may fall short of x's end (rows
		// no window reached: zero gradient) or run into the trailing pads (cropped).
		lead := append(append([]int64(nil), pads[:k]...), make([]int64, k)...)
		yt := c.Op("ConvTranspose", []*graph.Value{g, w}, graph.IntsAttr("strides", strides...),
			graph.IntsAttr("dilations", dilations...), graph.IntsAttr("pads", lead...))
		sx := c.Shape(x)
		short := c.Op("Max", []*graph.Value{c.Sub(sx, c.Shape(yt)), c.Ints(0)})
		padv := c.Op("Concat", []*graph.Value{c.Ints(make([]int64, r)...), short}, graph.IntAttr("axis", 0))
		padded := c.Op("Pad", []*graph.Value{yt, padv})
		c.SetGI(0, c.Op("Slice", []*graph.Value{padded, c.Ints(make([]int64, r)...), sx}))
	}
	return nil
}
