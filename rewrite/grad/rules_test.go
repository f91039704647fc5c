package grad

import (
	"testing"

	"github.com/skipgraph/skipgraph/graph"
)

func sc64(x float64) func(b *graph.Builder) *graph.Value {
	return func(b *graph.Builder) *graph.Value { return b.Scalar(graph.Double, x) }
}

func TestFDElementwise(t *testing.T) {
	unary := func(name string, in fdInput) fdCase {
		return fdCase{name: name, inputs: []fdInput{in}, build: op(name)}
	}
	cases := []fdCase{
		{name: "Add/same", inputs: []fdInput{p64("a", 2, 3), p64("b", 2, 3)}, build: op("Add")},
		{name: "Add/bcast-vector", inputs: []fdInput{p64("a", 2, 3, 4), p64("b", 4)}, build: op("Add")},
		{name: "Add/bcast-both", inputs: []fdInput{p64("a", 2, 1, 4), p64("b", 3, 1)}, build: op("Add")},
		{name: "Add/scalar", inputs: []fdInput{p64("a", 2, 3), p64("b")}, build: op("Add")},
		{name: "Add/unknown-rank", inputs: []fdInput{noRank(p64("a", 2, 3, 4)), noRank(p64("b", 3, 1))}, build: op("Add")},
		{name: "Add/bcast-activations", inputs: []fdInput{p64("a", 2, 1, 4), p64("b", 3, 1)}, build: func(b *graph.Builder, in []*graph.Value) *graph.Value {
			// operands without recorded shapes: inference gives them the inputs'
			return b.Op("Add", []*graph.Value{b.Op("Exp", in[:1]), b.Op("Exp", in[1:])})
		}, static: true},
		{name: "Add/symbolic-bcast", inputs: []fdInput{sym(p64("a", 2, 1, 4), "b", "", "s"), sym(p64("c", 2, 3, 1), "b", "", "")}, build: func(b *graph.Builder, in []*graph.Value) *graph.Value {
			return b.Op("Add", []*graph.Value{b.Op("Exp", in[:1]), b.Op("Tanh", in[1:])})
		}, static: true},
		{name: "Mul/symbolic-reshaped", inputs: []fdInput{sym(p64("x", 2, 3, 4), "b", "s", ""), p64("w", 2, 1)}, build: func(b *graph.Builder, in []*graph.Value) *graph.Value {
			// x viewed as [b, s, 2, 2] through a shape computed from x, times w [2, 1]
			zero := b.Const(graph.FromInt64(nil, []int64{0}))
			bsz := b.Op("Unsqueeze", []*graph.Value{b.Op("Gather", []*graph.Value{b.Op("Shape", in[:1]), zero}), b.Int64s(0)})
			v := b.Op("Reshape", []*graph.Value{in[0], b.Op("Concat", []*graph.Value{bsz, b.Int64s(-1, 2, 2)}, graph.IntAttr("axis", 0))})
			return b.Op("Mul", []*graph.Value{v, in[1]})
		}, static: true},
		{name: "Sub/keepdims-mean", inputs: []fdInput{p64("x", 2, 3, 4)}, build: func(b *graph.Builder, in []*graph.Value) *graph.Value {
			// x - mean(x): proved same shape, and reduced over the mean's axes
			e := b.Op("Exp", in)
			m := b.Op("ReduceMean", []*graph.Value{e}, graph.IntsAttr("axes", 1, -1))
			d := b.Op("Sub", []*graph.Value{e, m})
			return b.Op("Mul", []*graph.Value{d, b.Op("Sqrt", []*graph.Value{b.Op("Add", []*graph.Value{m, b.Scalar(graph.Double, 1)})})})
		}},
		{name: "Add/bias-after-matmul", inputs: []fdInput{p64("x", 2, 3, 4), p64("w", 4, 5), p64("c", 5)}, build: func(b *graph.Builder, in []*graph.Value) *graph.Value {
			h := b.Op("Add", []*graph.Value{b.Op("MatMul", in[:2]), in[2]})
			return b.Op("Mul", []*graph.Value{h, b.Op("Sigmoid", []*graph.Value{h})})
		}},
		{name: "Sub/bcast", inputs: []fdInput{p64("a", 2, 3), p64("b", 3)}, build: op("Sub")},
		{name: "Sub/bcast-first", inputs: []fdInput{p64("a", 3), p64("b", 2, 3)}, build: op("Sub")},
		{name: "Mul/same", inputs: []fdInput{p64("a", 2, 3), p64("b", 2, 3)}, build: op("Mul")},
		{name: "Mul/bcast", inputs: []fdInput{p64("a", 2, 3, 4), p64("b", 3, 1)}, build: op("Mul")},
		{name: "Mul/self", inputs: []fdInput{p64("a", 2, 3)}, build: func(b *graph.Builder, in []*graph.Value) *graph.Value {
			return b.Op("Mul", []*graph.Value{in[0], in[0]})
		}},
		{name: "Div/bcast", inputs: []fdInput{p64("a", 2, 3), pos(p64("b", 3))}, build: op("Div")},
		{name: "Div/bcast-num", inputs: []fdInput{p64("a", 3), pos(p64("b", 2, 3))}, build: op("Div")},
		unary("Neg", p64("x", 2, 3)),
		{name: "Pow/square", inputs: []fdInput{p64("x", 2, 3)}, build: func(b *graph.Builder, in []*graph.Value) *graph.Value {
			return b.Op("Pow", []*graph.Value{in[0], b.Scalar(graph.Double, 2)})
		}},
		{name: "Pow/cube-float-exponent", inputs: []fdInput{p64("x", 2, 3)}, build: func(b *graph.Builder, in []*graph.Value) *graph.Value {
			return b.Op("Pow", []*graph.Value{in[0], b.Scalar(graph.Float, 3)})
		}},
		{name: "Pow/both", inputs: []fdInput{pos(p64("x", 2, 3)), p64("y", 3)}, build: op("Pow")},
		unary("Sqrt", pos(p64("x", 2, 3))),
		unary("Exp", p64("x", 2, 3)),
		unary("Log", pos(p64("x", 2, 3))),
		unary("Sigmoid", p64("x", 2, 3)),
		unary("Tanh", p64("x", 2, 3)),
		unary("Relu", p64("x", 3, 4)),
		unary("Abs", p64("x", 3, 4)),
		unary("Reciprocal", pos(p64("x", 3, 4))),
		unary("Identity", p64("x", 3, 4)),
		{name: "Dropout/inference", inputs: []fdInput{p64("x", 3, 4)}, build: op("Dropout")},
		{name: "Cast/double-float-double", inputs: []fdInput{p64("x", 2, 3)}, build: func(b *graph.Builder, in []*graph.Value) *graph.Value {
			// The square keeps the central difference exact, so only float32 rounding remains.
			f := b.Op("Cast", in, graph.IntAttr("to", int64(graph.Float)))
			d := b.Op("Cast", []*graph.Value{b.Op("Mul", []*graph.Value{f, f})}, graph.IntAttr("to", int64(graph.Double)))
			return d
		}, eps: 1e-2, tol: 1e-4},
		{name: "Where/bcast", inputs: []fdInput{in64("c", 2, 3), p64("a", 2, 3), p64("b", 3)}, build: func(b *graph.Builder, in []*graph.Value) *graph.Value {
			cond := b.Op("Greater", []*graph.Value{in[0], b.Scalar(graph.Double, 0)})
			return b.Op("Where", []*graph.Value{cond, in[1], in[2]})
		}},
		{name: "Sum/three-bcast", inputs: []fdInput{p64("a", 2, 3), p64("b", 3), p64("c", 2, 1)}, build: op("Sum")},
		{name: "Max/bcast", inputs: []fdInput{p64("a", 2, 3), p64("b", 3)}, build: op("Max")},
		{name: "Min/bcast", inputs: []fdInput{p64("a", 2, 3), p64("b", 3)}, build: op("Min")},
		{name: "Clip", inputs: []fdInput{p64("x", 3, 4)}, build: func(b *graph.Builder, in []*graph.Value) *graph.Value {
			return b.Op("Clip", []*graph.Value{in[0], b.Scalar(graph.Double, -0.5), b.Scalar(graph.Double, 0.5)})
		}},
		{name: "Expand", inputs: []fdInput{p64("x", 3, 1)}, build: opInts("Expand", [][]int64{{2, 3, 4}})},
		// ORT's CPU Erf kernel is float32 only: eps 1e-3 gives a truncation error ~eps^2 and a
		// rounding error ~1e-7/eps on a loss of order 1, both well under the 2e-3 tolerance.
		{name: "Erf/float32", inputs: []fdInput{p32("x", 3, 4)}, build: op("Erf"), eps: 1e-2, tol: 2e-3},
	}
	runCases(t, cases)
}

