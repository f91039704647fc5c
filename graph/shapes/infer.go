package shapes

import (
	"fmt"
	"strings"

	"github.com/skipgraph/skipgraph/graph"
)

// MaxData is the largest number of elements of an integer tensor whose values are tracked
// (shape tensors and small index constants).
const MaxData = 64

// Info is what inference knows about a value.
type Info struct {
	// Elem is the element type (graph.Undefined when unknown).
	Elem graph.DType
	// Shape is one expression per axis; nil with Ranked false when the rank is unknown.
	Shape []Expr
	// Ranked reports whether the rank is known.
	Ranked bool
	// Data holds the elements of a small integer tensor (row-major), when every one is known:
	// shape tensors computed by Shape, Gather, Concat, arithmetic ... (partial data
	// propagation). Nil when not known.
	Data []Expr
}

// Rank returns the rank, or -1 when unknown.
func (i *Info) Rank() int {
	if i == nil || !i.Ranked {
		return -1
	}
	return len(i.Shape)
}

// Dim returns axis a (negative counts from the end), or false.
func (i *Info) Dim(a int) (Expr, bool) {
	r := i.Rank()
	if a < 0 {
		a += r
	}
	if r < 0 || a < 0 || a >= r {
		return Expr{}, false
	}
	return i.Shape[a], true
}

// Static returns the dimensions when every one is a known constant.
func (i *Info) Static() ([]int64, bool) {
	if i.Rank() < 0 {
		return nil, false
	}
	return consts(i.Shape)
}

// Ints returns Data when every element is a known constant.
func (i *Info) Ints() ([]int64, bool) {
	if i == nil || i.Data == nil {
		return nil, false
	}
	return consts(i.Data)
}

// consts returns the values of constant expressions, or false when one is not.
func consts(es []Expr) ([]int64, bool) {
	out := make([]int64, len(es))
	for k, e := range es {
		v, ok := e.Const()
		if !ok {
			return nil, false
		}
		out[k] = v
	}
	return out, true
}

// String renders the info as float32[batch,197,768], with the data of shape tensors after it.
func (i *Info) String() string {
	if i == nil {
		return "?"
	}
	s := i.Elem.String()
	if i.Ranked {
		parts := make([]string, len(i.Shape))
		for k, d := range i.Shape {
			parts[k] = d.String()
		}
		s += "[" + strings.Join(parts, ",") + "]"
	}
	if i.Data != nil {
		parts := make([]string, len(i.Data))
		for k, d := range i.Data {
			parts[k] = d.String()
		}
		s += " = {" + strings.Join(parts, ",") + "}"
	}
	return s
}

func ranked(elem graph.DType, dims ...Expr) *Info {
	return &Info{Elem: elem, Shape: append([]Expr{}, dims...), Ranked: true}
}

// numElements returns the product of the dimensions, or false when the rank is unknown.
func (i *Info) numElements() (Expr, bool) {
	if i.Rank() < 0 {
		return Expr{}, false
	}
	return Product(i.Shape...), true
}

// Inferer infers element types, symbolic shapes and the values of shape tensors, lazily and
// memoised per value. A graph input's dimensions are its dim_params (the same name is the same
// size everywhere, as ONNX specifies), its known sizes, or fresh symbols named after it; node
// outputs follow from the rule of their op type. The graph may grow while an Inferer is in use
// (new nodes are inferred when asked about), but a node whose inputs change after it was
// inferred keeps its old answer: make a new Inferer after rewiring.
type Inferer struct {
	info map[*graph.Value]*Info
	// equal maps an expression's key to one proved equal to it in every run that does not
	// fail (from broadcasting: min(s, c) against s is s).
	equal map[string]Expr
}

// New returns an Inferer with nothing inferred yet.
func New() *Inferer {
	return &Inferer{info: map[*graph.Value]*Info{}, equal: map[string]Expr{}}
}

// Infer returns what is known about v (never nil).
func (f *Inferer) Infer(v *graph.Value) *Info {
	if v == nil {
		return &Info{}
	}
	if i, ok := f.info[v]; ok {
		return i
	}
	// Infer the producers that are not yet known first, without recursion (graphs are deep).
	type frame struct {
		n    *graph.Node
		next int
	}
	var stack []frame
	push := func(v *graph.Value) {
		if _, ok := f.info[v]; ok {
			return
		}
		n, _ := v.Producer()
		if n == nil {
			f.info[v] = f.leaf(v)
			return
		}
		for _, o := range n.Outputs() {
			if o != nil {
				f.info[o] = nil // on the stack: a cycle reads unknown
			}
		}
		stack = append(stack, frame{n: n})
	}
	push(v)
	for len(stack) > 0 {
		top := &stack[len(stack)-1]
		if top.next < top.n.NumInputs() {
			in := top.n.Input(top.next)
			top.next++
			if in != nil {
				push(in)
			}
			continue
		}
		n := top.n
		stack = stack[:len(stack)-1]
		f.inferNode(n)
	}
	if i := f.info[v]; i != nil {
		return i
	}
	return &Info{}
}

