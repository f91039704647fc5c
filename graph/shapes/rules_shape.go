package shapes

import (
	"math"
	"slices"

	"github.com/skipgraph/skipgraph/graph"
)

// Data-movement and shape-building operators.

func init() {
	Register("", "Reshape", reshapeRule)
	Register("", "Flatten", func(c *Context) {
		x := c.In(0)
		r := x.Rank()
		if r < 0 {
			c.Set(0, &Info{Ranked: true, Shape: c.freshShape(0, 2)})
			return
		}
		a := c.Node.AttrInt("axis", 1) // in [-r, r]; negative counts from r
		if a < 0 {
			a += int64(r)
		}
		if a < 0 || a > int64(r) {
			return
		}
		i := ranked(graph.Undefined, Product(x.Shape[:a]...), Product(x.Shape[a:]...))
		i.Data = x.Data
		c.Set(0, i)
	})
	Register("", "Transpose", func(c *Context) {
		x := c.In(0)
		r := x.Rank()
		if r < 0 {
			return
		}
		perm, ok := c.Node.AttrInts("perm")
		if !ok {
			perm = make([]int64, r)
			for k := range perm {
				perm[k] = int64(r - 1 - k)
			}
		}
		if len(perm) != r {
			return
		}
		s := make([]Expr, r)
		for k, p := range perm {
			if p < 0 || int(p) >= r {
				return
			}
			s[k] = x.Shape[p]
		}
		c.Set(0, &Info{Shape: s, Ranked: true})
	})
	Register("", "Concat", concatRule)
	Register("", "Split", splitRule)
	Register("", "Slice", sliceRule)
	Register("", "Gather", gatherRule)
	Register("", "GatherElements", func(c *Context) {
		idx := c.In(1)
		c.Set(0, &Info{Shape: idx.Shape, Ranked: idx.Ranked})
	})
	Register("", "Squeeze", squeezeRule)
	Register("", "Unsqueeze", unsqueezeRule)
	Register("", "Expand", expandRule)
	Register("", "Tile", func(c *Context) {
		x := c.In(0)
		rep := c.In(1).Data
		if x.Rank() < 0 || len(rep) != x.Rank() {
			if x.Rank() >= 0 {
				c.Set(0, &Info{Ranked: true, Shape: c.freshShape(0, x.Rank())})
			}
			return
		}
		s := make([]Expr, len(rep))
		for k := range s {
			s[k] = Mul(x.Shape[k], rep[k])
		}
		c.Set(0, &Info{Shape: s, Ranked: true})
	})
	Register("", "ConstantOfShape", func(c *Context) {
		i := &Info{}
		if a := c.Node.Attr("value"); a != nil && a.T != nil {
			i.Elem = a.T.DType
		} else {
			i.Elem = graph.Float
		}
		i.Shape, i.Ranked = c.shapeFromData(0)
		if i.Ranked && isIntType(i.Elem) {
			if n, ok := Product(i.Shape...).Const(); ok && n <= MaxData {
				var fill int64
				if a := c.Node.Attr("value"); a != nil && a.T != nil {
					if d := tensorData(a.T); len(d) == 1 {
						fill, _ = d[0].Const()
					}
				}
				i.Data = make([]Expr, n)
				for k := range i.Data {
					i.Data[k] = Int(fill)
				}
			}
		}
		c.Set(0, i)
	})
	Register("", "Range", func(c *Context) {
		start, limit, delta := c.In(0).Data, c.In(1).Data, c.In(2).Data
		if len(start) != 1 || len(limit) != 1 || len(delta) != 1 {
			c.Set(0, &Info{Ranked: true, Shape: []Expr{c.Fresh(0, 0)}})
			return
		}
		s, l, d := start[0], limit[0], delta[0]
		var n Expr
		if a, ok := s.Const(); ok {
			if b, ok := l.Const(); ok {
				if st, ok := d.Const(); ok && st != 0 {
					k := max(int64(math.Ceil(float64(b-a)/float64(st))), 0)
					i := ranked(graph.Undefined, Int(k))
					if k <= MaxData {
						for x := range k {
							i.Data = append(i.Data, Int(a+x*st))
						}
					}
					c.Set(0, i)
					return
				}
			}
		}
		if d.IsConst(1) {
			n = Sub(l, s)
		} else {
			n = c.Fresh(0, 0)
		}
		c.Set(0, ranked(graph.Undefined, n))
	})
	Register("", "NonZero", func(c *Context) {
		x := c.In(0)
		r := Int(int64(x.Rank()))
		if x.Rank() < 0 {
			r = c.Fresh(0, 0)
		}
		c.Set(0, ranked(graph.Int64, r, c.Fresh(0, 1)))
	})
	Register("", "OneHot", func(c *Context) {
		idx := c.In(0)
		depth := c.In(1).Data
		if idx.Rank() < 0 {
			return
		}
		a, ok := normAxis(c.Node.AttrInt("axis", -1), idx.Rank()+1)
		if !ok {
			return
		}
		d := c.Fresh(0, a)
		if len(depth) == 1 {
			d = depth[0]
		}
		s := slices.Insert(append([]Expr{}, idx.Shape...), a, d)
		c.Set(0, &Info{Shape: s, Ranked: true})
	})
	Register("", "Pad", func(c *Context) {
		x := c.In(0)
		r := x.Rank()
		if r < 0 {
			return
		}
		pads, ok := c.Node.AttrInts("pads")
		var pd []Expr
		if ok {
			for _, p := range pads {
				pd = append(pd, Int(p))
			}
		} else {
			pd = c.In(1).Data
		}
		axes := make([]int, r)
		for k := range axes {
			axes[k] = k
		}
		if c.Has(3) {
			ax, ok := c.ints(3)
			if !ok {
				c.Set(0, &Info{Ranked: true, Shape: c.freshShape(0, r)})
				return
			}
			axes = axes[:0]
			for _, a := range ax {
				n, ok := normAxis(a, r)
				if !ok {
					return
				}
				axes = append(axes, n)
			}
		}
		if len(pd) != 2*len(axes) {
			c.Set(0, &Info{Ranked: true, Shape: c.freshShape(0, r)})
			return
		}
		s := append([]Expr{}, x.Shape...)
		for k, a := range axes {
			s[a] = Add(s[a], Add(pd[k], pd[k+len(axes)]))
		}
		c.Set(0, &Info{Shape: s, Ranked: true})
	})
}