func TestFDMatMul(t *testing.T) {
	gemm := func(name string, a, bb fdInput, c *fdInput, attrs ...graph.Attr) fdCase {
		ins := []fdInput{a, bb}
		if c != nil {
			ins = append(ins, *c)
		}
		return fdCase{name: name, inputs: ins, build: op("Gemm", attrs...)}
	}
	c5, c35, c0 := p64("c", 5), p64("c", 3, 5), p64("c")
	ab := []graph.Attr{graph.FloatAttr("alpha", 0.7), graph.FloatAttr("beta", 1.3)}
	cases := []fdCase{
		{name: "MatMul/2x2", inputs: []fdInput{p64("a", 3, 4), p64("b", 4, 5)}, build: op("MatMul")},
		{name: "MatMul/3x2", inputs: []fdInput{p64("a", 2, 3, 4), p64("b", 4, 5)}, build: op("MatMul")},
		{name: "MatMul/2x3", inputs: []fdInput{p64("a", 3, 4), p64("b", 2, 4, 5)}, build: op("MatMul")},
		{name: "MatMul/3x3", inputs: []fdInput{p64("a", 2, 3, 4), p64("b", 2, 4, 5)}, build: op("MatMul")},
		{name: "MatMul/batch-bcast", inputs: []fdInput{p64("a", 2, 1, 3, 4), p64("b", 3, 4, 5)}, build: op("MatMul")},
		{name: "MatMul/1x2", inputs: []fdInput{p64("a", 4), p64("b", 4, 5)}, build: op("MatMul")},
		{name: "MatMul/2x1", inputs: []fdInput{p64("a", 3, 4), p64("b", 4)}, build: op("MatMul")},
		{name: "MatMul/1x1", inputs: []fdInput{p64("a", 4), p64("b", 4)}, build: op("MatMul")},
		{name: "MatMul/3x1", inputs: []fdInput{p64("a", 2, 3, 4), p64("b", 4)}, build: op("MatMul")},
		{name: "MatMul/1x3", inputs: []fdInput{p64("a", 4), p64("b", 2, 4, 5)}, build: op("MatMul")},
		{name: "MatMul/unknown-x2", inputs: []fdInput{noRank(p64("a", 2, 3, 4)), p64("b", 4, 5)}, build: op("MatMul")},
		{name: "MatMul/2x-unknown", inputs: []fdInput{p64("a", 3, 4), noRank(p64("b", 2, 4, 5))}, build: op("MatMul")},
		{name: "MatMul/unknown-both", inputs: []fdInput{noRank(p64("a", 2, 3, 4)), noRank(p64("b", 2, 4, 5))}, build: op("MatMul")},
		{name: "MatMul/unknown-bcast", inputs: []fdInput{noRank(p64("a", 2, 3, 4)), noRank(p64("b", 4, 5))}, build: op("MatMul")},
		gemm("Gemm/plain", p64("a", 3, 4), p64("b", 4, 5), &c5),
		gemm("Gemm/transA", p64("a", 4, 3), p64("b", 4, 5), &c35, append(ab, graph.IntAttr("transA", 1))...),
		gemm("Gemm/transB", p64("a", 3, 4), p64("b", 5, 4), &c5, append(ab, graph.IntAttr("transB", 1))...),
		gemm("Gemm/transAB", p64("a", 4, 3), p64("b", 5, 4), &c0, append(ab, graph.IntAttr("transA", 1), graph.IntAttr("transB", 1))...),
		gemm("Gemm/noC", p64("a", 3, 4), p64("b", 4, 5), nil, ab...),
	}
	runCases(t, cases)
}

