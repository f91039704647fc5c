package bundle

import (
	"context"
	"fmt"

	"github.com/skipgraph/skipgraph/clip"
	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/graph"
	"github.com/skipgraph/skipgraph/rewrite"
)

// CSkipClassesOutput is the train-step output listing the class ids kept at that step.
const CSkipClassesOutput = "cskip.classes"

// LogitsOutput is the train-step output holding the logits the loss is computed from: one row
// per image, one column per class (per kept class, in the order of CSkipClassesOutput, with
// CSkip). It is computed only when bound (Stepper.Fetch).
const LogitsOutput = "logits"

// Build makes the bundle's graphs and manifest in memory.
func Build(ctx context.Context, src *SourceModel, opts Options) (*Built, error) {
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if opts.Optimizer.Kind == "" {
		opts.Optimizer = rewrite.DefaultSGD
	}
	if _, err := precisionDType(opts.Precision); err != nil {
		return nil, err
	}
	st := src.Structure
	if !st.Head.Present || st.Head.LogitsPerImage == "" {
		return nil, errs.Input("the model has no logits_per_image head; convert a combined CLIP export (split exports: pass the folder holding vision_model.onnx and text_model.onnx)")
	}
	plan, records, err := Plan(ctx, src, opts.Strategies)
	if err != nil {
		return nil, err
	}
	man := &Manifest{
		Format:     FormatVersion,
		Source:     Source{Family: string(st.Family), Opset: src.Model.Opset(""), Split: st.Split},
		Strategies: records,
		Optimizer:  opts.Optimizer,
		LRGroups:   map[string]float64{},
		LogitScale: st.Head.LogitScale.Value,
		Graphs:     map[GraphKey]*GraphRecord{},
	}
	for k, v := range DefaultLR {
		man.LRGroups[k] = v
	}
	for k, v := range opts.LR {
		man.LRGroups[k] = v
	}

	trainable := plan.Trainable(st)
	if len(trainable) == 0 {
		return nil, errs.Input("the strategies leave no parameter to train")
	}
	man.Parameters = paramRecords(src.Model, st, trainable)
	for i := range man.Parameters {
		if dt, ok := src.SourceDTypes[man.Parameters[i].Initializer]; ok {
			man.Parameters[i].SourceDType = dt.String()
		}
		if sn, ok := src.SplitNames[man.Parameters[i].Initializer]; ok {
			sn := sn
			man.Parameters[i].Split = &sn
		}
	}
	describeInputs(man, src.Model, st)

	built := &Built{Manifest: man, Graphs: map[GraphKey]*graph.Model{}, src: src}
	cuts := map[string]*graph.Value{}
	for _, bd := range plan.StopGradients {
		if bd.Cache {
			cuts[bd.Tower] = src.Model.Graph.Value(bd.Value)
		}
	}
	for _, t := range st.Towers() {
		rec := TowerRecord{Kind: string(t.Kind), Layers: t.NumLayers(), Width: t.Width, Heads: t.Heads}
		for _, bd := range plan.StopGradients {
			if bd.Tower == string(t.Kind) {
				rec.Start = bd.Layer
				if bd.Cache {
					rec.State = stateName(bd.Tower)
					rec.StateAxes = stateAxes(t)
				}
			}
		}
		man.Towers = append(man.Towers, rec)
	}

	env := &buildEnv{src: src, plan: plan, trainable: trainable, cuts: cuts, man: man, opts: opts}
	for _, p := range Pipelines {
		if p.Graph == SourceGraph || (p.Graph == GraphFeatures && len(cuts) == 0) {
			continue // the source is prepared by LoadSource; nothing frozen: no features graph
		}
		switch p.Graph {
		case GraphFeatures:
			logf("building %s (frozen prefix)", p.File)
		case GraphTrainStep:
			logf("building %s (backward pass, %s optimizer)", p.File, opts.Optimizer.Kind)
		default:
			logf("building %s", p.File)
		}
		m, c, err := runPipeline(p.Graph, env)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.File, err)
		}
		if p.Graph == GraphTrainStep {
			man.CSkip = result[*gatherResult](c, ClassGather).record
		}
		built.Graphs[p.Graph] = m
		man.Graphs[p.Graph] = describe(p.File, m, man, env.io)
	}
	return built, nil
}

// groupOf is a parameter's LR group: its tower.
func groupOf(p *clip.Param) string {
	if p.Tower == "" {
		return "head"
	}
	return string(p.Tower)
}