// shapeFromData reads a shape from the data of input i; when the data is unknown but its length
// is, the dimensions are fresh symbols of output 0.
func (c *Context) shapeFromData(i int) ([]Expr, bool) {
	in := c.In(i)
	if in.Data != nil {
		return append([]Expr{}, in.Data...), true
	}
	if d, ok := in.Dim(0); ok && in.Rank() == 1 {
		if n, ok := d.Const(); ok {
			return c.freshShape(0, int(n)), true
		}
	}
	return nil, false
}

func reshapeRule(c *Context) {
	x := c.In(0)
	target, ok := c.shapeFromData(1)
	if !ok {
		return
	}
	allowZero := c.Node.AttrInt("allowzero", 0) == 1
	i := &Info{Ranked: true, Shape: make([]Expr, len(target))}
	infer := -1
	for k, d := range target {
		switch {
		case d.IsConst(-1):
			infer = k
		case d.IsConst(0) && !allowZero:
			if dx, ok := x.Dim(k); ok {
				i.Shape[k] = dx
			} else {
				i.Shape[k] = c.Fresh(0, k)
			}
		default:
			i.Shape[k] = d
		}
	}
	if infer >= 0 {
		i.Shape[infer] = c.Fresh(0, infer)
		if x.Rank() >= 0 {
			var rest []Expr
			for k, d := range i.Shape {
				if k != infer {
					rest = append(rest, d)
				}
			}
			i.Shape[infer] = c.f.quotient(x.Shape, rest)
		}
	}
	if x.Data != nil {
		if n, ok := Product(i.Shape...).Const(); ok && n == int64(len(x.Data)) {
			i.Data = x.Data
		}
	}
	c.Set(0, i)
}

// quotient is product(num) / product(den), cancelling equal factors first.
func (f *Inferer) quotient(num, den []Expr) Expr {
	num = append([]Expr{}, num...)
	var left []Expr
	for _, d := range den {
		k := slices.IndexFunc(num, func(n Expr) bool { return f.Same(n, d) })
		if k >= 0 {
			num = slices.Delete(num, k, k+1)
			continue
		}
		left = append(left, d)
	}
	return Div(Product(num...), Product(left...))
}

func concatRule(c *Context) {
	var ins []*Info
	for k := range c.Node.NumInputs() {
		if c.Has(k) {
			ins = append(ins, c.In(k))
		}
	}
	r := -1
	for _, in := range ins {
		if in.Rank() >= 0 {
			r = in.Rank()
			break
		}
	}
	if r < 0 {
		return
	}
	a, ok := normAxis(c.Node.AttrInt("axis", 0), r)
	if !ok {
		return
	}
	s := make([]Expr, r)
	set := make([]bool, r)
	sum := Int(0)
	known := true
	data := []Expr{}
	for _, in := range ins {
		if in.Rank() != r {
			known = false
			continue
		}
		sum = Add(sum, in.Shape[a])
		for k, d := range in.Shape {
			// the inputs agree off the axis in a valid run: keep the most informative size
			if k != a && (!set[k] || s[k].Unknown() && !d.Unknown()) {
				s[k], set[k] = d, true
			}
		}
		if in.Data == nil {
			data = nil
		} else if data != nil {
			data = append(data, in.Data...)
		}
	}
	if known {
		s[a] = sum
	} else {
		s[a] = c.Fresh(0, a)
		data = nil
	}
	i := &Info{Shape: s, Ranked: true}
	if r == 1 {
		i.Data = data
	}
	c.Set(0, i)
}