func TestFDShape(t *testing.T) {
	x234 := p64("x", 2, 3, 4)
	cases := []fdCase{
		{name: "Reshape", inputs: []fdInput{x234}, build: opInts("Reshape", [][]int64{{6, 4}})},
		{name: "Reshape/zero-minus-one", inputs: []fdInput{x234}, build: opInts("Reshape", [][]int64{{0, -1}})},
		{name: "Flatten", inputs: []fdInput{p64("x", 2, 3, 4, 5)}, build: op("Flatten", graph.IntAttr("axis", 2))},
		{name: "Squeeze", inputs: []fdInput{p64("x", 2, 1, 3)}, build: opInts("Squeeze", [][]int64{{1}})},
		{name: "Unsqueeze", inputs: []fdInput{p64("x", 2, 3)}, build: opInts("Unsqueeze", [][]int64{{0, -1}})},
		{name: "Transpose/perm", inputs: []fdInput{x234}, build: op("Transpose", graph.IntsAttr("perm", 2, 0, 1))},
		{name: "Transpose/default", inputs: []fdInput{x234}, build: op("Transpose")},
		{name: "Concat/axis1", inputs: []fdInput{p64("a", 2, 1, 4), p64("b", 2, 3, 4), p64("c", 2, 2, 4)}, build: op("Concat", graph.IntAttr("axis", 1))},
		{name: "Concat/axis-1", inputs: []fdInput{p64("a", 2, 3), p64("b", 2, 2)}, build: op("Concat", graph.IntAttr("axis", -1))},
		{name: "Split/sizes", inputs: []fdInput{p64("x", 2, 3)}, build: func(b *graph.Builder, in []*graph.Value) *graph.Value {
			outs := b.OpN("Split", "", []*graph.Value{in[0], b.Int64s(1, 2)}, 2, graph.IntAttr("axis", 1))
			// uses both parts, differently
			s0 := b.Op("ReduceSum", []*graph.Value{outs[0], b.Int64s(1)}, graph.IntAttr("keepdims", 1))
			return b.Op("Mul", []*graph.Value{outs[1], s0})
		}},
		{name: "Split/unused-part", inputs: []fdInput{p64("x", 6, 2)}, build: func(b *graph.Builder, in []*graph.Value) *graph.Value {
			outs := b.OpN("Split", "", []*graph.Value{in[0], b.Int64s(2, 2, 2)}, 3, graph.IntAttr("axis", -2))
			return b.Op("Mul", []*graph.Value{outs[0], outs[2]})
		}},
		{name: "Slice/simple", inputs: []fdInput{p64("x", 5, 4)}, build: opInts("Slice", [][]int64{{1}, {3}, {0}})},
		{name: "Slice/negative", inputs: []fdInput{p64("x", 5, 4)}, build: opInts("Slice", [][]int64{{-4, 1}, {-1, 100}, {0, -1}})},
		{name: "Slice/step2", inputs: []fdInput{p64("x", 7, 4)}, build: opInts("Slice", [][]int64{{0}, {7}, {0}, {2}})},
		{name: "Slice/reverse", inputs: []fdInput{p64("x", 5, 4)}, build: opInts("Slice", [][]int64{{-1, 3}, {-100, 0}, {0, 1}, {-1, -2}})},
		{name: "Slice/no-axes", inputs: []fdInput{p64("x", 5, 4)}, build: opInts("Slice", [][]int64{{1, 1}, {4, 3}})},
		{name: "Gather/axis0-table", inputs: []fdInput{p64("w", 5, 3), ints("i", []int64{2, 2}, 0, 2, 2, -1)}, build: op("Gather")},
		{name: "Gather/axis0-scalar", inputs: []fdInput{p64("w", 5, 3), ints("i", nil, 3)}, build: op("Gather")},
		{name: "Gather/axis1", inputs: []fdInput{p64("x", 2, 4, 3), ints("i", []int64{3}, 2, 0, -1)}, build: op("Gather", graph.IntAttr("axis", 1))},
		{name: "Gather/axis1-2d-dup", inputs: []fdInput{p64("x", 2, 4, 3), ints("i", []int64{2, 2}, 1, 1, 3, 0)}, build: op("Gather", graph.IntAttr("axis", 1))},
		{name: "Gather/axis-last-scalar", inputs: []fdInput{p64("x", 2, 4, 3), ints("i", nil, 1)}, build: op("Gather", graph.IntAttr("axis", -1))},
		{name: "GatherElements", inputs: []fdInput{p64("x", 3, 4), ints("i", []int64{3, 2}, 0, 0, 3, -1, 2, 1)}, build: op("GatherElements", graph.IntAttr("axis", 1))},
		{name: "GatherElements/axis0", inputs: []fdInput{p64("x", 3, 4), ints("i", []int64{2, 4}, 0, 1, 2, 0, 2, 2, 1, 1)}, build: op("GatherElements", graph.IntAttr("axis", 0))},
		{name: "Trilu/upper", inputs: []fdInput{p64("x", 2, 4, 4)}, build: op("Trilu")},
		{name: "Trilu/lower-k", inputs: []fdInput{p64("x", 4, 5)}, build: opInts("Trilu", [][]int64{{1}}, graph.IntAttr("upper", 0))},
	}
	// Trilu's k is a scalar.
	cases[len(cases)-1].build = func(b *graph.Builder, in []*graph.Value) *graph.Value {
		k := b.Const(graph.FromInt64(nil, []int64{1}))
		return b.Op("Trilu", []*graph.Value{in[0], k}, graph.IntAttr("upper", 0))
	}
	runCases(t, cases)
}

