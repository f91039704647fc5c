package clip

import (
	"github.com/skipgraph/skipgraph/graph"
)

// findNorms finds every LayerNorm over the last axis: LayerNormalization nodes, and the
// decomposed ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div/Mul/Add form, each with optional Casts
// around it (the fp32 LayerNorm of OpenAI's code).
func (a *analyzer) findNorms() {
	a.lnByOut = map[*graph.Value]*Norm{}
	a.lnByIn = map[*graph.Value][]*Norm{}
	a.lnNode = map[*graph.Node]*Norm{}
	for _, n := range a.order {
		if n.Domain != "" {
			continue
		}
		var ln *Norm
		switch n.OpType {
		case "LayerNormalization":
			ln = a.matchLayerNormalization(n)
		case "Sub":
			ln = a.matchDecomposedNorm(n)
		}
		if ln == nil {
			continue
		}
		a.lns = append(a.lns, ln)
		a.lnByOut[ln.out] = ln
		a.lnByIn[ln.in] = append(a.lnByIn[ln.in], ln)
		for _, m := range ln.nodes {
			a.lnNode[m] = ln
		}
	}
}

func (a *analyzer) matchLayerNormalization(n *graph.Node) *Norm {
	if ax := n.AttrInt("axis", -1); ax != -1 {
		if t := n.Input(0).Type; t.Rank() < 0 || int64(t.Rank()-1) != ax {
			return nil
		}
	}
	ln := &Norm{in: n.Input(0), out: n.Output(0), nodes: []*graph.Node{n}}
	ln.Epsilon = float64(n.AttrFloat("epsilon", 1e-5))
	if w := paramOf(n.Input(1)); w != nil {
		ln.Weight = w.Name
	}
	if b := paramOf(n.Input(2)); b != nil {
		ln.Bias = b.Name
	}
	a.castsAround(ln)
	return ln
}

// matchDecomposedNorm matches the decomposed LayerNorm whose centring Sub is sub.
func (a *analyzer) matchDecomposedNorm(sub *graph.Node) *Norm {
	x := sub.Input(0)
	mean := producerOp(sub.Input(1), "ReduceMean")
	if x == nil || mean == nil || mean.Input(0) != x || !a.lastAxis(mean) {
		return nil
	}
	d := sub.Output(0)
	nodes := []*graph.Node{mean, sub}
	// The normalising node: Div(d, s) or Mul(d, Reciprocal(s)) with s derived from d.
	var norm *graph.Node
	var s *graph.Value
	for _, c := range consumers(d) {
		if c.Domain != "" {
			continue
		}
		switch c.OpType {
		case "Div":
			if c.Input(0) == d {
				norm, s = c, c.Input(1)
			}
		case "Mul":
			if o := other(c, d); o != nil {
				if r := producerOp(o, "Reciprocal"); r != nil {
					norm, s = c, r.Input(0)
					nodes = append(nodes, r)
				}
			}
		}
		if norm != nil {
			break
		}
	}
	if norm == nil {
		return nil
	}
	// s = Sqrt(Add(ReduceMean(Pow(d, 2) | Mul(d, d)), eps)).
	sq := producerOp(s, "Sqrt")
	if sq == nil {
		return nil
	}
	add := producerOp(sq.Input(0), "Add")
	if add == nil {
		return nil
	}
	var rm *graph.Node
	var eps float64
	for i := 0; i < 2; i++ {
		if r := producerOp(add.Input(i), "ReduceMean"); r != nil {
			if e, ok := constFloat(add.Input(1 - i)); ok {
				rm, eps = r, e
			}
		}
	}
	if rm == nil || !a.lastAxis(rm) {
		return nil
	}
	pw := producerOp(rm.Input(0), "Pow", "Mul")
	if pw == nil || pw.Input(0) != d || (pw.OpType == "Mul" && pw.Input(1) != d) {
		return nil
	}
	if pw.OpType == "Pow" {
		if e, ok := constFloat(pw.Input(1)); !ok || e != 2 {
			return nil
		}
	}
	nodes = append(nodes, pw, rm, add, sq, norm)
	ln := &Norm{Decomposed: true, in: x, Epsilon: eps}
	y := norm.Output(0)
	// Affine: Mul by the weight, Add of the bias (each optional, either operand order).
	if cs := consumers(y); len(cs) == 1 && cs[0].OpType == "Mul" && cs[0].Domain == "" {
		if w := paramOf(other(cs[0], y)); w != nil && isFloatInit(w) {
			ln.Weight = w.Name
			nodes = append(nodes, cs[0])
			y = cs[0].Output(0)
		}
	}
	if cs := consumers(y); len(cs) == 1 && cs[0].OpType == "Add" && cs[0].Domain == "" {
		if b := paramOf(other(cs[0], y)); b != nil && isFloatInit(b) {
			ln.Bias = b.Name
			nodes = append(nodes, cs[0])
			y = cs[0].Output(0)
		}
	}
	ln.out = y
	ln.nodes = nodes
	a.castsAround(ln)
	return ln
}

// castsAround widens a norm over a float Cast on its input and on its output.
func (a *analyzer) castsAround(ln *Norm) {
	if c := producerOp(ln.in, "Cast"); c != nil && a.isFloatCast(c) && onlyUsedBy(ln.in, ln.nodes) {
		ln.in = c.Input(0)
		ln.nodes = append([]*graph.Node{c}, ln.nodes...)
	}
	if cs := consumers(ln.out); len(cs) == 1 && cs[0].OpType == "Cast" && cs[0].Domain == "" && a.isFloatCast(cs[0]) && !ln.out.IsGraphOutput() {
		ln.out = cs[0].Output(0)
		ln.nodes = append(ln.nodes, cs[0])
	}
	ln.Input, ln.Output = ln.in.Name, ln.out.Name
	ln.Nodes = nodeRefs(ln.nodes)
}

func (a *analyzer) isFloatCast(c *graph.Node) bool {
	return graph.DType(c.AttrInt("to", 0)).IsFloat()
}

// lastAxis reports whether a ReduceMean reduces the last axis only, as far as can be told.
func (a *analyzer) lastAxis(n *graph.Node) bool {
	axes, ok := n.AttrInts("axes")
	if !ok && n.NumInputs() > 1 {
		axes, ok = constInts(n.Input(1))
	}
	if !ok {
		return true // unknown: accept, the rest of the pattern decides
	}
	if len(axes) != 1 {
		return false
	}
	if axes[0] == -1 {
		return true
	}
	r := n.Input(0).Type.Rank()
	return r > 0 && axes[0] == int64(r-1)
}

// onlyUsedBy reports whether every use of v is by one of nodes.
func onlyUsedBy(v *graph.Value, nodes []*graph.Node) bool {
	for _, u := range v.Uses() {
		found := false
		for _, n := range nodes {
			if u.Node == n {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return !v.IsGraphOutput()
}
