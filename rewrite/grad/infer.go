package grad

import (
	"github.com/skipgraph/skipgraph/graph"
	"slices"
)

// infer is a best-effort, memoised inference of element types, ranks and static shapes. Values
// built by passes usually carry no type, so the rules ask here; an unknown answer is always safe
// (the rules then emit dynamic shape computations).
type infer struct {
	dt map[*graph.Value]graph.DType
	rk map[*graph.Value]int
	rt map[*graph.Value]*graph.Value
}

func newInfer() *infer {
	return &infer{
		dt: map[*graph.Value]graph.DType{},
		rk: map[*graph.Value]int{},
		rt: map[*graph.Value]*graph.Value{},
	}
}

// constTensor returns the tensor of an initializer or of a Constant node's value attribute.
func constTensor(v *graph.Value) *graph.Tensor {
	if v == nil {
		return nil
	}
	if v.Const != nil {
		if v.IsGraphInput() { // an initializer that is also an input may be overridden
			return nil
		}
		return v.Const
	}
	if n, _ := v.Producer(); n != nil && n.OpType == "Constant" && n.Domain == "" {
		if a := n.Attr("value"); a != nil && a.T != nil {
			return a.T
		}
		if a := n.Attr("value_ints"); a != nil {
			return graph.FromInt64([]int64{int64(len(a.Ints))}, a.Ints)
		}
		if a := n.Attr("value_int"); a != nil {
			return graph.FromInt64(nil, []int64{a.I})
		}
	}
	return nil
}

// constInts returns the values of a constant integer tensor.
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

var boolOps = map[string]bool{
	"Equal": true, "Less": true, "Greater": true, "LessOrEqual": true, "GreaterOrEqual": true,
	"Not": true, "And": true, "Or": true, "Xor": true, "IsNaN": true, "IsInf": true,
}

var int64Ops = map[string]bool{
	"Shape": true, "Size": true, "NonZero": true, "ArgMax": true, "ArgMin": true,
}

func (f *infer) dtype(v *graph.Value) graph.DType {
	if v == nil {
		return graph.Undefined
	}
	if v.Type.Elem != graph.Undefined {
		return v.Type.Elem
	}
	if v.Const != nil {
		return v.Const.DType
	}
	if d, ok := f.dt[v]; ok {
		return d
	}
	f.dt[v] = graph.Undefined // guards against cycles
	d := f.dtypeOf(v)
	f.dt[v] = d
	return d
}

func (f *infer) dtypeOf(v *graph.Value) graph.DType {
	n, idx := v.Producer()
	if n == nil {
		return graph.Undefined
	}
	if n.Domain != "" && n.Domain != "ai.onnx" {
		if n.Domain == Domain && n.OpType == StopGradientOp {
			return f.dtype(n.Input(0))
		}
		return graph.Undefined
	}
	switch {
	case boolOps[n.OpType]:
		return graph.Bool
	case int64Ops[n.OpType]:
		return graph.Int64
	}
	switch n.OpType {
	case "Cast", "EyeLike", "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike":
		if a := n.Attr("to"); a != nil {
			return graph.DType(a.I)
		}
		if a := n.Attr("dtype"); a != nil {
			return graph.DType(a.I)
		}
		if n.OpType == "Cast" {
			return graph.Undefined
		}
		if n.OpType == "RandomNormal" || n.OpType == "RandomUniform" {
			return graph.Float
		}
		return f.dtype(n.Input(0))
	case "CastLike":
		return f.dtype(n.Input(1))
	case "Constant":
		if t := constTensor(v); t != nil {
			return t.DType
		}
		if n.Attr("value_float") != nil || n.Attr("value_floats") != nil {
			return graph.Float
		}
		return graph.Undefined
	case "ConstantOfShape":
		if a := n.Attr("value"); a != nil && a.T != nil {
			return a.T.DType
		}
		return graph.Float
	case "Where":
		return f.dtype(n.Input(1))
	case "OneHot":
		return f.dtype(n.Input(2))
	case "TopK":
		if idx == 1 {
			return graph.Int64
		}
	case "Dropout":
		if idx == 1 {
			return graph.Bool
		}
	case "LayerNormalization":
		if idx > 0 && n.AttrInt("stash_type", 1) == 1 {
			return graph.Float
		}
	}
	return f.dtype(n.Input(0))
}