func splitRule(c *Context) {
	x := c.In(0)
	n := c.Node.NumOutputs()
	r := x.Rank()
	if r < 0 {
		return
	}
	a, ok := normAxis(c.Node.AttrInt("axis", 0), r)
	if !ok {
		return
	}
	var sizes []Expr
	if s, has := c.Node.AttrInts("split"); has {
		for _, v := range s {
			sizes = append(sizes, Int(v))
		}
	} else if c.Has(1) {
		sizes = c.In(1).Data
	} else {
		d := x.Shape[a]
		if q, ok := DivExact(d, Int(int64(n))); ok {
			for range n {
				sizes = append(sizes, q)
			}
		} else if v, ok := d.Const(); ok && n > 0 {
			// opset 18 num_outputs: ceil-sized pieces, the last one smaller
			q := (v + int64(n) - 1) / int64(n)
			for k := range n {
				sizes = append(sizes, Int(min(q, max(v-int64(k)*q, 0))))
			}
		}
	}
	for k := range n {
		s := append([]Expr{}, x.Shape...)
		if len(sizes) == n {
			s[a] = sizes[k]
		} else {
			s[a] = c.Fresh(k, a)
		}
		c.Set(k, &Info{Shape: s, Ranked: true})
	}
}

// bigEnd is where an end index means "to the end" (torch writes INT64_MAX, some exporters
// INT32_MAX).
const bigEnd = math.MaxInt32

func sliceRule(c *Context) {
	x := c.In(0)
	r := x.Rank()
	if r < 0 {
		return
	}
	var starts, ends, axesD, steps []Expr
	if s, ok := c.Node.AttrInts("starts"); ok { // opset < 10
		for _, v := range s {
			starts = append(starts, Int(v))
		}
		e, _ := c.Node.AttrInts("ends")
		for _, v := range e {
			ends = append(ends, Int(v))
		}
		if a, ok := c.Node.AttrInts("axes"); ok {
			for _, v := range a {
				axesD = append(axesD, Int(v))
			}
		}
	} else {
		starts, ends = c.In(1).Data, c.In(2).Data
		if c.Has(3) {
			if axesD = c.In(3).Data; axesD == nil {
				c.Set(0, &Info{Ranked: true, Shape: c.freshShape(0, r)})
				return
			}
		}
		if c.Has(4) {
			if steps = c.In(4).Data; steps == nil {
				c.Set(0, &Info{Ranked: true, Shape: c.freshShape(0, r)})
				return
			}
		}
	}
	if starts == nil || ends == nil || len(starts) != len(ends) {
		// unknown bounds: the sliced axes get fresh sizes (all of them when axes are not given)
		s := append([]Expr{}, x.Shape...)
		for a := range s {
			if axesD == nil {
				s[a] = c.Fresh(0, a)
			}
		}
		for _, d := range axesD {
			v, _ := d.Const()
			if a, ok := normAxis(v, r); ok {
				s[a] = c.Fresh(0, a)
			}
		}
		c.Set(0, &Info{Ranked: true, Shape: s})
		return
	}
	s := append([]Expr{}, x.Shape...)
	type cut struct{ start, end, step int64 }
	cuts := map[int]cut{}
	allConst := true
	for k := range starts {
		a := k
		if axesD != nil {
			v, ok := axesD[k].Const()
			if !ok {
				return
			}
			n, ok := normAxis(v, r)
			if !ok {
				return
			}
			a = n
		}
		step := int64(1)
		if steps != nil {
			v, ok := steps[k].Const()
			if !ok {
				s[a] = c.Fresh(0, a)
				allConst = false
				continue
			}
			step = v
		}
		s[a] = c.f.sliceDim(s[a], starts[k], ends[k], step, c.Fresh(0, a))
		st, ok1 := starts[k].Const()
		en, ok2 := ends[k].Const()
		if !ok1 || !ok2 {
			allConst = false
		}
		cuts[a] = cut{st, en, step}
	}
	i := &Info{Shape: s, Ranked: true}
	if r == 1 && x.Data != nil && allConst {
		if ct, ok := cuts[0]; ok && ct.step != 0 {
			n := int64(len(x.Data))
			st, en := clampIndex(ct.start, n, ct.step), clampIndex(ct.end, n, ct.step)
			for p := st; (ct.step > 0 && p < en) || (ct.step < 0 && p > en); p += ct.step {
				i.Data = append(i.Data, x.Data[p])
			}
			if i.Data == nil {
				i.Data = []Expr{}
			}
		} else if len(cuts) == 0 {
			i.Data = x.Data
		}
	}
	c.Set(0, i)
}

