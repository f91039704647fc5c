package clip

import (
	"math"
	"slices"

	"github.com/skipgraph/skipgraph/graph"
)

// regionLimit bounds the backward searches that delimit a sub-block.
const regionLimit = 20000

// block is one residual sub-block: out = x + f(ln(x)).
type block struct {
	ln     *Norm
	add    *graph.Node
	x      *graph.Value
	branch *graph.Value
	out    *graph.Value
	region map[*graph.Node]bool
	attn   bool
}

// findBlocks finds the residual sub-blocks: an Add of x and a branch computed from LN(x), the
// branch holding a Softmax (attention) or two projections (MLP).
func (a *analyzer) findBlocks() []*block {
	var out []*block
	for _, ln := range a.lns {
		x := ln.in
		for _, c := range consumers(x) {
			if c.OpType != "Add" || c.Domain != "" {
				continue
			}
			o := other(c, x)
			if o == nil {
				continue
			}
			stop := map[*graph.Value]bool{x: true}
			if !reaches(o, ln.out, stop, regionLimit) {
				continue
			}
			stop[ln.out] = true
			region := backward([]*graph.Value{o}, stop, regionLimit)
			b := &block{ln: ln, add: c, x: x, branch: o, out: c.Output(0), region: region}
			for n := range region {
				if n.OpType == "Softmax" && n.Domain == "" {
					b.attn = true
				}
			}
			out = append(out, b)
		}
	}
	return out
}

// pairLayers pairs attention and MLP blocks into layers: the MLP block's input is the attention
// block's output.
func pairLayers(blocks []*block) []*Layer {
	mlpByX := map[*graph.Value]*block{}
	for _, b := range blocks {
		if !b.attn {
			mlpByX[b.x] = b
		}
	}
	var layers []*Layer
	for _, b := range blocks {
		if !b.attn {
			continue
		}
		m := mlpByX[b.out]
		if m == nil {
			continue
		}
		l := &Layer{in: b.x, mid: b.out, out: m.out, LN1: *b.ln, LN2: *m.ln}
		l.attnBlock, l.mlpBlock = b, m
		layers = append(layers, l)
	}
	return layers
}

// dataInputs returns the inputs of n that carry its data (not shapes or indices), for walks
// along the tensor path.
func dataInputs(n *graph.Node) []*graph.Value {
	if n.Domain != "" {
		return nil
	}
	switch n.OpType {
	case "Reshape", "Expand", "Transpose", "Squeeze", "Unsqueeze", "Gather", "Slice", "Split",
		"Cast", "Identity", "Flatten", "Tile", "Dropout", "Softmax":
		return []*graph.Value{n.Input(0)}
	case "Add", "Sub", "Mul", "Div", "Concat":
		return n.Inputs()
	case "Where":
		return []*graph.Value{n.Input(1), n.Input(2)}
	}
	return nil
}

// fillLayer completes a paired layer: node sets, attention and MLP details.
func (a *analyzer) fillLayer(l *Layer) error {
	// Nodes: those that depend on In and compute Out, plus constants used only by them.
	b := backward([]*graph.Value{l.out}, map[*graph.Value]bool{l.in: true}, 0)
	f := forward([]*graph.Value{l.in}, b)
	rest := a.sorted(b)
	for i := len(rest) - 1; i >= 0; i-- {
		n := rest[i]
		if f[n] || !a.constNode(n) {
			continue
		}
		all := true
		for _, o := range n.Outputs() {
			if o == nil {
				continue
			}
			if o.IsGraphOutput() {
				all = false
			}
			for _, u := range o.Uses() {
				if !f[u.Node] {
					all = false
				}
			}
		}
		if all {
			f[n] = true
		}
	}
	l.nodes = a.sorted(f)
	l.In, l.Mid, l.Out = l.in.Name, l.mid.Name, l.out.Name
	l.Nodes = nodeRefs(l.nodes)
	l.Residual = [2]string{NodeRef(l.attnBlock.add), NodeRef(l.mlpBlock.add)}
	if err := a.fillAttention(l, f); err != nil {
		return err
	}
	return a.fillMLP(l, f)
}