// isFloat reports whether v may carry a gradient: its element type is floating point, or unknown.
func (f *infer) isFloat(v *graph.Value) bool {
	d := f.dtype(v)
	return d == graph.Undefined || d.IsFloat()
}

var sameRankOps = map[string]bool{
	"Identity": true, "Neg": true, "Sqrt": true, "Exp": true, "Log": true, "Erf": true,
	"Sigmoid": true, "Tanh": true, "Relu": true, "Softmax": true, "LogSoftmax": true, "Cast": true,
	"CastLike": true, "Dropout": true, "Trilu": true, "Transpose": true, "Abs": true,
	"Reciprocal": true, "Clip": true, "Conv": true, "ConvTranspose": true, "Slice": true,
	"Split": true, "Not": true, "ScatterElements": true, "ScatterND": true, "Pad": true,
	"Tile": true, "Floor": true, "Ceil": true, "Round": true, "Sign": true, "IsNaN": true,
	"Gelu": true, "LeakyRelu": true, "Softplus": true, "HardSigmoid": true, "Elu": true,
	"Concat": true, "TopK": true, "CumSum": true, "GatherElements": true, "Sin": true, "Cos": true,
}

var broadcastOps = map[string]bool{
	"Add": true, "Sub": true, "Mul": true, "Div": true, "Pow": true, "Equal": true, "Less": true,
	"Greater": true, "LessOrEqual": true, "GreaterOrEqual": true, "And": true, "Or": true,
	"Xor": true, "Where": true, "Max": true, "Min": true, "Sum": true, "Mean": true, "Mod": true,
	"PRelu": true,
}

func (f *infer) rank(v *graph.Value) int {
	if v == nil {
		return -1
	}
	if v.Type.HasShape {
		return len(v.Type.Shape)
	}
	if v.Const != nil {
		return len(v.Const.Dims)
	}
	if r, ok := f.rk[v]; ok {
		return r
	}
	f.rk[v] = -1
	r := f.rankOf(v)
	f.rk[v] = r
	return r
}