func clampIndex(v, n, step int64) int64 {
	if v < 0 {
		v += n
	}
	if step > 0 {
		return min(max(v, 0), n)
	}
	return min(max(v, -1), n-1)
}

// sliceDim is the size of d[start:end:step]. On a symbolic axis a constant start is assumed to
// lie within it and the end not to come before the start (a slice is not empty).
func (f *Inferer) sliceDim(d, start, end Expr, step int64, fresh Expr) Expr {
	if n, ok := d.Const(); ok {
		st, ok1 := start.Const()
		en, ok2 := end.Const()
		if ok1 && ok2 && step != 0 {
			st, en = clampIndex(st, n, step), clampIndex(en, n, step)
			if step > 0 {
				return Int(max((en-st+step-1)/step, 0))
			}
			return Int(max((st-en-step-1)/(-step), 0))
		}
	}
	if step != 1 {
		return fresh
	}
	// start: a constant (negative counts from the end) or an expression
	var st Expr
	if v, ok := start.Const(); ok {
		switch {
		case v >= 0:
			st = Int(v) // within the axis (as the end is assumed not before it)
		default:
			st = Max(Add(d, Int(v)), Int(0))
		}
	} else {
		st = Min(start, d)
	}
	var en Expr
	if v, ok := end.Const(); ok {
		switch {
		case v >= bigEnd:
			en = d
		case v >= 0:
			en = Min(Int(v), d)
		default:
			en = Max(Add(d, Int(v)), Int(0))
		}
	} else {
		en = Min(end, d)
	}
	return Sub(en, st)
}

func gatherRule(c *Context) {
	x, idx := c.In(0), c.In(1)
	r := x.Rank()
	if r < 0 || idx.Rank() < 0 {
		return
	}
	a, ok := normAxis(c.Node.AttrInt("axis", 0), r)
	if !ok {
		return
	}
	s := append(append(append([]Expr{}, x.Shape[:a]...), idx.Shape...), x.Shape[a+1:]...)
	i := &Info{Shape: s, Ranked: true}
	if r == 1 && x.Data != nil {
		if iv, ok := idx.Ints(); ok {
			n := int64(len(x.Data))
			for _, k := range iv {
				if k < 0 {
					k += n
				}
				if k < 0 || k >= n {
					i.Data = nil
					break
				}
				i.Data = append(i.Data, x.Data[k])
			}
		}
	}
	c.Set(0, i)
}

func squeezeRule(c *Context) {
	x := c.In(0)
	r := x.Rank()
	axes, present, ok := c.axes("axes", 1)
	if r < 0 || !ok {
		return
	}
	drop := map[int]bool{}
	if !present {
		for k, d := range x.Shape {
			if d.IsConst(1) {
				drop[k] = true
			} else if _, ok := d.Const(); !ok {
				return // a symbolic size may be 1
			}
		}
	}
	for _, a := range axes {
		n, ok := normAxis(a, r)
		if !ok {
			return
		}
		drop[n] = true
	}
	var s []Expr
	for k, d := range x.Shape {
		if !drop[k] {
			s = append(s, d)
		}
	}
	c.Set(0, &Info{Shape: s, Ranked: true, Data: x.Data})
}

func unsqueezeRule(c *Context) {
	x := c.In(0)
	r := x.Rank()
	axes, _, ok := c.axes("axes", 1)
	if r < 0 || !ok {
		return
	}
	out := r + len(axes)
	ins := map[int]bool{}
	for _, a := range axes {
		n, ok := normAxis(a, out)
		if !ok {
			return
		}
		ins[n] = true
	}
	s := make([]Expr, 0, out)
	k := 0
	for p := range out {
		if ins[p] {
			s = append(s, Int(1))
			continue
		}
		if k >= r {
			return
		}
		s = append(s, x.Shape[k])
		k++
	}
	c.Set(0, &Info{Shape: s, Ranked: true, Data: x.Data})
}

func expandRule(c *Context) {
	x := c.In(0)
	target, ok := c.shapeFromData(1)
	if !ok || x.Rank() < 0 {
		return
	}
	s, ok := c.f.Broadcast(x, &Info{Shape: target, Ranked: true})
	if !ok {
		return
	}
	c.Set(0, &Info{Shape: s, Ranked: true})
}
