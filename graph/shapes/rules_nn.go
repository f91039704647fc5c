package shapes

import (
	"strings"

	"github.com/skipgraph/skipgraph/graph"
)

// Products, reductions and neural-network operators.

func init() {
	Register("", "MatMul", matMulRule)
	Register("", "Gemm", func(c *Context) {
		a, b := c.In(0), c.In(1)
		i := &Info{Ranked: true, Shape: []Expr{c.Fresh(0, 0), c.Fresh(0, 1)}}
		if a.Rank() == 2 {
			i.Shape[0] = a.Shape[c.Node.AttrInt("transA", 0)]
		}
		if b.Rank() == 2 {
			i.Shape[1] = b.Shape[1-c.Node.AttrInt("transB", 0)]
		}
		c.Set(0, i)
	})
	Register("", "Einsum", einsumRule)
	for _, op := range []string{"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd",
		"ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"} {
		Register("", op, reduceRule(op))
	}
	for _, op := range []string{"ArgMax", "ArgMin"} {
		Register("", op, func(c *Context) {
			x := c.In(0)
			if x.Rank() < 0 {
				return
			}
			a, ok := normAxis(c.Node.AttrInt("axis", 0), x.Rank())
			if !ok {
				return
			}
			c.Set(0, &Info{Shape: reduced(x.Shape, map[int]bool{a: true}, c.Node.AttrInt("keepdims", 1) == 1), Ranked: true})
		})
	}
	Register("", "LayerNormalization", func(c *Context) {
		x := c.In(0)
		c.Set(0, &Info{Shape: x.Shape, Ranked: x.Ranked})
		if x.Rank() < 0 {
			return
		}
		a, ok := normAxis(c.Node.AttrInt("axis", -1), x.Rank())
		if !ok {
			return
		}
		stat := append([]Expr{}, x.Shape...)
		for k := a; k < len(stat); k++ {
			stat[k] = Int(1)
		}
		c.Set(1, &Info{Shape: stat, Ranked: true})
		c.Set(2, &Info{Shape: stat, Ranked: true})
	})
	Register("", "TopK", func(c *Context) {
		x := c.In(0)
		if x.Rank() < 0 {
			return
		}
		a, ok := normAxis(c.Node.AttrInt("axis", -1), x.Rank())
		if !ok {
			return
		}
		s := append([]Expr{}, x.Shape...)
		s[a] = c.Fresh(0, a) // one symbol for both outputs
		if k := c.In(1).Data; len(k) == 1 {
			s[a] = k[0]
		} else if k := c.Node.AttrInt("k", -1); k >= 0 && !c.Has(1) {
			s[a] = Int(k)
		}
		c.Set(0, &Info{Shape: s, Ranked: true})
		c.Set(1, &Info{Shape: s, Ranked: true})
	})
	Register("", "Conv", convRule(false))
	Register("", "ConvTranspose", convRule(true))
}

func matMulRule(c *Context) {
	a, b := c.In(0), c.In(1)
	ra, rb := a.Rank(), b.Rank()
	if ra < 1 || rb < 1 {
		return
	}
	as, bs := a.Shape, b.Shape
	if ra == 1 {
		as = []Expr{Int(1), as[0]}
	}
	if rb == 1 {
		bs = []Expr{bs[0], Int(1)}
	}
	batch, _ := c.f.Broadcast(&Info{Shape: as[:len(as)-2], Ranked: true}, &Info{Shape: bs[:len(bs)-2], Ranked: true})
	s := batch
	if ra > 1 {
		s = append(s, as[len(as)-2])
	}
	if rb > 1 {
		s = append(s, bs[len(bs)-1])
	}
	c.Set(0, &Info{Shape: s, Ranked: true})
}

// einsumRule handles explicit equations ("ab,bc->ac", with "..." for broadcast axes).
func einsumRule(c *Context) {
	eq := strings.ReplaceAll(c.Node.AttrString("equation", ""), " ", "")
	lhs, rhs, ok := strings.Cut(eq, "->")
	if !ok {
		return
	}
	terms := strings.Split(lhs, ",")
	if len(terms) != c.Node.NumInputs() {
		return
	}
	letters := map[rune]Expr{}
	var ell []*Info
	for k, t := range terms {
		in := c.In(k)
		if in.Rank() < 0 {
			return
		}
		pre, post, hasEll := strings.Cut(t, "...")
		n := in.Rank() - len(pre) - len(post)
		if !hasEll {
			post, n = "", 0
			pre = t
		}
		if n < 0 || !hasEll && len(pre) != in.Rank() {
			return
		}
		for p, l := range pre {
			letters[l] = c.f.bcastDim(orOne(letters, l), in.Shape[p])
		}
		if hasEll {
			ell = append(ell, &Info{Shape: in.Shape[len(pre) : len(pre)+n], Ranked: true})
		}
		for p, l := range post {
			letters[l] = c.f.bcastDim(orOne(letters, l), in.Shape[len(pre)+n+p])
		}
	}
	var s []Expr
	pre, post, hasEll := strings.Cut(rhs, "...")
	if !hasEll {
		pre, post = rhs, ""
	}
	for _, l := range pre {
		d, ok := letters[l]
		if !ok {
			return
		}
		s = append(s, d)
	}
	if hasEll {
		b, _ := c.f.Broadcast(ell...)
		s = append(s, b...)
	}
	for _, l := range post {
		d, ok := letters[l]
		if !ok {
			return
		}
		s = append(s, d)
	}
	c.Set(0, &Info{Shape: s, Ranked: true})
}

func orOne(m map[rune]Expr, l rune) Expr {
	if d, ok := m[l]; ok {
		return d
	}
	return Int(1)
}