func (a *analyzer) constNode(n *graph.Node) bool {
	for _, o := range n.Outputs() {
		if o != nil && !a.isConst(o) {
			return false
		}
	}
	return true
}

func (a *analyzer) fillAttention(l *Layer, layerNodes map[*graph.Node]bool) error {
	blk := l.attnBlock
	at := &l.Attention
	var sm *graph.Node
	for _, n := range a.sorted(blk.region) {
		if n.OpType == "Softmax" && n.Domain == "" {
			sm = n
			break
		}
	}
	at.Softmax = NodeRef(sm)
	out := a.linearBefore(blk.branch)
	if out == nil {
		return errAt(blk.add, "attention output projection not found: expected a MatMul+Add or Gemm with a weight initializer before the residual Add")
	}
	at.Out = *out
	var projs []*Linear
	for _, p := range a.linearsFrom(l.LN1.out) {
		if blk.region[p.node] {
			projs = append(projs, p)
		}
	}
	if len(projs) != 1 && len(projs) != 3 {
		return errAt(sm, "attention has %d input projections of its normalised input; expected 3 (q, k, v) or one packed", len(projs))
	}
	// The score MatMul feeds the Softmax; the context MatMul consumes it.
	var score *graph.Node
	var maskIns []*graph.Value
	seen := map[*graph.Node]bool{}
	queue := []*graph.Value{sm.Input(0)}
	for len(queue) > 0 && score == nil {
		v := queue[0]
		queue = queue[1:]
		n := producer(v)
		if n == nil || seen[n] || !blk.region[n] {
			continue
		}
		seen[n] = true
		if n.OpType == "MatMul" {
			score = n
			break
		}
		for _, in := range dataInputs(n) {
			if in == nil {
				continue
			}
			if p := producer(in); (p == nil || !layerNodes[p]) && !a.isScalar(in) && (n.OpType == "Add" || n.OpType == "Where") {
				maskIns = append(maskIns, in)
				continue
			}
			queue = append(queue, in)
		}
	}
	var ctx *graph.Node
	vals := []*graph.Value{sm.Output(0)}
	for i := 0; i < len(vals) && ctx == nil && i < 16; i++ {
		for _, c := range consumers(vals[i]) {
			if c.OpType == "MatMul" && c.Input(0) == vals[i] {
				ctx = c
				break
			}
			if slices.Contains([]string{"Cast", "Identity", "Dropout", "Reshape"}, c.OpType) {
				vals = append(vals, c.Output(0))
			}
		}
	}
	if score == nil || ctx == nil {
		return errAt(sm, "attention score or context MatMul not found around the Softmax")
	}
	q := a.projOf(score.Input(0), projs, blk.region)
	k := a.projOf(score.Input(1), projs, blk.region)
	v := a.projOf(ctx.Input(1), projs, blk.region)
	if q == nil || k == nil || v == nil {
		return errAt(sm, "cannot tell the q, k and v projections apart")
	}
	at.Q, at.K, at.V = *q, *k, *v
	at.Packed = q == k && k == v
	if !at.Packed && (q == k || k == v || q == v) {
		return errAt(sm, "q, k and v projections are not distinct")
	}
	for _, m := range maskIns {
		at.MaskInputs = append(at.MaskInputs, m.Name)
	}
	l.maskValues = maskIns
	l.attnScale = a.queryScale(score.Input(0), blk.region)
	l.headDims = a.headDims(projs, blk.region)
	at.Nodes = nodeRefs(a.within(blk.region, layerNodes, l.LN1.nodes))
	return nil
}

// projOf follows the data path back from v to one of projs.
func (a *analyzer) projOf(v *graph.Value, projs []*Linear, region map[*graph.Node]bool) *Linear {
	seen := map[*graph.Node]bool{}
	queue := []*graph.Value{v}
	for len(queue) > 0 {
		x := queue[0]
		queue = queue[1:]
		for _, p := range projs {
			if x == p.out {
				return p
			}
		}
		n := producer(x)
		if n == nil || seen[n] || !region[n] || n.OpType == "MatMul" {
			continue
		}
		seen[n] = true
		queue = append(queue, dataInputs(n)...)
	}
	return nil
}

