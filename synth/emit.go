package synth

import (
	"encoding/binary"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"strconv"

	"github.com/skipgraph/skipgraph/graph"
)

// emitter appends nodes to a graph the way torch.onnx names them: a node of type Op in module
// scope S is named S/Op, S/Op_1, S/Op_2 ... and its output S/Op_output_0. Constants the
// exporter's symbolic helpers create outside any scope are Constant_N nodes with outputs named
// onnx::Consumer_N.
type emitter struct {
	g      *graph.Graph
	opset  int
	counts map[string]int
	ids    int // running number for unscoped names, like the exporter's value ids

	anonWeights []*graph.Value // initializers to be named onnx::MatMul_N / onnx::Add_N at the end
	anonKinds   []string
}

func newEmitter(name string, opset int) *emitter {
	return &emitter{g: graph.New(name), opset: opset, counts: map[string]int{}, ids: 100}
}

// name returns the next node name for op in scope.
func (e *emitter) name(scope, op string) string {
	key := scope + "/" + op
	n := e.counts[key]
	e.counts[key] = n + 1
	if n == 0 {
		return key
	}
	return key + "_" + strconv.Itoa(n)
}

// op adds a node in scope and returns its single output.
func (e *emitter) op(scope, op string, ins []*graph.Value, attrs ...graph.Attr) *graph.Value {
	name := e.name(scope, op)
	e.ids++
	return e.g.NewNode(op, "", name, ins, []string{name + "_output_0"}, attrs...).Output(0)
}

// opN adds a node in scope with n outputs and returns them.
func (e *emitter) opN(scope, op string, ins []*graph.Value, n int, attrs ...graph.Attr) []*graph.Value {
	name := e.name(scope, op)
	e.ids++
	outs := make([]string, n)
	for i := range outs {
		outs[i] = name + "_output_" + strconv.Itoa(i)
	}
	return e.g.NewNode(op, "", name, ins, outs, attrs...).Outputs()
}

// opOut adds a node whose output has a given name (a graph output).
func (e *emitter) opOut(scope, op, out string, ins []*graph.Value, attrs ...graph.Attr) *graph.Value {
	name := e.name(scope, op)
	e.ids++
	return e.g.NewNode(op, "", name, ins, []string{out}, attrs...).Output(0)
}

// constant adds a scoped Constant node.
func (e *emitter) constant(scope string, t *graph.Tensor) *graph.Value {
	return e.op(scope, "Constant", nil, graph.TensorAttr("value", t))
}

// anonConst adds an unscoped Constant node whose output is named after its consumer's op type.
func (e *emitter) anonConst(consumer string, t *graph.Tensor) *graph.Value {
	e.ids++
	name := "Constant_" + strconv.Itoa(e.ids)
	out := "onnx::" + consumer + "_" + strconv.Itoa(e.ids)
	return e.g.NewNode("Constant", "", name, nil, []string{out}, graph.TensorAttr("value", t)).Output(0)
}

func (e *emitter) i64(scope string, v ...int64) *graph.Value {
	return e.constant(scope, graph.FromInt64([]int64{int64(len(v))}, v))
}

func (e *emitter) i64s(scope string, v int64) *graph.Value {
	return e.constant(scope, graph.FromInt64(nil, []int64{v}))
}

func (e *emitter) f32s(scope string, v float64) *graph.Value {
	return e.constant(scope, graph.ScalarFloat(graph.Float, v))
}

// unsqueezeAnon is x.unsqueeze(0) as the exporter's helpers emit it for list construction: the
// axes constant is unscoped.
func (e *emitter) unsqueezeAnon(scope string, x *graph.Value) *graph.Value {
	axes := e.anonConst("Unsqueeze", graph.FromInt64([]int64{1}, []int64{0}))
	return e.op(scope, "Unsqueeze", []*graph.Value{x, axes})
}

// unsqueeze is an explicit x.unsqueeze(axis): the axes constant is scoped.
func (e *emitter) unsqueeze(scope string, x *graph.Value, axis int64) *graph.Value {
	axes := e.i64(scope, axis)
	return e.op(scope, "Unsqueeze", []*graph.Value{x, axes})
}

// dimOf is x.shape[i]: Shape, Constant, Gather.
func (e *emitter) dimOf(scope string, x *graph.Value, i int64) *graph.Value {
	sh := e.op(scope, "Shape", []*graph.Value{x})
	idx := e.i64s(scope, i)
	return e.op(scope, "Gather", []*graph.Value{sh, idx}, graph.IntAttr("axis", 0))
}

// shapeList builds a 1-D int64 shape from parts: a *graph.Value is a scalar dimension (unsqueezed
// with an unscoped axes constant when anon, a scoped one otherwise), an int64 a known size.
func (e *emitter) shapeList(scope string, anon bool, parts ...any) *graph.Value {
	ins := make([]*graph.Value, len(parts))
	for i, p := range parts {
		switch p := p.(type) {
		case *graph.Value:
			if anon {
				ins[i] = e.unsqueezeAnon(scope, p)
			} else {
				ins[i] = e.unsqueeze(scope, p, 0)
			}
		case int:
			ins[i] = e.i64(scope, int64(p))
		case int64:
			ins[i] = e.i64(scope, p)
		default:
			panic("synth: bad shape part")
		}
	}
	return e.op(scope, "Concat", ins, graph.IntAttr("axis", 0))
}