func TestFDReduce(t *testing.T) {
	x := p64("x", 2, 3, 4)
	keep := func(k int64) graph.Attr { return graph.IntAttr("keepdims", k) }
	axes := func(a ...int64) graph.Attr { return graph.IntsAttr("axes", a...) }
	cases := []fdCase{
		{name: "ReduceSum/axis1", inputs: []fdInput{x}, build: opInts("ReduceSum", [][]int64{{1}}, keep(0))},
		{name: "ReduceSum/keep", inputs: []fdInput{x}, build: opInts("ReduceSum", [][]int64{{0, -1}}, keep(1))},
		{name: "ReduceSum/all", inputs: []fdInput{x}, build: op("ReduceSum", keep(0))},
		{name: "ReduceSum/noop", inputs: []fdInput{x}, build: opInts("ReduceSum", [][]int64{{}}, keep(0), graph.IntAttr("noop_with_empty_axes", 1))},
		{name: "ReduceMean/attr-axes", inputs: []fdInput{x}, build: op("ReduceMean", axes(1, 2), keep(0))},
		{name: "ReduceMean/attr-keep", inputs: []fdInput{x}, build: op("ReduceMean", axes(-1), keep(1))},
		{name: "ReduceMean/all", inputs: []fdInput{x}, build: op("ReduceMean", keep(0))},
		{name: "ReduceMean/opset18", opset: 18, inputs: []fdInput{x}, build: opInts("ReduceMean", [][]int64{{0, 2}}, keep(0))},
		{name: "ReduceMean/unknown-rank", inputs: []fdInput{noRank(x)}, build: op("ReduceMean", axes(1), keep(0))},
		{name: "ReduceL2/keep", inputs: []fdInput{x}, build: op("ReduceL2", axes(-1), keep(1))},
		{name: "ReduceL2/drop", inputs: []fdInput{x}, build: op("ReduceL2", axes(0, 2), keep(0))},
		{name: "ReduceL2/opset18", opset: 18, inputs: []fdInput{x}, build: opInts("ReduceL2", [][]int64{{1}}, keep(0))},
		{name: "ReduceMax/drop", inputs: []fdInput{x}, build: op("ReduceMax", axes(1), keep(0))},
		{name: "ReduceMin/keep", inputs: []fdInput{x}, build: op("ReduceMin", axes(2), keep(1))},
	}
	runCases(t, cases)
}

