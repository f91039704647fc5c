package clip

import (
	"slices"
	"sort"

	"github.com/skipgraph/skipgraph/graph"
)

// buildTower completes a tower from its chain of layers.
func (a *analyzer) buildTower(kind TowerKind, ch []*Layer, ins modelInputs) (*Tower, error) {
	t := &Tower{Kind: kind, g: a.g, an: a, Layout: BatchFirst, layerNodes: map[*graph.Node]int{}}
	for i, l := range ch {
		l.Index = i
		if err := a.fillLayer(l); err != nil {
			return nil, err
		}
		for _, n := range l.nodes {
			t.layerNodes[n] = i
		}
	}
	t.Layers = ch
	first, last := ch[0], ch[len(ch)-1]
	t.Width = int(first.Attention.Out.OutFeatures)
	if w := paramByName(a.g, first.LN1.Weight); w != nil && len(w.Const.Dims) == 1 {
		t.Width = int(w.Const.Dims[0])
	}
	t.MLPWidth = first.MLP.FC1.OutFeatures
	heads := map[[2]int]int{}
	var best [2]int
	for _, l := range ch {
		h, hd := l.heads(t.Width)
		if h == 0 {
			continue
		}
		k := [2]int{h, hd}
		heads[k]++
		if heads[k] > heads[best] {
			best = k
		}
	}
	t.Heads, t.HeadDim = best[0], best[1]

	// Entering the transformer: optional layout Transpose, optional pre-norm, embeddings.
	v := first.in
	if tr := producerOp(v, "Transpose"); tr != nil && isSeqSwap(tr) {
		t.Layout, t.BatchAxis = SequenceFirst, 1
		t.LayoutNodes = append(t.LayoutNodes, NodeRef(tr))
		v = tr.Input(0)
	}
	if ln := a.lnByOut[v]; ln != nil && !a.isLayerNorm(ln, ch) {
		t.PreNorm = ln
		v = ln.in
	}
	if err := a.fillEmbedding(t, v, ins); err != nil {
		return nil, err
	}

	// Leaving it: layout Transpose, pooling (vision), post-norm, pooling (text), projection.
	post, path := a.forwardTo(last.out, func(x *graph.Value) bool {
		for _, ln := range a.lnByIn[x] {
			if !a.isLayerNorm(ln, ch) {
				return true
			}
		}
		return false
	})
	var poolNodes []*graph.Node
	for _, n := range path {
		if n.OpType == "Transpose" && isSeqSwap(n) {
			t.LayoutNodes = append(t.LayoutNodes, NodeRef(n))
			continue
		}
		poolNodes = append(poolNodes, n)
	}
	feat := last.out
	if post != nil {
		for _, ln := range a.lnByIn[post] {
			if !a.isLayerNorm(ln, ch) {
				t.PostNorm = ln
				break
			}
		}
		feat = t.PostNorm.out
	}
	var proj *Linear
	projIn, path2 := a.forwardTo(feat, func(x *graph.Value) bool {
		for _, c := range consumers(x) {
			if (c.OpType == "MatMul" || c.OpType == "Gemm") && c.Input(0) == x {
				if l := a.linearAt(c); l != nil {
					proj = l
					return true
				}
			}
		}
		return false
	})
	poolNodes = append(poolNodes, path2...)
	t.Output = feat.Name
	if projIn != nil && proj != nil {
		t.Projection = proj
		t.Output = proj.out.Name
	} else if len(path2) > 0 {
		t.Output = path2[len(path2)-1].Output(0).Name
	}
	t.Pooling.Nodes = nodeRefs(poolNodes)
	if kind == Vision {
		t.Pooling.Kind = "class_token"
		for _, n := range poolNodes {
			if n.OpType == "Gather" || n.OpType == "Slice" {
				t.Pooling.Gather = NodeRef(n)
				break
			}
		}
	} else {
		a.fillTextPooling(t, poolNodes, ins)
	}

	// Sequence length and inputs.
	if kind == Text && ins.ids != nil {
		if sh := ins.ids.Type.Shape; len(sh) == 2 && sh[1].Known() {
			t.SeqLen = int(sh[1].Value)
		}
	}
	if p := paramByName(a.g, t.Embedding.PositionEmbedding); p != nil && len(p.Const.Dims) == 2 {
		t.Positions = int(p.Const.Dims[0])
		if kind == Vision {
			t.SeqLen = t.Positions
		}
	}
	inputs := map[string]bool{}
	out := a.g.Value(t.Output)
	for _, n := range a.inputsOf(out) {
		inputs[n] = true
	}
	for _, l := range ch {
		for _, m := range l.maskValues {
			for _, n := range a.inputsOf(m) {
				inputs[n] = true
			}
		}
	}
	for _, in := range a.inputs {
		if inputs[in.Name] {
			t.Inputs = append(t.Inputs, in.Name)
		}
	}
	a.fillMasks(t, ins)
	return t, nil
}

// isSeqSwap reports whether a Transpose swaps the first two axes of a rank-3 tensor.
func isSeqSwap(n *graph.Node) bool {
	perm, ok := n.AttrInts("perm")
	return ok && slices.Equal(perm, []int64{1, 0, 2})
}

func (a *analyzer) isLayerNorm(ln *Norm, ch []*Layer) bool {
	for _, l := range ch {
		if l.LN1.out == ln.out || l.LN2.out == ln.out {
			return true
		}
	}
	return false
}