func paramRecords(m *graph.Model, st *clip.Structure, trainable map[string]bool) []ParamRecord {
	var out []ParamRecord
	seen := map[string]int{}
	for _, p := range st.Params {
		if i, ok := seen[p.Initializer]; ok {
			out[i].Canonical = append(out[i].Canonical, p.Canonical)
			continue
		}
		v := m.Graph.Value(p.Initializer)
		if v == nil || v.Const == nil {
			continue
		}
		r := ParamRecord{
			Initializer: p.Initializer, Canonical: []string{p.Canonical}, Transposed: p.Transposed,
			Shape: v.Const.Dims, DType: graph.Float.String(), SourceDType: v.Const.DType.String(),
			Trainable: trainable[p.Initializer], Tower: string(p.Tower), Layer: p.Layer, Role: string(p.Role),
		}
		if r.Trainable {
			r.Group = groupOf(p)
		}
		seen[p.Initializer] = len(out)
		out = append(out, r)
	}
	return out
}

func describeInputs(man *Manifest, m *graph.Model, st *clip.Structure) {
	if t := st.Text; t != nil {
		rec := &TextRecord{ContextLength: t.Positions, EOSToken: t.Pooling.EOSToken, PadWithEOS: st.Family == clip.FamilyHF}
		for _, in := range t.Inputs {
			v := m.Graph.Value(in)
			switch {
			case v != nil && v.Type.Elem == graph.Int64 && rec.InputIDs == "" && (in == "input_ids" || in == "text" || len(t.Inputs) == 1):
				rec.InputIDs = in
			case in == "attention_mask":
				rec.AttentionMask = in
			}
		}
		if rec.InputIDs == "" && len(t.Inputs) > 0 {
			rec.InputIDs = t.Inputs[0]
		}
		if rec.ContextLength == 0 {
			rec.ContextLength = t.SeqLen
		}
		if rec.EOSToken == 0 {
			// argmax pooling (OpenAI): the end-of-text token is the largest id of the vocabulary
			if v := m.Graph.Value(t.Embedding.TokenEmbedding); v != nil && v.Const != nil && len(v.Const.Dims) == 2 {
				rec.EOSToken = v.Const.Dims[0] - 1
			}
		}
		man.Text = rec
	}
	if t := st.Vision; t != nil && len(t.Inputs) > 0 {
		rec := &VisionRecord{Input: t.Inputs[0]}
		if v := m.Graph.Value(t.Inputs[0]); v != nil {
			if dims := v.Type.Shape; len(dims) == 4 && dims[2].Known() {
				rec.ImageSize = int(dims[2].Value)
			}
		}
		man.Vision = rec
	}
}

// stateAxes names the axes of a tower's residual stream.
func stateAxes(t *clip.Tower) []string {
	batch := "batch"
	if t.Kind == clip.Text {
		batch = "classes"
	}
	if t.Layout == clip.SequenceFirst {
		return []string{"sequence", batch, "width"}
	}
	return []string{batch, "sequence", "width"}
}

// stateType is the type of a tower's cached residual stream. Its batch axis (and the text
// sequence axis, when the model does not fix it) is the tower's first input's, so that the
// train step's shapes can be proved equal to those of inputs it still reads (an attention
// mask); otherwise the axes get names of their own.
func stateType(m *graph.Model, t *clip.Tower) graph.Type {
	axes := stateAxes(t)
	batch := graph.Sym(string(t.Kind) + "_batch")
	if t.Kind == clip.Text {
		batch = graph.Sym("text_classes")
	}
	seq := graph.Sym(string(t.Kind) + "_sequence")
	if t.SeqLen > 0 {
		seq = graph.Fixed(int64(t.SeqLen))
	}
	if len(t.Inputs) > 0 {
		if in := m.Graph.Value(t.Inputs[0]); in != nil && in.IsGraphInput() && len(in.Type.Shape) >= 1 {
			named := func(d graph.Dim) bool { return d.Param != "" || d.Known() }
			if d := in.Type.Shape[0]; named(d) {
				batch = d
			}
			if d := in.Type.Shape; t.Kind == clip.Text && t.SeqLen <= 0 && len(d) == 2 && named(d[1]) {
				seq = d[1]
			}
		}
	}
	dims := make([]graph.Dim, 3)
	for i, a := range axes {
		switch a {
		case "sequence":
			dims[i] = seq
		case "width":
			dims[i] = graph.Fixed(int64(t.Width))
		default:
			dims[i] = batch
		}
	}
	return graph.Type{Elem: graph.Float, Shape: dims, HasShape: true}
}

// castParam makes a float32 master input feed the nodes that read a parameter of another dtype.
func castParam(g *graph.Graph, v *graph.Value, dt graph.DType) error {
	uses := v.Uses()
	b := graph.NewBuilder(g, "master")
	c := b.Op("Cast", []*graph.Value{v}, graph.IntAttr("to", int64(dt)))
	for _, u := range uses {
		u.Node.SetInput(u.Index, c)
	}
	return g.Sort()
}