// queryScale returns the scalar multiplying the query (or the scores), 0 when not found.
func (a *analyzer) queryScale(v *graph.Value, region map[*graph.Node]bool) float64 {
	for i := 0; v != nil && i < 12; i++ {
		n := producer(v)
		if n == nil || !region[n] {
			return 0
		}
		switch n.OpType {
		case "Mul", "Div":
			for k := 0; k < 2; k++ {
				if c, ok := constFloat(n.Input(k)); ok && c != 0 {
					if n.OpType == "Div" {
						return 1 / c
					}
					return c
				}
			}
		}
		ins := dataInputs(n)
		if len(ins) == 0 {
			return 0
		}
		v = ins[0]
	}
	return 0
}

// headDims collects the last constant dimension of the Reshapes applied to the projections'
// outputs: the head dimension, in [..., heads, head_dim] and [batch*heads, seq, head_dim].
func (a *analyzer) headDims(projs []*Linear, region map[*graph.Node]bool) []int64 {
	var out []int64
	for n := range region {
		if n.OpType != "Reshape" || n.Domain != "" {
			continue
		}
		if a.projOf(n.Input(0), projs, region) == nil {
			continue
		}
		if d, ok := lastConst(n.Input(1)); ok && d > 0 {
			out = append(out, d)
		}
	}
	slices.Sort(out)
	return out
}

// within returns the nodes of region that are layer nodes, minus the excluded ones.
func (a *analyzer) within(region, layer map[*graph.Node]bool, exclude []*graph.Node) []*graph.Node {
	set := map[*graph.Node]bool{}
	for n := range region {
		if layer[n] && !slices.Contains(exclude, n) {
			set[n] = true
		}
	}
	return a.sorted(set)
}

func (a *analyzer) isScalar(v *graph.Value) bool {
	t := constTensor(v)
	return t != nil && t.NumElements() == 1
}

func (a *analyzer) fillMLP(l *Layer, layerNodes map[*graph.Node]bool) error {
	blk := l.mlpBlock
	fc2 := a.linearBefore(blk.branch)
	if fc2 == nil {
		return errAt(blk.add, "MLP output projection not found: expected a MatMul+Add or Gemm with a weight initializer before the residual Add")
	}
	var fc1 *Linear
	for _, p := range a.linearsFrom(l.LN2.out) {
		if blk.region[p.node] {
			fc1 = p
		}
	}
	if fc1 == nil {
		return errAt(blk.add, "MLP input projection not found after the LayerNorm")
	}
	l.MLP.FC1, l.MLP.FC2 = *fc1, *fc2
	act := "unknown"
	for n := range blk.region {
		switch n.OpType {
		case "Sigmoid":
			act = "quick_gelu"
		case "Erf", "Gelu":
			act = "gelu"
		case "Tanh":
			act = "gelu_tanh"
		case "Relu":
			if act == "unknown" {
				act = "relu"
			}
		}
	}
	l.MLP.Activation = act
	l.MLP.Nodes = nodeRefs(a.within(blk.region, layerNodes, l.LN2.nodes))
	return nil
}

// heads derives the head count of a layer from its Reshape constants, or from the query scale.
func (l *Layer) heads(width int) (int, int) {
	count := map[int64]int{}
	best, bestN := int64(0), 0
	for _, d := range l.headDims {
		if d < int64(width) && int64(width)%d == 0 {
			count[d]++
			if count[d] > bestN || (count[d] == bestN && d > best) {
				best, bestN = d, count[d]
			}
		}
	}
	if best == 0 && l.attnScale > 0 {
		hd := int64(math.Round(1 / (l.attnScale * l.attnScale)))
		if hd > 0 && int64(width)%hd == 0 {
			best = hd
		}
	}
	if best == 0 {
		return 0, 0
	}
	return width / int(best), int(best)
}