func paramByName(g *graph.Graph, name string) *graph.Value {
	if name == "" {
		return nil
	}
	if v := g.Value(name); v != nil && v.Const != nil {
		return v
	}
	return nil
}

// poolOps are the ops between a tower's residual stream and its projection.
var poolOps = map[string]bool{
	"Transpose": true, "Gather": true, "GatherND": true, "GatherElements": true, "Slice": true,
	"Squeeze": true, "Unsqueeze": true, "Reshape": true, "Flatten": true, "Cast": true, "Identity": true,
}

// forwardTo walks forward from v along the data input of pooling ops until found holds, and
// returns the value found and the path's nodes.
func (a *analyzer) forwardTo(v *graph.Value, found func(*graph.Value) bool) (*graph.Value, []*graph.Node) {
	type item struct {
		v    *graph.Value
		path []*graph.Node
	}
	queue := []item{{v, nil}}
	seen := map[*graph.Node]bool{}
	for len(queue) > 0 {
		it := queue[0]
		queue = queue[1:]
		if found(it.v) {
			return it.v, it.path
		}
		for _, c := range consumers(it.v) {
			if seen[c] || c.Domain != "" || !poolOps[c.OpType] || c.Input(0) != it.v || len(it.path) > 12 {
				continue
			}
			seen[c] = true
			queue = append(queue, item{c.Output(0), append(slices.Clone(it.path), c)})
		}
	}
	return nil, nil
}

// fillEmbedding records the embedding part computing v.
func (a *analyzer) fillEmbedding(t *Tower, v *graph.Value, ins modelInputs) error {
	e := &t.Embedding
	e.Output = v.Name
	set := backward([]*graph.Value{v}, nil, 0)
	nodes := a.sorted(set)
	e.Nodes = nodeRefs(nodes)
	for _, n := range nodes {
		switch n.OpType {
		case "Conv":
			if w := paramOf(n.Input(1)); w != nil && isFloatInit(w) {
				e.Patch, e.PatchWeight = NodeRef(n), w.Name
			}
		case "Gather":
			if w := paramOf(n.Input(0)); w != nil && isFloatInit(w) && len(w.Const.Dims) == 2 && ins.ids != nil && dataFrom(n.Input(1), ins.ids) {
				e.TokenGather, e.TokenEmbedding = NodeRef(n), w.Name
			}
		}
	}
	for _, n := range nodes {
		for _, in := range n.Inputs() {
			w := paramOf(in)
			if w == nil || !isFloatInit(w) || w.Name == e.PatchWeight || w.Name == e.TokenEmbedding {
				continue
			}
			d := w.Const.Dims
			switch {
			case len(d) == 1 && int(d[0]) == t.Width && t.Kind == Vision && e.ClassEmbedding == "":
				e.ClassEmbedding = w.Name
			case len(d) == 2 && int(d[1]) == t.Width && e.PositionEmbedding == "":
				e.PositionEmbedding = w.Name
			case len(d) == 3 && d[0] == 1 && int(d[2]) == t.Width && e.PositionEmbedding == "":
				e.PositionEmbedding = w.Name
			}
		}
	}
	return nil
}

// fillTextPooling finds the end-of-text pooling among the nodes after the final norm.
func (a *analyzer) fillTextPooling(t *Tower, pool []*graph.Node, ins modelInputs) {
	p := &t.Pooling
	p.Kind = "eot_argmax"
	for _, n := range pool {
		if (n.OpType == "Gather" || n.OpType == "GatherND" || n.OpType == "GatherElements") && ins.ids != nil && a.dependsOn(n.Input(1), ins.ids) {
			p.Gather = NodeRef(n)
			for m := range indexAncestors(n.Input(1), 400) {
				if m.OpType == "ArgMax" {
					p.ArgMax, p.Index = NodeRef(m), m.Output(0).Name
					p.Form = "argmax"
					for e := range backward([]*graph.Value{m.Input(0)}, nil, 20) {
						if e.OpType == "Equal" {
							p.Form = "eos_equal"
							for k := 0; k < 2; k++ {
								if x, ok := constInts(e.Input(k)); ok && len(x) == 1 {
									p.EOSToken = x[0]
								}
							}
						}
					}
				}
			}
			break
		}
	}
}

// fillMasks records the mask values the layers add to their attention scores.
func (a *analyzer) fillMasks(t *Tower, ins modelInputs) {
	seen := map[*graph.Value]bool{}
	for _, l := range t.Layers {
		for _, m := range l.maskValues {
			if seen[m] {
				continue
			}
			seen[m] = true
			mk := Mask{Value: m.Name, Constant: a.isConst(m), Inputs: a.inputsOf(m), Kind: "causal"}
			for _, in := range ins.masks {
				if a.dependsOn(m, in) {
					mk.Kind = "padding"
				}
			}
			stop := map[*graph.Value]bool{}
			if len(t.Layers) > 0 {
				stop[t.Layers[0].in] = true
			}
			mk.Nodes = nodeRefs(a.sorted(backward([]*graph.Value{m}, stop, 2000)))
			t.Masks = append(t.Masks, mk)
		}
	}
	sort.SliceStable(t.Masks, func(i, j int) bool { return t.Masks[i].Kind < t.Masks[j].Kind })
}
