package clip

import (
	"fmt"
	"slices"
	"strings"

	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/graph"
)

// Discover finds the CLIP structure of a model: a combined export (both towers and the head)
// or one tower of a split export (no head; combine two with DiscoverSplit).
//
// Recognition is structural; names only break ties. It fails with an input error (errs.Input)
// naming the fused operator when the graph was optimised by ONNX Runtime, and saying what was
// expected when the model is not CLIP-like.
func Discover(m *graph.Model) (*Structure, error) {
	if m == nil || m.Graph == nil {
		return nil, errs.Input("the model has no graph")
	}
	if err := checkFusions(m.Graph); err != nil {
		return nil, err
	}
	a := newAnalyzer(m)
	ins := a.classifyInputs()
	if ins.pixel == nil && ins.ids == nil {
		return nil, errs.Input("not a CLIP model: expected a float image input [batch,3,H,W] (pixel_values) or int64 token ids [classes,seq] (input_ids), found inputs %s", describeInputs(a.inputs))
	}
	a.findNorms()
	layers := pairLayers(a.findBlocks())
	chains := chainLayers(layers)
	s := &Structure{Opset: a.opset}
	for _, ch := range chains {
		kind, ok := a.towerKind(ch[0].in, ins)
		if !ok {
			continue
		}
		if s.Tower(kind) != nil {
			if len(s.Tower(kind).Layers) >= len(ch) {
				continue
			}
		}
		t, err := a.buildTower(kind, ch, ins)
		if err != nil {
			return nil, err
		}
		if kind == Vision {
			s.Vision = t
		} else {
			s.Text = t
		}
	}
	if ins.pixel != nil && s.Vision == nil {
		return nil, errs.Input("no transformer layers found in the vision tower (input %q): expected residual Add chains around LayerNorm+attention and LayerNorm+MLP", ins.pixel.Name)
	}
	if ins.ids != nil && s.Text == nil {
		return nil, errs.Input("no transformer layers found in the text tower (input %q): expected residual Add chains around LayerNorm+attention and LayerNorm+MLP", ins.ids.Name)
	}
	if err := a.findHead(s); err != nil {
		return nil, err
	}
	s.Family = a.family(s)
	s.ClassAxes = ClassAxes{LogitsPerImage: 1}
	if s.Text != nil {
		s.ClassAxes.TextStream = s.Text.BatchAxis
	}
	a.nameParams(s)
	return s, nil
}

// DiscoverSplit discovers a split export: one model per tower, no head (the logit scale is
// DefaultLogitScale and the normalisation is left to the caller). Either model may hold both
// towers' layouts' usual extras (projection, unnormalised embeddings).
func DiscoverSplit(vision, text *graph.Model) (*Structure, error) {
	sv, err := Discover(vision)
	if err != nil {
		return nil, fmt.Errorf("vision model: %w", err)
	}
	st, err := Discover(text)
	if err != nil {
		return nil, fmt.Errorf("text model: %w", err)
	}
	if sv.Vision == nil {
		return nil, errs.Input("vision model: no vision tower found (expected an image input and its transformer)")
	}
	if st.Text == nil {
		return nil, errs.Input("text model: no text tower found (expected token ids and their transformer)")
	}
	if sv.Family != st.Family {
		return nil, errs.Input("the vision model looks like a %s export and the text model like a %s export; give two halves of the same export", sv.Family, st.Family)
	}
	s := &Structure{Family: sv.Family, Split: true, Opset: sv.Opset, Vision: sv.Vision, Text: st.Text}
	s.Head = Head{LogitScale: LogitScale{Default: true, Value: DefaultLogitScale}}
	s.ClassAxes = ClassAxes{LogitsPerImage: 1, TextStream: st.Text.BatchAxis}
	s.Vision.Model, s.Text.Model = "vision", "text"
	for _, p := range sv.Params {
		if p.Tower == Vision {
			s.Params = append(s.Params, p)
		}
	}
	for _, p := range st.Params {
		if p.Tower == Text {
			s.Params = append(s.Params, p)
		}
	}
	s.Unmapped = append(append([]string(nil), sv.Unmapped...), st.Unmapped...)
	return s, nil
}

// modelInputs are the graph inputs by role.
type modelInputs struct {
	pixel, ids *graph.Value
	masks      []*graph.Value
}

func (a *analyzer) classifyInputs() modelInputs {
	var mi modelInputs
	var ints []*graph.Value
	for _, in := range a.inputs {
		t := in.Type
		lname := strings.ToLower(in.Name)
		switch {
		case t.Elem.IsFloat() && (t.Rank() == 4 || (t.Rank() < 0 && (strings.Contains(lname, "pixel") || strings.Contains(lname, "image")))):
			if mi.pixel == nil {
				mi.pixel = in
			}
		case t.Elem == graph.Int64 || t.Elem == graph.Int32:
			if t.Rank() == 2 || t.Rank() < 0 {
				ints = append(ints, in)
			}
		}
	}
	// Token ids feed the token-embedding Gather; anything else integer is a mask.
	for _, in := range ints {
		if mi.ids == nil && a.feedsEmbeddingGather(in) {
			mi.ids = in
		}
	}
	if mi.ids == nil {
		for _, in := range ints {
			if !strings.Contains(strings.ToLower(in.Name), "mask") {
				mi.ids = in
				break
			}
		}
	}
	for _, in := range ints {
		if in != mi.ids {
			mi.masks = append(mi.masks, in)
		}
	}
	return mi
}

// feedsEmbeddingGather reports whether v indexes a Gather of a 2-D float initializer, through
// Casts.
func (a *analyzer) feedsEmbeddingGather(v *graph.Value) bool {
	vals := []*graph.Value{v}
	for i := 0; i < len(vals) && i < 4; i++ {
		for _, c := range consumers(vals[i]) {
			switch c.OpType {
			case "Gather":
				if c.Input(1) == vals[i] {
					if p := paramOf(c.Input(0)); p != nil && isFloatInit(p) && len(p.Const.Dims) == 2 {
						return true
					}
				}
			case "Cast":
				vals = append(vals, c.Output(0))
			}
		}
	}
	return false
}

func describeInputs(ins []*graph.Value) string {
	if len(ins) == 0 {
		return "none"
	}
	parts := make([]string, len(ins))
	for i, in := range ins {
		parts[i] = fmt.Sprintf("%s: %s", in.Name, in.Type)
	}
	return strings.Join(parts, ", ")
}

// chainLayers links layers whose output enters the next one, longest chains first.
func chainLayers(layers []*Layer) [][]*Layer {
	byIn := map[*graph.Value]*Layer{}
	outs := map[*graph.Value]bool{}
	for _, l := range layers {
		byIn[l.in] = l
		outs[l.out] = true
	}
	var chains [][]*Layer
	for _, l := range layers {
		if outs[l.in] {
			continue
		}
		var ch []*Layer
		for x := l; x != nil && len(ch) <= len(layers); x = byIn[x.out] {
			ch = append(ch, x)
		}
		chains = append(chains, ch)
	}
	slices.SortStableFunc(chains, func(x, y []*Layer) int { return len(y) - len(x) })
	return chains
}

// towerKind tells which tower a chain belongs to by the input its first layer depends on.
func (a *analyzer) towerKind(v *graph.Value, ins modelInputs) (TowerKind, bool) {
	switch {
	case ins.pixel != nil && a.dependsOn(v, ins.pixel):
		return Vision, true
	case ins.ids != nil && a.dependsOn(v, ins.ids):
		return Text, true
	}
	return "", false
}