// Set records what is known about v, replacing what inference found (for callers that know
// more, such as a gradient having its forward value's shape).
func (f *Inferer) Set(v *graph.Value, i *Info) { f.info[v] = i }

// Same reports whether two dimensions are provably equal in every run that does not fail.
func (f *Inferer) Same(a, b Expr) bool {
	return f.canon(a).Equal(f.canon(b))
}

func (f *Inferer) canon(e Expr) Expr {
	for range 8 {
		r, ok := f.equal[e.String()]
		if !ok {
			break
		}
		e = r
	}
	return e
}

// leaf is the info of a graph input or initializer.
func (f *Inferer) leaf(v *graph.Value) *Info {
	if t := ConstTensor(v); t != nil {
		i := ranked(t.DType)
		for _, d := range t.Dims {
			i.Shape = append(i.Shape, Int(d))
		}
		i.Data = tensorData(t)
		return i
	}
	return f.declared(v, nil)
}

// declared is the info from v's recorded type: graph inputs trust dim_params, other values
// only known sizes, and unknown axes get fresh symbols named after v.
func (f *Inferer) declared(v *graph.Value, inferred *Info) *Info {
	i := &Info{Elem: v.Type.Elem}
	if inferred != nil {
		c := *inferred
		i = &c
		if i.Elem == graph.Undefined {
			i.Elem = v.Type.Elem
		}
	}
	if !v.Type.HasShape {
		return i
	}
	input := v.IsGraphInput()
	if !i.Ranked {
		i.Ranked, i.Shape = true, make([]Expr, len(v.Type.Shape))
		for k := range i.Shape {
			i.Shape[k] = unknown(fmt.Sprintf("%s:%d", v.Name, k))
		}
	} else if len(i.Shape) != len(v.Type.Shape) {
		return i // the record disagrees with the op: trust the op
	} else {
		i.Shape = append([]Expr(nil), i.Shape...)
	}
	for k, d := range v.Type.Shape {
		if inferred != nil && !i.Shape[k].Unknown() {
			continue
		}
		switch {
		case d.Known():
			i.Shape[k] = Int(d.Value)
		case d.Param != "" && input:
			i.Shape[k] = Sym(d.Param)
		}
	}
	return i
}

// ConstTensor returns the tensor of an initializer (that is not also an input, which a feed
// may override) or of a Constant node's value attribute, or nil.
func ConstTensor(v *graph.Value) *graph.Tensor {
	if v == nil {
		return nil
	}
	if v.Const != nil {
		if v.IsGraphInput() {
			return nil
		}
		return v.Const
	}
	if n, _ := v.Producer(); n != nil && n.OpType == "Constant" && isStd(n) {
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

// ConstInts returns the values of a constant integer tensor of at most MaxData elements (an
// initializer or a Constant node's value).
func ConstInts(v *graph.Value) ([]int64, bool) {
	t := ConstTensor(v)
	if t == nil {
		return nil, false
	}
	d := tensorData(t)
	if d == nil {
		return nil, false
	}
	out := make([]int64, len(d))
	for i, e := range d {
		out[i], _ = e.Const()
	}
	return out, true
}

func tensorData(t *graph.Tensor) []Expr {
	switch t.DType {
	case graph.Int64, graph.Int32, graph.Int16, graph.Int8, graph.Uint8, graph.Uint16, graph.Uint32, graph.Bool:
	default:
		return nil
	}
	if len(t.Dims) > 1 || t.NumElements() > MaxData {
		return nil
	}
	x, err := t.Int64s()
	if err != nil {
		return nil
	}
	out := make([]Expr, len(x))
	for i, v := range x {
		out[i] = Int(v)
	}
	return out
}

func isStd(n *graph.Node) bool { return n.Domain == "" || n.Domain == "ai.onnx" }

// inferNode infers every output of n from its inputs' infos.
func (f *Inferer) inferNode(n *graph.Node) {
	c := &Context{Node: n, f: f, out: make([]*Info, n.NumOutputs())}
	if r, ok := rules[ruleKey{normDomain(n.Domain), n.OpType}]; ok {
		r(c)
	}
	for k, o := range n.Outputs() {
		if o == nil {
			continue
		}
		i := c.out[k]
		if i == nil {
			i = &Info{}
		}
		cp := *i // rules may hand back an input's info
		i = &cp
		if i.Elem == graph.Undefined && isStd(n) {
			i.Elem = f.dtypeOf(n, k)
		}
		if i.Data != nil && i.Rank() > 1 {
			i.Data = nil
		}
		f.info[o] = f.declared(o, i)
	}
}