// reshape is x.view(parts...) with the shape built as torch does.
func (e *emitter) reshape(scope string, x *graph.Value, parts ...any) *graph.Value {
	sh := e.shapeList(scope, true, parts...)
	return e.op(scope, "Reshape", []*graph.Value{x, sh}, graph.IntAttr("allowzero", 0))
}

// expand is x.expand(parts...): torch replaces -1 entries by the input's size through
// Reshape/Shape/ConstantOfShape/Mul/Equal/Where before Expand.
func (e *emitter) expand(scope string, x *graph.Value, parts ...any) *graph.Value {
	list := e.shapeList(scope, false, parts...)
	flat := e.op(scope, "Reshape", []*graph.Value{list, e.i64(scope, -1)}, graph.IntAttr("allowzero", 0))
	sh := e.op(scope, "Shape", []*graph.Value{flat})
	ones := e.op(scope, "ConstantOfShape", []*graph.Value{sh}, graph.TensorAttr("value", graph.FromInt64([]int64{1}, []int64{1})))
	neg := e.op(scope, "Mul", []*graph.Value{ones, e.i64s(scope, -1)})
	eq := e.op(scope, "Equal", []*graph.Value{flat, neg})
	w := e.op(scope, "Where", []*graph.Value{eq, ones, flat})
	return e.op(scope, "Expand", []*graph.Value{x, w})
}

func (e *emitter) transpose(scope string, x *graph.Value, perm ...int64) *graph.Value {
	return e.op(scope, "Transpose", []*graph.Value{x}, graph.IntsAttr("perm", perm...))
}

// layerNorm is nn.LayerNorm over the last axis: decomposed below opset 17, LayerNormalization
// from 17.
func (e *emitter) layerNorm(scope string, x, w, b *graph.Value) *graph.Value {
	if e.opset >= 17 {
		return e.op(scope, "LayerNormalization", []*graph.Value{x, w, b},
			graph.IntAttr("axis", -1), graph.FloatAttr("epsilon", 1e-5))
	}
	mean := e.reduceMean(scope, x)
	d := e.op(scope, "Sub", []*graph.Value{x, mean})
	sq := e.op(scope, "Pow", []*graph.Value{d, e.f32s(scope, 2)})
	v := e.reduceMean(scope, sq)
	v = e.op(scope, "Add", []*graph.Value{v, e.f32s(scope, 1e-5)})
	s := e.op(scope, "Sqrt", []*graph.Value{v})
	n := e.op(scope, "Div", []*graph.Value{d, s})
	n = e.op(scope, "Mul", []*graph.Value{n, w})
	return e.op(scope, "Add", []*graph.Value{n, b})
}

func (e *emitter) reduceMean(scope string, x *graph.Value) *graph.Value {
	if e.opset >= 18 {
		return e.op(scope, "ReduceMean", []*graph.Value{x, e.i64(scope, -1)})
	}
	return e.op(scope, "ReduceMean", []*graph.Value{x}, graph.IntsAttr("axes", -1))
}

// l2Normalize is x / x.norm(dim=axis, keepdim=True); the Div's output is named out when given.
func (e *emitter) l2Normalize(scope string, x *graph.Value, axis int64, out string) *graph.Value {
	var n *graph.Value
	if e.opset >= 18 {
		n = e.op(scope, "ReduceL2", []*graph.Value{x, e.i64(scope, axis)}, graph.IntAttr("keepdims", 1))
	} else {
		n = e.op(scope, "ReduceL2", []*graph.Value{x}, graph.IntsAttr("axes", axis), graph.IntAttr("keepdims", 1))
	}
	if out != "" {
		return e.opOut(scope, "Div", out, []*graph.Value{x, n})
	}
	return e.op(scope, "Div", []*graph.Value{x, n})
}

// gelu is the MLP activation.
func (e *emitter) gelu(scope, kind string, x *graph.Value) *graph.Value {
	if kind == GeluErf {
		d := e.op(scope, "Div", []*graph.Value{x, e.f32s(scope, math.Sqrt2)})
		r := e.op(scope, "Erf", []*graph.Value{d})
		r = e.op(scope, "Add", []*graph.Value{r, e.f32s(scope, 1)})
		r = e.op(scope, "Mul", []*graph.Value{x, r})
		return e.op(scope, "Mul", []*graph.Value{r, e.f32s(scope, 0.5)})
	}
	m := e.op(scope, "Mul", []*graph.Value{x, e.f32s(scope, 1.702)})
	s := e.op(scope, "Sigmoid", []*graph.Value{m})
	return e.op(scope, "Mul", []*graph.Value{x, s})
}