func (f *infer) rankOf(v *graph.Value) int {
	n, idx := v.Producer()
	if n == nil {
		return -1
	}
	if n.Domain == Domain && n.OpType == StopGradientOp {
		return f.rank(n.Input(0))
	}
	if n.Domain != "" && n.Domain != "ai.onnx" {
		return -1
	}
	op := n.OpType
	switch {
	case op == "LayerNormalization":
		if idx == 0 {
			return f.rank(n.Input(0))
		}
		return f.rank(n.Input(0)) // stashed statistics keep the rank
	case sameRankOps[op]:
		if op == "Concat" {
			for _, in := range n.Inputs() {
				if r := f.rank(in); r >= 0 {
					return r
				}
			}
			return -1
		}
		return f.rank(n.Input(0))
	case broadcastOps[op]:
		r := 0
		for _, in := range n.Inputs() {
			if in == nil {
				continue
			}
			ri := f.rank(in)
			if ri < 0 {
				return -1
			}
			r = max(r, ri)
		}
		return r
	}
	switch op {
	case "MatMul":
		ra, rb := f.rank(n.Input(0)), f.rank(n.Input(1))
		switch {
		case ra < 0 || rb < 0:
			return -1
		case ra == 1 && rb == 1:
			return 0
		case ra == 1:
			return rb - 1
		case rb == 1:
			return ra - 1
		}
		return max(ra, rb)
	case "Gemm", "Flatten", "NonZero":
		return 2
	case "Shape", "Range":
		return 1
	case "Size":
		return 0
	case "Constant":
		if t := constTensor(v); t != nil {
			return len(t.Dims)
		}
	case "Reshape", "ConstantOfShape":
		return f.length(n.Input(1 - boolInt(op == "ConstantOfShape")))
	case "Expand":
		r, l := f.rank(n.Input(0)), f.length(n.Input(1))
		if r < 0 || l < 0 {
			return -1
		}
		return max(r, l)
	case "Unsqueeze", "Squeeze":
		r := f.rank(n.Input(0))
		axes, ok := axesOf(n, 1)
		if r < 0 || !ok {
			return -1
		}
		if op == "Squeeze" {
			if axes == nil {
				return -1
			}
			return r - len(axes)
		}
		return r + len(axes)
	case "ReduceMean", "ReduceSum", "ReduceL2", "ReduceMax", "ReduceMin", "ReduceProd",
		"ReduceL1", "ReduceLogSumExp", "ReduceSumSquare", "ArgMax", "ArgMin":
		r := f.rank(n.Input(0))
		if r < 0 {
			return -1
		}
		if n.AttrInt("keepdims", 1) == 1 {
			return r
		}
		if op == "ArgMax" || op == "ArgMin" {
			return r - 1
		}
		axes, ok := axesOf(n, 1)
		if !ok {
			return -1
		}
		if len(axes) == 0 {
			if n.AttrInt("noop_with_empty_axes", 0) == 1 {
				return r
			}
			return 0
		}
		return r - len(axes)
	case "Gather":
		ra, ri := f.rank(n.Input(0)), f.rank(n.Input(1))
		if ra < 0 || ri < 0 {
			return -1
		}
		return ra - 1 + ri
	case "OneHot":
		if r := f.rank(n.Input(0)); r >= 0 {
			return r + 1
		}
	}
	return -1
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

// length returns the number of elements of a 1-D integer tensor (a shape), or -1.
func (f *infer) length(v *graph.Value) int {
	if v == nil {
		return -1
	}
	if v.Type.HasShape && len(v.Type.Shape) == 1 && v.Type.Shape[0].Known() {
		return int(v.Type.Shape[0].Value)
	}
	if t := constTensor(v); t != nil {
		if len(t.Dims) == 1 {
			return int(t.Dims[0])
		}
		return -1
	}
	n, _ := v.Producer()
	if n == nil || (n.Domain != "" && n.Domain != "ai.onnx") {
		return -1
	}
	switch n.OpType {
	case "Shape":
		r := f.rank(n.Input(0))
		if r < 0 {
			return -1
		}
		start, end := n.AttrInt("start", 0), n.AttrInt("end", int64(r))
		if start < 0 {
			start += int64(r)
		}
		if end < 0 {
			end += int64(r)
		}
		start, end = min(max(start, 0), int64(r)), min(max(end, 0), int64(r))
		return int(max(end-start, 0))
	case "Concat":
		s := 0
		for _, in := range n.Inputs() {
			l := f.length(in)
			if l < 0 {
				return -1
			}
			s += l
		}
		return s
	case "Unsqueeze":
		if f.rank(n.Input(0)) == 0 {
			return 1
		}
	case "Cast", "Identity", "Abs", "Neg":
		return f.length(n.Input(0))
	case "Add", "Sub", "Mul", "Div", "Max", "Min", "Where", "Equal", "Less", "Greater", "Not",
		"And", "Or", "Mod":
		// 1-D operands broadcast: a known length other than 1 is the result's.
		l := -1
		for _, in := range n.Inputs() {
			if in == nil || f.rank(in) == 0 {
				continue
			}
			if li := f.length(in); li > 1 || (li == 1 && l < 0) {
				l = li
			}
		}
		return l
	case "Reshape":
		if s, ok := constInts(n.Input(1)); ok && len(s) == 1 {
			if s[0] >= 0 {
				return int(s[0])
			}
			if f.rank(n.Input(0)) == 1 {
				return f.length(n.Input(0))
			}
		}
	case "ConstantOfShape":
		if s, ok := constInts(n.Input(0)); ok && len(s) == 1 {
			return int(s[0])
		}
		if p, _ := n.Input(0).Producer(); p != nil && p.OpType == "Shape" && f.rank(p.Input(0)) == 1 {
			return f.length(p.Input(0))
		}
	case "Gather":
		if f.rank(n.Input(0)) == 1 && f.rank(n.Input(1)) == 1 {
			return f.length(n.Input(1))
		}
	}
	return -1
}

// staticShape returns the static shape of v when every dimension is known.
func (f *infer) staticShape(v *graph.Value) ([]int64, bool) {
	if v == nil {
		return nil, false
	}
	if dims, ok := v.Type.StaticDims(); ok {
		return dims, true
	}
	if t := constTensor(v); t != nil {
		return t.Dims, true
	}
	return nil, false
}

// Shape equivalence. Values built by exporters rarely carry shapes, yet many elementwise
// operands provably have the shape of the result: x - mean(x, keepdims), x * sigmoid(1.702 x),
// d / sqrt(var + eps) ... Proving it lets the rules skip the dynamic broadcast reduction.

var shapeKeepingOps = map[string]bool{
	"Identity": true, "Neg": true, "Sqrt": true, "Exp": true, "Log": true, "Erf": true,
	"Sigmoid": true, "Tanh": true, "Relu": true, "Softmax": true, "LogSoftmax": true, "Cast": true,
	"CastLike": true, "Dropout": true, "Trilu": true, "Abs": true, "Reciprocal": true, "Clip": true,
	"Sign": true, "Floor": true, "Ceil": true, "Round": true, "Gelu": true, "Softplus": true,
	"LeakyRelu": true, "Elu": true, "HardSigmoid": true, "Not": true, "IsNaN": true, "Sin": true,
	"Cos": true, "LayerNormalization": true, "StopGradient": true,
}

var elementwiseOps = map[string]bool{
	"Add": true, "Sub": true, "Mul": true, "Div": true, "Pow": true, "Max": true, "Min": true,
	"Sum": true, "Equal": true, "Less": true, "Greater": true, "LessOrEqual": true,
	"GreaterOrEqual": true, "And": true, "Or": true,
}

var keepdimsReductions = map[string]bool{
	"ReduceMean": true, "ReduceSum": true, "ReduceMax": true, "ReduceMin": true, "ReduceL2": true,
	"ReduceProd": true, "ReduceL1": true, "ReduceSumSquare": true, "ReduceLogSumExp": true,
}

// root follows producers that provably keep the shape back to the first value whose shape is
// not proved equal to its operands'. Two values with the same root have the same shape.
func (f *infer) root(v *graph.Value) *graph.Value {
	if r, ok := f.rt[v]; ok {
		return r
	}
	var path []*graph.Value
	r := v
	for {
		if known, ok := f.rt[r]; ok {
			r = known
			break
		}
		path = append(path, r)
		next := f.rootStep(r)
		if next == nil {
			break
		}
		r = next
	}
	for _, p := range path {
		f.rt[p] = r
	}
	return r
}

// rootStep returns the operand whose shape v provably has, or nil.
func (f *infer) rootStep(v *graph.Value) *graph.Value {
	n, idx := v.Producer()
	if n == nil || idx != 0 || (n.Domain != "" && n.Domain != "ai.onnx" && n.Domain != Domain) {
		return nil
	}
	switch {
	case shapeKeepingOps[n.OpType] && n.Input(0) != nil:
		return n.Input(0)
	case elementwiseOps[n.OpType]:
		return f.dominant(n)
	}
	return nil
}

// dominant returns the input of an elementwise node into whose shape every other input
// broadcasts without changing it (so the output has that input's shape), or nil.
func (f *infer) dominant(n *graph.Node) *graph.Value {
	ins := n.Inputs()
	for i, a := range ins {
		if a == nil || f.rank(a) == 0 {
			continue
		}
		ok := true
		for j, b := range ins {
			if j != i && b != nil && !f.fitsInto(b, a) {
				ok = false
				break
			}
		}
		if ok {
			return a
		}
	}
	return nil
}

// fitsInto reports whether b provably broadcasts into a's shape without changing it.
func (f *infer) fitsInto(b, a *graph.Value) bool {
	if f.rank(b) == 0 {
		return true
	}
	if dims, ok := f.staticShape(b); ok {
		ones := true
		for _, d := range dims {
			ones = ones && d == 1
		}
		if ones && f.rank(a) >= len(dims) {
			return true
		}
	}
	if dims, ok := f.staticShape(b); ok && f.rank(a) >= len(dims) {
		// a static operand fits when each of its axes is 1 or a's size there
		fits := true
		for k := 1; k <= len(dims) && fits; k++ {
			d := dims[len(dims)-k]
			fits = d == 1 || f.dimFromEnd(a, k, 0) == d
		}
		if fits {
			return true
		}
	}
	rb, ra := f.root(b), f.root(a)
	if rb == ra {
		return true
	}
	_, ok := f.reduction(rb, ra)
	return ok
}

// reduction reports whether r is the output of a keepdims reduction of a value whose root is
// ra, and returns the reduced axes (empty for all).
func (f *infer) reduction(r, ra *graph.Value) ([]int64, bool) {
	n, _ := r.Producer()
	if n == nil || n.Domain != "" || !keepdimsReductions[n.OpType] || n.AttrInt("keepdims", 1) != 1 {
		return nil, false
	}
	if f.root(n.Input(0)) != ra {
		return nil, false
	}
	axes, ok := axesOf(n, 1)
	if !ok {
		return nil, false
	}
	if len(axes) == 0 && n.AttrInt("noop_with_empty_axes", 0) == 1 {
		return nil, false // not a reduction at all; root() would not have stopped here
	}
	return axes, true
}

// sameShape reports whether a and b provably have the same shape.
func (f *infer) sameShape(a, b *graph.Value) bool {
	if a == nil || b == nil {
		return false
	}
	if a == b {
		return true
	}
	if sa, ok := f.staticShape(a); ok {
		if sb, ok := f.staticShape(b); ok {
			return slices.Equal(sa, sb)
		}
	}
	return f.root(a) == f.root(b)
}

// reducedFrom reports whether x provably has the shape of a keepdims reduction of a value
// shaped like like, and returns the reduced axes (empty: all).
func (f *infer) reducedFrom(x, like *graph.Value) ([]int64, bool) {
	if x == nil || like == nil {
		return nil, false
	}
	return f.reduction(f.root(x), f.root(like))
}

// dimFromEnd returns the static size of axis -k of v when it can be proved, or -1.
func (f *infer) dimFromEnd(v *graph.Value, k, depth int) int64 {
	if v == nil || depth > 64 {
		return -1
	}
	if v.Type.HasShape {
		if r := len(v.Type.Shape); k <= r && v.Type.Shape[r-k].Known() {
			return v.Type.Shape[r-k].Value
		}
	}
	if dims, ok := f.staticShape(v); ok {
		if k <= len(dims) {
			return dims[len(dims)-k]
		}
		return -1
	}
	n, idx := v.Producer()
	if n == nil || idx != 0 || n.Domain != "" {
		return -1
	}
	switch {
	case shapeKeepingOps[n.OpType]:
		return f.dimFromEnd(n.Input(0), k, depth+1)
	case elementwiseOps[n.OpType]:
		// a known size other than 1 on any operand is the result's size
		out := int64(-1)
		for _, in := range n.Inputs() {
			if in == nil || f.rank(in) < k && f.rank(in) >= 0 {
				continue
			}
			if d := f.dimFromEnd(in, k, depth+1); d > 1 || (d == 1 && out < 0) {
				out = d
			}
		}
		if out == 1 {
			return -1 // another operand of unknown size may broadcast it
		}
		return out
	case n.OpType == "MatMul":
		a, b := n.Input(0), n.Input(1)
		switch {
		case k == 1 && f.rank(b) >= 2:
			return f.dimFromEnd(b, 1, depth+1)
		case k == 2 && f.rank(a) >= 2 && f.rank(b) >= 2:
			return f.dimFromEnd(a, 2, depth+1)
		}
	case n.OpType == "Gemm" && k == 1:
		if n.AttrInt("transB", 0) == 1 {
			return f.dimFromEnd(n.Input(1), 2, depth+1)
		}
		return f.dimFromEnd(n.Input(1), 1, depth+1)
	}
	return -1
}
