package shapes

import (
	"fmt"

	"github.com/skipgraph/skipgraph/graph"
)

// Rule infers the outputs of one node from its inputs, through a Context. A rule that cannot
// say anything about an output leaves it unset (unknown).
type Rule func(c *Context)

type ruleKey struct{ domain, op string }

var rules = map[ruleKey]Rule{}

func normDomain(d string) string {
	if d == "ai.onnx" {
		return ""
	}
	return d
}

// Register adds the rule of an operator of the given domain ("" for ai.onnx), replacing any
// rule it had. Packages that define their own operators register them here.
func Register(domain, op string, r Rule) { rules[ruleKey{normDomain(domain), op}] = r }

// Passthrough is the rule of an operator whose one output is its first input.
func Passthrough(c *Context) { c.Set(0, c.In(0)) }

// Context is what a rule sees: the node, its inputs' infos, and where to put its outputs'.
type Context struct {
	// Node is the node being inferred.
	Node *graph.Node
	f    *Inferer
	out  []*Info
}

// In returns what is known about input i (an empty Info when absent or unknown).
func (c *Context) In(i int) *Info {
	v := c.Node.Input(i)
	if v == nil {
		return &Info{}
	}
	if in := c.f.info[v]; in != nil {
		return in
	}
	return &Info{}
}

// Has reports whether input i is present.
func (c *Context) Has(i int) bool { return c.Node.Input(i) != nil }

// Set records output k's info.
func (c *Context) Set(k int, i *Info) {
	if k < len(c.out) {
		c.out[k] = i
	}
}

// Fresh returns a fresh symbol for axis a of output k: a size nothing proves.
func (c *Context) Fresh(k, a int) Expr {
	name := c.Node.OpType
	if o := c.Node.Output(k); o != nil {
		name = o.Name
	}
	return unknown(fmt.Sprintf("%s:%d", name, a))
}

// freshShape returns r fresh dimensions for output k.
func (c *Context) freshShape(k, r int) []Expr {
	s := make([]Expr, r)
	for a := range s {
		s[a] = c.Fresh(k, a)
	}
	return s
}

// ints returns the constant values of input i (data propagation included).
func (c *Context) ints(i int) ([]int64, bool) { return c.In(i).Ints() }

// axes returns a node's axes from attribute name or, when absent, from input i. present is
// false when neither is given; ok is false when they are given but not known.
func (c *Context) axes(name string, i int) (axes []int64, present, ok bool) {
	if a, has := c.Node.AttrInts(name); has {
		return a, true, true
	}
	if !c.Has(i) {
		return nil, false, true
	}
	a, ok := c.ints(i)
	return a, true, ok
}

func normAxis(a int64, r int) (int, bool) {
	if a < 0 {
		a += int64(r)
	}
	return int(a), a >= 0 && a < int64(r)
}

// Broadcast returns the numpy broadcast of shapes, proving sizes equal where a valid run
// needs them to be; ok is false when a rank is unknown.
func (f *Inferer) Broadcast(shapes ...*Info) ([]Expr, bool) {
	r := 0
	for _, s := range shapes {
		if s.Rank() < 0 {
			return nil, false
		}
		r = max(r, s.Rank())
	}
	out := make([]Expr, r)
	for a := range out {
		out[a] = Int(1)
	}
	for _, s := range shapes {
		off := r - s.Rank()
		for a, d := range s.Shape {
			out[off+a] = f.bcastDim(out[off+a], d)
		}
	}
	return out, true
}

// bcastDim is the broadcast of two sizes.
func (f *Inferer) bcastDim(a, b Expr) Expr {
	a, b = f.canon(a), f.canon(b)
	switch {
	case a.Equal(b), b.IsConst(1):
		return a
	case a.IsConst(1):
		return b
	}
	if _, ok := a.Const(); ok {
		return a // b is 1 or a
	}
	if _, ok := b.Const(); ok {
		return b
	}
	// min(x, c) against x: min(x, c) is 1 only when x is, so a valid run has them equal.
	if x, ok := a.minOf(); ok && f.Same(x, b) {
		f.equal[a.String()] = b
		return b
	}
	if x, ok := b.minOf(); ok && f.Same(x, a) {
		f.equal[b.String()] = a
		return a
	}
	return Max(a, b)
}