// linear3 is nn.Linear on a rank-3 input: MatMul with the transposed weight, then Add with the
// bias first, as torch emits it.
func (e *emitter) linear3(scope string, x, wT, b *graph.Value) *graph.Value {
	y := e.op(scope, "MatMul", []*graph.Value{x, wT})
	if b == nil {
		return y
	}
	return e.op(scope, "Add", []*graph.Value{b, y})
}

// eotPool is x[torch.arange(x.shape[0]), idx] on a [N, S, D] tensor, as torch exports advanced
// indexing: a Gather on the flattened tensor at idx + arange * S.
func (e *emitter) eotPool(scope string, x, idx, n *graph.Value) *graph.Value {
	nn := e.op(scope, "Cast", []*graph.Value{n}, graph.IntAttr("to", int64(graph.Int64)))
	r := e.op(scope, "Range", []*graph.Value{e.i64s(scope, 0), nn, e.i64s(scope, 1)})
	sh := e.op(scope, "Shape", []*graph.Value{x})
	s := e.op(scope, "Gather", []*graph.Value{sh, e.i64(scope, 1)}, graph.IntAttr("axis", 0))
	d := e.op(scope, "Gather", []*graph.Value{sh, e.i64(scope, 2)}, graph.IntAttr("axis", 0))
	flat := e.op(scope, "Flatten", []*graph.Value{x}, graph.IntAttr("axis", 2))
	off := e.op(scope, "Mul", []*graph.Value{r, s})
	at := e.op(scope, "Add", []*graph.Value{idx, off})
	g := e.op(scope, "Gather", []*graph.Value{flat, at}, graph.IntAttr("axis", 0))
	ash := e.op(scope, "Shape", []*graph.Value{at})
	c1 := e.op(scope, "Concat", []*graph.Value{e.i64(scope, -1), d}, graph.IntAttr("axis", 0))
	g = e.op(scope, "Reshape", []*graph.Value{g, c1}, graph.IntAttr("allowzero", 0))
	c2 := e.op(scope, "Concat", []*graph.Value{ash, d}, graph.IntAttr("axis", 0))
	return e.op(scope, "Reshape", []*graph.Value{g, c2}, graph.IntAttr("allowzero", 0))
}

// anonWeight adds an initializer that the exporter names by its consumer (onnx::MatMul_N); the
// name is assigned by finishNames once all nodes exist, as the exporter numbers them last.
func (e *emitter) anonWeight(kind string, t *graph.Tensor) *graph.Value {
	v, err := e.g.AddInitializer(e.g.UniqueName("synth.pending."+kind), t)
	if err != nil {
		panic(err)
	}
	e.anonWeights = append(e.anonWeights, v)
	e.anonKinds = append(e.anonKinds, kind)
	return v
}

// namedWeight adds an initializer under its torch name.
func (e *emitter) namedWeight(name string, t *graph.Tensor) *graph.Value {
	v, err := e.g.AddInitializer(name, t)
	if err != nil {
		panic(err)
	}
	return v
}

// finishNames names the anonymous initializers after the last node.
func (e *emitter) finishNames() {
	for i, v := range e.anonWeights {
		e.ids++
		if err := e.g.Rename(v, "onnx::"+e.anonKinds[i]+"_"+strconv.Itoa(e.ids)); err != nil {
			panic(err)
		}
	}
}

// ---------------------------------------------------------------- weights

// weightGen makes lazy, seeded parameter tensors.
type weightGen struct {
	seed int64
}

func (w weightGen) stream(name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(strconv.FormatInt(w.seed, 10)))
	h.Write([]byte{0})
	h.Write([]byte(name))
	return h.Sum64()
}

// normal returns a lazy float32 tensor of N(mean, std) values drawn from the stream of name.
func (w weightGen) normal(name string, dims []int64, mean, std float64) *graph.Tensor {
	n := int64(1)
	for _, d := range dims {
		n *= d
	}
	seed := w.stream(name)
	return graph.NewLazyTensor(graph.Float, dims, 4*n, func() ([]byte, error) {
		r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
		b := make([]byte, 4*n)
		for i := int64(0); i < n; i++ {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(float32(mean+std*r.NormFloat64())))
		}
		return b, nil
	}, nil)
}

// linear returns a weight with fan-in scaling, so activations keep their scale.
func (w weightGen) linear(name string, dims []int64, fanIn int) *graph.Tensor {
	return w.normal(name, dims, 0, 1/math.Sqrt(float64(fanIn)))
}

// small returns N(0, 0.02) values (biases, embeddings).
func (w weightGen) small(name string, dims ...int64) *graph.Tensor {
	return w.normal(name, dims, 0, 0.02)
}

// lnWeight returns 1 + 0.1 N(0, 1) values.
func (w weightGen) lnWeight(name string, dims ...int64) *graph.Tensor {
	return w.normal(name, dims, 1, 0.1)
}
