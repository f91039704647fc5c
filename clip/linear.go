package clip

import (
	"slices"

	"github.com/skipgraph/skipgraph/graph"
)

// linearAt matches a projection at a MatMul or Gemm node whose weight is a 2-D floating-point
// initializer (possibly through a Transpose node), with the bias Add that follows a MatMul.
func (a *analyzer) linearAt(n *graph.Node) *Linear {
	if n == nil || n.Domain != "" {
		return nil
	}
	l := &Linear{Op: n.OpType, node: n, in: n.Input(0)}
	switch n.OpType {
	case "MatMul":
		w := n.Input(1)
		if t := producerOp(w, "Transpose"); t != nil {
			if perm, ok := t.AttrInts("perm"); ok && !slices.Equal(perm, []int64{1, 0}) {
				return nil
			}
			l.wTransposeNode = t
			w = t.Input(0)
		}
		p := paramOf(w)
		if p == nil || !isFloatInit(p) || len(p.Const.Dims) != 2 {
			return nil
		}
		l.weight = p
		l.WeightTransposed = l.wTransposeNode == nil
		l.out = n.Output(0)
		if cs := consumers(l.out); len(cs) == 1 && cs[0].OpType == "Add" && cs[0].Domain == "" && !l.out.IsGraphOutput() {
			if b := paramOf(other(cs[0], l.out)); b != nil && isFloatInit(b) && len(b.Const.Dims) == 1 {
				l.bias, l.biasNode, l.out = b, cs[0], cs[0].Output(0)
			}
		}
	case "Gemm":
		if n.AttrInt("transA", 0) != 0 {
			return nil
		}
		p := paramOf(n.Input(1))
		if p == nil || !isFloatInit(p) || len(p.Const.Dims) != 2 {
			return nil
		}
		l.weight = p
		l.WeightTransposed = n.AttrInt("transB", 0) == 0
		if b := paramOf(n.Input(2)); b != nil && isFloatInit(b) {
			l.bias = b
		}
		l.out = n.Output(0)
	default:
		return nil
	}
	d := l.weight.Const.Dims
	if l.WeightTransposed {
		l.InFeatures, l.OutFeatures = int(d[0]), int(d[1])
	} else {
		l.InFeatures, l.OutFeatures = int(d[1]), int(d[0])
	}
	l.fill()
	return l
}

func (l *Linear) fill() {
	l.Node = NodeRef(l.node)
	if l.biasNode != nil {
		l.BiasNode = NodeRef(l.biasNode)
	}
	l.Weight = l.weight.Name
	if l.bias != nil {
		l.Bias = l.bias.Name
	}
	l.In, l.Out = l.in.Name, l.out.Name
}

// nodes returns the projection's nodes.
func (l *Linear) nodeList() []*graph.Node {
	out := []*graph.Node{l.node}
	if l.wTransposeNode != nil {
		out = append(out, l.wTransposeNode)
	}
	if l.biasNode != nil {
		out = append(out, l.biasNode)
	}
	return out
}

// linearsFrom returns the projections applied to v, looking through layout ops (Reshape,
// Transpose, Cast, Identity) between v and the MatMul/Gemm.
func (a *analyzer) linearsFrom(v *graph.Value) []*Linear {
	var out []*Linear
	seen := map[*graph.Node]bool{}
	var walk func(x *graph.Value, depth int)
	walk = func(x *graph.Value, depth int) {
		for _, c := range consumers(x) {
			if seen[c] || c.Domain != "" {
				continue
			}
			seen[c] = true
			switch c.OpType {
			case "MatMul", "Gemm":
				if c.Input(0) == x {
					if l := a.linearAt(c); l != nil {
						out = append(out, l)
					}
				}
			case "Reshape", "Transpose", "Cast", "Identity", "Flatten", "Squeeze", "Unsqueeze":
				if depth < 3 && c.Input(0) == x {
					walk(c.Output(0), depth+1)
				}
			}
		}
	}
	walk(v, 0)
	return out
}

// linearBefore finds the projection that produces v, looking back through layout ops.
func (a *analyzer) linearBefore(v *graph.Value) *Linear {
	for i := 0; v != nil && i < 4; i++ {
		n := producer(v)
		if n == nil || n.Domain != "" {
			return nil
		}
		switch n.OpType {
		case "Add":
			for k := 0; k < 2; k++ {
				if m := producerOp(n.Input(k), "MatMul"); m != nil {
					if l := a.linearAt(m); l != nil && l.biasNode == n {
						return l
					}
				}
			}
			return nil
		case "MatMul", "Gemm":
			return a.linearAt(n)
		case "Reshape", "Transpose", "Cast", "Identity":
			v = n.Input(0)
		default:
			return nil
		}
	}
	return nil
}