func TestFDNN(t *testing.T) {
	conv := func(name string, x, w fdInput, bias *fdInput, attrs ...graph.Attr) fdCase {
		ins := []fdInput{x, w}
		if bias != nil {
			ins = append(ins, *bias)
		}
		// ORT's CPU Conv and ConvTranspose kernels are float32 only. The loss is linear in each
		// of x, w and b, so the central difference has no truncation error and eps can be 1;
		// what remains is float32 rounding (~1e-7 relative per term over a few hundred terms).
		return fdCase{name: name, inputs: ins, build: op("Conv", attrs...), eps: 1, tol: 1e-3}
	}
	b4 := p32("b", 4)
	cases := []fdCase{
		{name: "Softmax/last", inputs: []fdInput{p64("x", 2, 3, 4)}, build: op("Softmax")},
		{name: "Softmax/axis1", inputs: []fdInput{p64("x", 2, 3, 4)}, build: op("Softmax", graph.IntAttr("axis", 1))},
		{name: "LogSoftmax/axis1", inputs: []fdInput{p64("x", 3, 5)}, build: op("LogSoftmax", graph.IntAttr("axis", 1))},
		{name: "LogSoftmax/axis-2", inputs: []fdInput{p64("x", 2, 3, 5)}, build: op("LogSoftmax", graph.IntAttr("axis", -2))},
		{name: "LayerNormalization/last", inputs: []fdInput{p64("x", 2, 3, 4), p64("s", 4), p64("b", 4)}, build: op("LayerNormalization", graph.FloatAttr("epsilon", 1e-3))},
		{name: "LayerNormalization/axis1-nobias", inputs: []fdInput{p64("x", 2, 3, 4), p64("s", 3, 4)}, build: op("LayerNormalization", graph.IntAttr("axis", 1))},
		{name: "LayerNormalization/unknown-rank", inputs: []fdInput{noRank(p64("x", 2, 3, 4)), p64("s", 3, 4), p64("b", 3, 4)}, build: op("LayerNormalization", graph.IntAttr("axis", 1))},
		// float32 x: the rule keeps the forward node's Mean and InvStdDev (the float64 cases
		// above recompute them). Central differences in float32: the truncation error grows as
		// eps^2 (2.5e-3 relative at eps 1e-2) and float32 rounding as 1e-7/eps; at eps 3e-3 the
		// two measured 1.2e-4 and 1.3e-4, so the tolerance is 1e-3. The torch reference tests
		// check the same path at 1e-4 on the fixture.
		{name: "LayerNormalization/float32-saved-stats", inputs: []fdInput{p32("x", 2, 3, 4), p32("s", 4), p32("b", 4)}, build: op("LayerNormalization", graph.FloatAttr("epsilon", 1e-3)), eps: 3e-3, tol: 1e-3},
		{name: "LayerNormalization/float32-saved-axis1", inputs: []fdInput{p32("x", 2, 3, 4), p32("s", 3, 4)}, build: op("LayerNormalization", graph.IntAttr("axis", 1)), eps: 3e-3, tol: 1e-3},
		conv("Conv/patch-embed", p32("x", 2, 3, 8, 8), p32("w", 4, 3, 4, 4), nil, graph.IntsAttr("strides", 4, 4), graph.IntsAttr("kernel_shape", 4, 4)),
		conv("Conv/pads-stride-bias", p32("x", 2, 3, 7, 6), p32("w", 4, 3, 3, 3), &b4, graph.IntsAttr("strides", 2, 2), graph.IntsAttr("pads", 1, 0, 1, 2)),
		conv("Conv/dilation", p32("x", 1, 2, 9, 9), p32("w", 4, 2, 3, 2), &b4, graph.IntsAttr("dilations", 2, 3), graph.IntsAttr("strides", 1, 2)),
		conv("Conv/1d", p32("x", 2, 3, 10), p32("w", 4, 3, 3), &b4, graph.IntsAttr("strides", 3)),
		{name: "TopK", inputs: []fdInput{p64("x", 3, 5)}, build: func(b *graph.Builder, in []*graph.Value) *graph.Value {
			return b.OpN("TopK", "", []*graph.Value{in[0], b.Int64s(2)}, 2, graph.IntAttr("axis", 1))[0]
		}},
		{name: "SoftmaxCrossEntropy", inputs: []fdInput{p64("logits", 4, 5), ints("labels", []int64{4}, 1, 0, 4, 1)}, build: func(b *graph.Builder, in []*graph.Value) *graph.Value {
			return SoftmaxCrossEntropy(b, in[0], in[1])
		}},
	}
	runCases(t, cases)
}