// elementwise data: op applied to each pair of elements, broadcasting one-element operands.
func zipData(a, b []Expr, op func(x, y Expr) (Expr, bool)) []Expr {
	if a == nil || b == nil {
		return nil
	}
	n := max(len(a), len(b))
	if (len(a) != n && len(a) != 1) || (len(b) != n && len(b) != 1) {
		return nil
	}
	out := make([]Expr, n)
	for i := range out {
		x, y := a[min(i, len(a)-1)], b[min(i, len(b)-1)]
		r, ok := op(x, y)
		if !ok {
			return nil
		}
		out[i] = r
	}
	return out
}

func boolExpr(b bool) Expr {
	if b {
		return Int(1)
	}
	return Int(0)
}

// compare decides x op y for sizes, or false.
func compare(op string, x, y Expr) (Expr, bool) {
	if a, ok := x.Const(); ok {
		if b, ok := y.Const(); ok {
			switch op {
			case "Equal":
				return boolExpr(a == b), true
			case "Less":
				return boolExpr(a < b), true
			case "Greater":
				return boolExpr(a > b), true
			case "LessOrEqual":
				return boolExpr(a <= b), true
			case "GreaterOrEqual":
				return boolExpr(a >= b), true
			}
			return Expr{}, false
		}
	}
	if op == "Equal" {
		if x.Equal(y) {
			return Int(1), true
		}
		// a size (non-negative) against a negative constant, e.g. the -1 of expand(b, 1, -1)
		if b, ok := y.Const(); ok && b < 0 && x.nonNegative() {
			return Int(0), true
		}
		if a, ok := x.Const(); ok && a < 0 && y.nonNegative() {
			return Int(0), true
		}
	}
	return Expr{}, false
}

var arith = map[string]func(x, y Expr) (Expr, bool){
	"Add": func(x, y Expr) (Expr, bool) { return Add(x, y), true },
	"Sub": func(x, y Expr) (Expr, bool) { return Sub(x, y), true },
	"Mul": func(x, y Expr) (Expr, bool) { return Mul(x, y), true },
	"Div": func(x, y Expr) (Expr, bool) {
		if y.IsConst(0) {
			return Expr{}, false
		}
		return Div(x, y), true
	},
	"Max": func(x, y Expr) (Expr, bool) { return Max(x, y), true },
	"Min": func(x, y Expr) (Expr, bool) { return Min(x, y), true },
}

func init() {
	for _, op := range []string{"Identity", "Neg", "Abs", "Sqrt", "Exp", "Log", "Erf", "Sigmoid",
		"Tanh", "Relu", "Reciprocal", "Floor", "Ceil", "Round", "Sign", "Not", "IsNaN", "IsInf",
		"Sin", "Cos", "Softmax", "LogSoftmax", "Cast", "CastLike", "Clip", "Gelu", "LeakyRelu",
		"Softplus", "Elu", "HardSigmoid", "Trilu", "CumSum", "EyeLike", "RandomNormalLike",
		"RandomUniformLike", "Bernoulli", "ScatterElements", "ScatterND", "Celu", "Selu",
		"Softsign", "HardSwish", "Mish", "Tan", "Atan", "Asin", "Acos", "Sinh", "Cosh"} {
		Register("", op, unaryRule(op))
	}
	for _, op := range []string{"Add", "Sub", "Mul", "Div", "Pow", "Mod", "Equal", "Less",
		"Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor", "Where", "Max", "Min",
		"Sum", "Mean", "PRelu", "BitShift"} {
		Register("", op, broadcastRule(op))
	}
	Register("", "Dropout", func(c *Context) {
		x := c.In(0)
		c.Set(0, &Info{Shape: x.Shape, Ranked: x.Ranked})
		c.Set(1, &Info{Elem: graph.Bool, Shape: x.Shape, Ranked: x.Ranked})
	})
	Register("", "Constant", func(c *Context) {
		if t := ConstTensor(c.Node.Output(0)); t != nil {
			i := ranked(t.DType)
			for _, d := range t.Dims {
				i.Shape = append(i.Shape, Int(d))
			}
			i.Data = tensorData(t)
			c.Set(0, i)
			return
		}
		if c.Node.Attr("value_float") != nil {
			c.Set(0, ranked(graph.Float))
		}
		if a := c.Node.Attr("value_floats"); a != nil {
			c.Set(0, ranked(graph.Float, Int(int64(len(a.Floats)))))
		}
	})
	Register("", "Shape", shapeRule)
	Register("", "Size", func(c *Context) {
		i := ranked(graph.Int64)
		if n, ok := c.In(0).numElements(); ok {
			i.Data = []Expr{n}
		}
		c.Set(0, i)
	})
}

