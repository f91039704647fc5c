package clip

import (
	"math"
	"slices"

	"github.com/skipgraph/skipgraph/graph"
)

// findHead finds the similarity head of a combined model: L2 normalisation of both embeddings,
// their MatMul, the logit scale and the two logits outputs.
func (a *analyzer) findHead(s *Structure) error {
	s.Head = Head{LogitScale: LogitScale{Default: true, Value: DefaultLogitScale}}
	if s.Vision == nil || s.Text == nil {
		return nil
	}
	img, imgNodes := a.normalized(a.g.Value(s.Vision.Output))
	txt, txtNodes := a.normalized(a.g.Value(s.Text.Output))
	// The logits MatMul takes both (one through a Transpose); the logit scale multiplies its
	// output or one of its operands.
	var mm, scaleNode *graph.Node
	textLeft := false
	for _, n := range a.order {
		if n.OpType != "MatMul" || n.Domain != "" {
			continue
		}
		l, ls := a.unscaled(n.Input(0))
		r, rs := a.unscaled(n.Input(1))
		switch {
		case l == txt && r == img:
			mm, textLeft = n, true
		case l == img && r == txt:
			mm = n
		}
		if mm != nil {
			scaleNode = ls
			if scaleNode == nil {
				scaleNode = rs
			}
			break
		}
	}
	if mm == nil {
		return nil // embeddings only: no logits head
	}
	h := &s.Head
	h.Present = true
	h.ImageEmbeds, h.TextEmbeds = img.Name, txt.Name
	h.ImageNorm, h.TextNorm = nodeRefs(imgNodes), nodeRefs(txtNodes)
	logits := mm.Output(0)
	h.LogitScale = LogitScale{Folded: true, Value: 1}
	if scaleNode != nil {
		h.LogitScale, _ = a.scaleAt(scaleNode)
	} else {
		for _, c := range consumers(logits) {
			if ls, ok := a.scaleAt(c); ok {
				h.LogitScale = ls
				logits = c.Output(0)
				break
			}
		}
	}
	var t *graph.Value
	for _, c := range consumers(logits) {
		if c.OpType == "Transpose" {
			if perm, ok := c.AttrInts("perm"); !ok || slices.Equal(perm, []int64{1, 0}) {
				t = c.Output(0)
			}
		}
	}
	if textLeft {
		h.LogitsPerText = logits.Name
		if t != nil {
			h.LogitsPerImage = t.Name
		}
	} else {
		h.LogitsPerImage = logits.Name
		if t != nil {
			h.LogitsPerText = t.Name
		}
	}
	ends := []*graph.Value{logits}
	if t != nil {
		ends = append(ends, t)
	}
	h.Nodes = nodeRefs(a.sorted(backward(ends, map[*graph.Value]bool{img: true, txt: true}, 200)))
	return nil
}

// unscaled strips Transposes and a logit-scale Mul from a logits MatMul operand, returning the
// operand and the Mul.
func (a *analyzer) unscaled(v *graph.Value) (*graph.Value, *graph.Node) {
	v = throughTranspose(v)
	var sc *graph.Node
	if n := producerOp(v, "Mul", "Div"); n != nil {
		if _, ok := a.scaleAt(n); ok {
			sc = n
			if n.OpType == "Div" || a.isScaleValue(n.Input(1)) {
				v = n.Input(0)
			} else {
				v = n.Input(1)
			}
		}
	}
	return throughTranspose(v), sc
}

// isScaleValue reports whether v is Exp of a scalar, or a scalar constant.
func (a *analyzer) isScaleValue(v *graph.Value) bool {
	if producerOp(v, "Exp") != nil {
		return true
	}
	_, ok := constFloat(v)
	return ok
}

// scaleAt reads the logit scale applied by a Mul (or Div) node: Exp of an initializer, or a
// scalar constant.
func (a *analyzer) scaleAt(c *graph.Node) (LogitScale, bool) {
	if c.OpType != "Mul" && c.OpType != "Div" {
		return LogitScale{}, false
	}
	var sv *graph.Value
	for k := 0; k < 2; k++ {
		if c.OpType == "Div" && k == 0 {
			continue
		}
		if a.isScaleValue(c.Input(k)) {
			sv = c.Input(k)
			break
		}
	}
	if sv == nil {
		return LogitScale{}, false
	}
	ls := LogitScale{Node: NodeRef(c)}
	if e := producerOp(sv, "Exp"); e != nil {
		p := paramOf(e.Input(0))
		if p == nil {
			return LogitScale{}, false
		}
		ls.Initializer, ls.Exp = p.Name, true
		if x, ok := constFloat(p); ok {
			ls.Raw, ls.Value = x, math.Exp(x)
		}
		return ls, true
	}
	x, _ := constFloat(sv)
	ls.Folded, ls.Raw, ls.Value = true, x, x
	if p := paramOf(sv); p != nil {
		ls.Initializer = p.Name
	}
	if c.OpType == "Div" && x != 0 {
		ls.Value = 1 / x
	}
	return ls, true
}

// throughTranspose returns v, or the input of the Transpose producing it.
func throughTranspose(v *graph.Value) *graph.Value {
	if t := producerOp(v, "Transpose", "Identity"); t != nil {
		return t.Input(0)
	}
	return v
}

// normalized returns the L2-normalised e (e / ||e||, LpNormalization) and the nodes doing it, or
// e itself.
func (a *analyzer) normalized(e *graph.Value) (*graph.Value, []*graph.Node) {
	if e == nil {
		return nil, nil
	}
	for _, c := range consumers(e) {
		switch c.OpType {
		case "LpNormalization":
			return c.Output(0), []*graph.Node{c}
		case "Div":
			if c.Input(0) == e && reaches(c.Input(1), e, nil, 12) {
				return c.Output(0), a.sorted(backward([]*graph.Value{c.Output(0)}, map[*graph.Value]bool{e: true}, 20))
			}
		case "Mul":
			if o := other(c, e); o != nil && producerOp(o, "Reciprocal") != nil && reaches(o, e, nil, 12) {
				return c.Output(0), a.sorted(backward([]*graph.Value{c.Output(0)}, map[*graph.Value]bool{e: true}, 20))
			}
		}
	}
	return e, nil
}