// The LayerNormalization rule keeps a float32 forward node's Mean and InvStdDev (adding the
// optional outputs) instead of recomputing them; a failed Backward takes them away again.
func TestLayerNormSavedStats(t *testing.T) {
	build := func(extra bool) (*graph.Model, *graph.Node, *graph.Value, *graph.Value) {
		g := graph.New("ln")
		m := &graph.Model{Graph: g, IRVersion: 8, Opsets: []graph.Opset{{Domain: "", Version: 17}}}
		x, _ := g.AddInput("x", graph.TensorType(graph.Float, 2, 4))
		s, _ := g.AddInput("s", graph.TensorType(graph.Float, 4))
		b := graph.NewBuilder(g, "f")
		y := b.Op("LayerNormalization", []*graph.Value{x, s})
		ln, _ := y.Producer()
		out := b.Op("ReduceSum", []*graph.Value{y}, graph.IntAttr("keepdims", 0))
		if extra { // an op without a gradient rule after the norm: Backward fails
			out = b.Op("ReduceSum", []*graph.Value{b.Op("Mod", []*graph.Value{y, y}, graph.IntAttr("fmod", 1))}, graph.IntAttr("keepdims", 0))
		}
		return m, ln, out, s
	}
	m, ln, loss, s := build(false)
	if _, err := Backward(m, loss, []*graph.Value{s}, Options{}); err != nil {
		t.Fatal(err)
	}
	if ln.NumOutputs() != 3 || ln.Output(1) == nil || ln.Output(2) == nil {
		t.Fatalf("LayerNormalization has %d outputs after Backward, want Y, Mean and InvStdDev", ln.NumOutputs())
	}
	for _, n := range m.Graph.Nodes() {
		if n.OpType == "Sqrt" || n.OpType == "Reciprocal" {
			t.Errorf("the backward pass recomputes the statistics (%s)", n)
		}
	}
	m, ln, loss, s = build(true)
	if _, err := Backward(m, loss, []*graph.Value{s}, Options{}); err == nil {
		t.Fatal("Backward through Mod: no error")
	}
	if ln.NumOutputs() != 1 || m.Graph.Value(ln.Output(0).Name+"_mean") != nil {
		t.Fatalf("after a failed Backward the norm keeps %d outputs", ln.NumOutputs())
	}
	if err := m.Graph.Verify(); err != nil {
		t.Fatal(err)
	}
}