func unaryRule(op string) Rule {
	return func(c *Context) {
		x := c.In(0)
		i := &Info{Shape: x.Shape, Ranked: x.Ranked}
		switch op {
		case "Identity", "Neg", "Abs", "Cast":
			if x.Data != nil && (op != "Cast" || isIntType(graph.DType(c.Node.AttrInt("to", 0)))) {
				i.Data = x.Data
				if op == "Neg" {
					i.Data = mapData(x.Data, Neg)
				}
				if op == "Abs" {
					i.Data = nil
					if v, ok := x.Ints(); ok {
						for _, e := range v {
							i.Data = append(i.Data, Int(max(e, -e)))
						}
					}
				}
			}
		}
		c.Set(0, i)
	}
}

func isIntType(d graph.DType) bool {
	switch d {
	case graph.Int64, graph.Int32, graph.Int16, graph.Int8, graph.Uint8, graph.Uint16, graph.Uint32, graph.Uint64, graph.Bool:
		return true
	}
	return false
}

func mapData(d []Expr, fn func(Expr) Expr) []Expr {
	out := make([]Expr, len(d))
	for i, e := range d {
		out[i] = fn(e)
	}
	return out
}

func broadcastRule(op string) Rule {
	return func(c *Context) {
		var ins []*Info
		for k := range c.Node.NumInputs() {
			if c.Has(k) {
				ins = append(ins, c.In(k))
			}
		}
		i := &Info{}
		if s, ok := c.f.Broadcast(ins...); ok {
			i.Shape, i.Ranked = s, true
		}
		if i.Rank() <= 1 && len(ins) >= 2 {
			switch op {
			case "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual":
				i.Data = zipData(ins[0].Data, ins[1].Data, func(x, y Expr) (Expr, bool) { return compare(op, x, y) })
			case "Where":
				if len(ins) == 3 {
					if cond, ok := ins[0].Ints(); ok && ins[1].Data != nil && ins[2].Data != nil {
						cd := make([]Expr, len(cond))
						for k, b := range cond {
							cd[k] = Int(b)
						}
						pick := zipData(cd, ins[1].Data, func(x, y Expr) (Expr, bool) { return y, true })
						alt := zipData(cd, ins[2].Data, func(x, y Expr) (Expr, bool) { return y, true })
						if pick != nil && alt != nil && len(pick) == len(alt) {
							for k := range pick {
								if cond[min(k, len(cond)-1)] == 0 {
									pick[k] = alt[k]
								}
							}
							i.Data = pick
						}
					}
				}
			default:
				if fn := arith[op]; fn != nil {
					d := ins[0].Data
					for _, in := range ins[1:] {
						d = zipData(d, in.Data, fn)
					}
					i.Data = d
				}
			}
			if i.Data != nil && i.Rank() >= 0 {
				if n, ok := Product(i.Shape...).Const(); !ok || n != int64(len(i.Data)) {
					i.Data = nil
				}
			}
		}
		c.Set(0, i)
	}
}

func shapeRule(c *Context) {
	x := c.In(0)
	r := x.Rank()
	if r < 0 {
		c.Set(0, ranked(graph.Int64, c.Fresh(0, 0)))
		return
	}
	start, end := c.Node.AttrInt("start", 0), c.Node.AttrInt("end", int64(r))
	if start < 0 {
		start += int64(r)
	}
	if end < 0 {
		end += int64(r)
	}
	start, end = min(max(start, 0), int64(r)), min(max(end, 0), int64(r))
	end = max(end, start)
	d := append([]Expr{}, x.Shape[start:end]...)
	i := ranked(graph.Int64, Int(int64(len(d))))
	i.Data = d
	c.Set(0, i)
}