func reduced(s []Expr, axes map[int]bool, keep bool) []Expr {
	out := []Expr{}
	for k, d := range s {
		switch {
		case !axes[k]:
			out = append(out, d)
		case keep:
			out = append(out, Int(1))
		}
	}
	return out
}

func reduceRule(op string) Rule {
	return func(c *Context) {
		x := c.In(0)
		r := x.Rank()
		axes, present, ok := c.axes("axes", 1)
		if r < 0 || !ok {
			return
		}
		keep := c.Node.AttrInt("keepdims", 1) == 1
		set := map[int]bool{}
		if !present || len(axes) == 0 {
			if c.Node.AttrInt("noop_with_empty_axes", 0) == 1 {
				c.Set(0, &Info{Shape: x.Shape, Ranked: true, Data: x.Data})
				return
			}
			for k := range r {
				set[k] = true
			}
		}
		for _, a := range axes {
			n, ok := normAxis(a, r)
			if !ok {
				return
			}
			set[n] = true
		}
		i := &Info{Shape: reduced(x.Shape, set, keep), Ranked: true}
		if r == 1 && set[0] && x.Data != nil {
			switch op {
			case "ReduceProd":
				i.Data = []Expr{Product(x.Data...)}
			case "ReduceSum":
				s := Int(0)
				for _, d := range x.Data {
					s = Add(s, d)
				}
				i.Data = []Expr{s}
			}
		}
		c.Set(0, i)
	}
}

// convRule is Conv (or ConvTranspose) with explicit, VALID or SAME padding.
func convRule(transpose bool) Rule {
	return func(c *Context) {
		x, w := c.In(0), c.In(1)
		r := x.Rank()
		if r < 0 {
			r = w.Rank()
		}
		if r < 3 {
			return
		}
		k := r - 2
		s := make([]Expr, r)
		s[0] = c.Fresh(0, 0)
		if x.Rank() == r {
			s[0] = x.Shape[0]
		}
		s[1] = c.Fresh(0, 1)
		if w.Rank() == r {
			if transpose {
				s[1] = Mul(w.Shape[1], Int(c.Node.AttrInt("group", 1)))
			} else {
				s[1] = w.Shape[0]
			}
		}
		attr := func(name string, def int64, n int) []int64 {
			v, ok := c.Node.AttrInts(name)
			if !ok || len(v) != n {
				v = make([]int64, n)
				for i := range v {
					v[i] = def
				}
			}
			return v
		}
		strides, dil := attr("strides", 1, k), attr("dilations", 1, k)
		pads, outPad := attr("pads", 0, 2*k), attr("output_padding", 0, k)
		kernel := make([]Expr, k)
		if ks, ok := c.Node.AttrInts("kernel_shape"); ok && len(ks) == k {
			for i, v := range ks {
				kernel[i] = Int(v)
			}
		} else if w.Rank() == r {
			copy(kernel, w.Shape[2:])
		} else {
			kernel = nil
		}
		autoPad := c.Node.AttrString("auto_pad", "NOTSET")
		outShape, hasOut := c.Node.AttrInts("output_shape")
		for i := range k {
			a := i + 2
			s[a] = c.Fresh(0, a)
			if x.Rank() != r || kernel == nil {
				continue
			}
			d := x.Shape[a]
			span := Add(Mul(Int(dil[i]), Sub(kernel[i], Int(1))), Int(1)) // dilated kernel
			st := Int(strides[i])
			switch {
			case transpose && hasOut && len(outShape) == k:
				s[a] = Int(outShape[i])
			case transpose && (autoPad == "NOTSET" || autoPad == "VALID"):
				s[a] = Add(Add(Mul(st, Sub(d, Int(1))), Int(outPad[i])), Sub(span, Int(pads[i]+pads[i+k])))
			case transpose:
				s[a] = Mul(d, st)
			case autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER":
				s[a] = Div(Add(d, Sub(st, Int(1))), st)
			case autoPad == "VALID":
				s[a] = Add(Div(Sub(d, span), st), Int(1))
			default:
				s[a] = Add(Div(Sub(Add(d, Int(pads[i]+pads[i+k])), span), st), Int(1))
			}
		}
		c.Set(0, &Info{Shape: s, Ranked: true})
	}
}

// dtypeOf is the element type of output k of n when its rule did not say.
func (f *Inferer) dtypeOf(n *graph.Node, k int) graph.DType {
	in := func(i int) graph.DType { return f.Infer(n.Input(i)).Elem }
	switch n.OpType {
	case "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "Not", "And", "Or", "Xor",
		"IsNaN", "IsInf":
		return graph.Bool
	case "Shape", "Size", "NonZero", "ArgMax", "ArgMin":
		return graph.Int64
	case "Cast":
		return graph.DType(n.AttrInt("to", 0))
	case "CastLike":
		return in(1)
	case "EyeLike", "RandomNormalLike", "RandomUniformLike", "Bernoulli", "RandomNormal", "RandomUniform":
		if a := n.Attr("dtype"); a != nil {
			return graph.DType(a.I)
		}
		if n.OpType == "RandomNormal" || n.OpType == "RandomUniform" {
			return graph.Float
		}
	case "Where":
		return in(1)
	case "OneHot":
		return in(2)
	case "TopK":
		if k == 1 {
			return graph.Int64
		}
	case "Dropout":
		if k == 1 {
			return graph.Bool
		}
	case "LayerNormalization":
		if k > 0 && n.AttrInt("stash_type", 1) == 1 {
			return graph.Float
		}
	}
	return in(0)
}
