package bundle

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/skipgraph/skipgraph/clip"
	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/graph"
	"github.com/skipgraph/skipgraph/graph/onnxio"
)

// Split export file names (the transformers.js layout).
const (
	VisionModelFile = "vision_model.onnx"
	TextModelFile   = "text_model.onnx"
)

// findSplit returns the vision and text model files of a split export in dir (or dir/onnx).
func findSplit(dir string) (vision, text string, ok bool) {
	for _, d := range []string{dir, filepath.Join(dir, "onnx")} {
		v, t := filepath.Join(d, VisionModelFile), filepath.Join(d, TextModelFile)
		if fileExists(v) && fileExists(t) {
			return v, t, true
		}
	}
	return "", "", false
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// loadSplit loads a split export and joins the towers into one model with a CLIP head:
// normalised embeddings, logits_per_text = scale · text·imageᵀ and logits_per_image its
// transpose, with the default logit scale (the split files carry none).
func loadSplit(visionPath, textPath string) (*SourceModel, error) {
	vm, err := onnxio.Load(visionPath)
	if err != nil {
		return nil, err
	}
	tm, err := onnxio.Load(textPath)
	if err != nil {
		return nil, err
	}
	if err := checkOps(vm, visionPath); err != nil {
		return nil, err
	}
	if err := checkOps(tm, textPath); err != nil {
		return nil, err
	}
	vdt, err := upcastSource(vm, visionPath)
	if err != nil {
		return nil, err
	}
	tdt, err := upcastSource(tm, textPath)
	if err != nil {
		return nil, err
	}
	st, err := clip.DiscoverSplit(vm, tm)
	if err != nil {
		return nil, fmt.Errorf("%s + %s: %w", visionPath, textPath, err)
	}
	m, renamed, err := joinTowers(vm, tm, st)
	if err != nil {
		return nil, fmt.Errorf("joining %s and %s: %w", visionPath, textPath, err)
	}
	joined, err := clip.Discover(m)
	if err != nil {
		return nil, fmt.Errorf("joining %s and %s: %w", visionPath, textPath, err)
	}
	joined.Split = true
	joined.Head.LogitScale.Default = true
	src := &SourceModel{Model: m, Structure: joined, SplitNames: map[string]SplitName{}, SourceDTypes: vdt}
	src.hashes, src.paths = hashInBackground(visionPath, textPath), []string{visionPath, textPath}
	for _, v := range vm.Graph.Initializers {
		src.SplitNames[v.Name] = SplitName{File: 0, Name: v.Name}
	}
	for _, v := range tm.Graph.Initializers {
		src.SplitNames[renamed[v.Name]] = SplitName{File: 1, Name: v.Name}
		if dt, ok := tdt[v.Name]; ok {
			src.SourceDTypes[renamed[v.Name]] = dt
		}
	}
	return src, nil
}

// SplitName locates a joined model's initializer in the split source: which file, which name.
type SplitName struct {
	File int    `json:"file"`
	Name string `json:"name"`
}

// joinTowers copies the text model's graph into a copy of the vision model's graph (renaming
// values whose names clash) and adds the head. It returns the joined model and the text
// model's value names in it.
func joinTowers(vm, tm *graph.Model, st *clip.Structure) (*graph.Model, map[string]string, error) {
	m := vm.Clone()
	m.Src = nil
	g := m.Graph
	if v := tm.Opset(""); v > m.Opset("") {
		m.SetOpset("", v)
	}
	names := map[string]string{}
	vals := map[*graph.Value]*graph.Value{}
	// Each file names its own symbolic sizes (both call their batch batch_size): the text
	// tower's that the vision tower also uses are renamed, since one name is one size.
	visionSyms := map[string]bool{}
	for _, v := range g.Inputs {
		for _, d := range v.Type.Shape {
			if d.Param != "" {
				visionSyms[d.Param] = true
			}
		}
	}
	for _, v := range tm.Graph.Inputs {
		if v.Const != nil {
			continue
		}
		t := v.Type
		t.Shape = append([]graph.Dim(nil), t.Shape...)
		for i, d := range t.Shape {
			if visionSyms[d.Param] {
				t.Shape[i] = graph.Sym("text_" + d.Param)
			}
		}
		nv, err := g.AddInput(v.Name, t)
		if err != nil {
			return nil, nil, errs.Input("both towers have an input named %q", v.Name)
		}
		vals[v], names[v.Name] = nv, v.Name
	}
	for _, v := range tm.Graph.Initializers {
		nv, err := g.AddInitializer(g.UniqueName(v.Name), v.Const)
		if err != nil {
			return nil, nil, err
		}
		vals[v], names[v.Name] = nv, nv.Name
	}
	for _, n := range tm.Graph.Nodes() {
		ins := make([]*graph.Value, n.NumInputs())
		for i, in := range n.Inputs() {
			if in != nil {
				ins[i] = vals[in]
			}
		}
		outs := make([]string, n.NumOutputs())
		for i, o := range n.Outputs() {
			if o != nil {
				outs[i] = o.Name
			}
		}
		attrs := append([]graph.Attr(nil), n.Attrs...)
		nn := g.NewNode(n.OpType, n.Domain, n.Name, ins, outs, attrs...)
		for i, o := range n.Outputs() {
			if o != nil {
				no := nn.Output(i)
				no.Type = o.Type
				vals[o], names[o.Name] = no, no.Name
			}
		}
	}
	img := g.Value(st.Vision.Output)
	txt := vals[tm.Graph.Value(st.Text.Output)]
	if img == nil || txt == nil {
		return nil, nil, fmt.Errorf("tower outputs %q / %q not found", st.Vision.Output, st.Text.Output)
	}
	b := graph.NewBuilder(g, "/head")
	opset := m.Opset("")
	l2 := func(x *graph.Value) *graph.Value {
		var n *graph.Value
		if opset >= 18 {
			n = b.Op("ReduceL2", []*graph.Value{x, b.Int64s(-1)}, graph.IntAttr("keepdims", 1))
		} else {
			n = b.Op("ReduceL2", []*graph.Value{x}, graph.IntsAttr("axes", -1), graph.IntAttr("keepdims", 1))
		}
		return b.Op("Div", []*graph.Value{x, n})
	}
	imgN, txtN := l2(img), l2(txt)
	sim := b.Op("MatMul", []*graph.Value{txtN, b.Op("Transpose", []*graph.Value{imgN}, graph.IntsAttr("perm", 1, 0))})
	lpt := b.Op("Mul", []*graph.Value{sim, b.Scalar(graph.Float, clip.DefaultLogitScale)})
	lpi := b.Op("Transpose", []*graph.Value{lpt}, graph.IntsAttr("perm", 1, 0))
	// the head's batch axes are the towers' input batch axes (after the renaming above)
	classes, images := graph.Sym("text_batch_size"), graph.Sym("image_batch_size")
	batchOf := func(names []string, d *graph.Dim) {
		if len(names) > 0 {
			if v := g.Value(names[0]); v != nil && len(v.Type.Shape) > 0 && (v.Type.Shape[0].Param != "" || v.Type.Shape[0].Known()) {
				*d = v.Type.Shape[0]
			}
		}
	}
	batchOf(st.Vision.Inputs, &images)
	batchOf(st.Text.Inputs, &classes)
	embed := graph.UnknownDim()
	if st.Vision.Projection != nil {
		embed = graph.Fixed(int64(st.Vision.Projection.OutFeatures))
	}
	outs := []struct {
		v    *graph.Value
		name string
		dims []graph.Dim
	}{
		{lpi, "logits_per_image", []graph.Dim{images, classes}},
		{lpt, "logits_per_text", []graph.Dim{classes, images}},
		{txtN, "text_embeds", []graph.Dim{classes, embed}},
		{imgN, "image_embeds", []graph.Dim{images, embed}},
	}
	g.Outputs = nil
	for _, o := range outs {
		v := o.v
		if g.Value(o.name) != nil {
			v = b.Op("Identity", []*graph.Value{v})
			// the tower's own output keeps its name; the head's gets a fresh one
			if err := g.Rename(v, g.UniqueName(o.name)); err != nil {
				return nil, nil, err
			}
		} else if err := g.Rename(v, o.name); err != nil {
			return nil, nil, err
		}
		v.Type = graph.Type{Elem: graph.Float, Shape: o.dims, HasShape: true}
		g.AddOutput(v)
	}
	if err := g.Sort(); err != nil {
		return nil, nil, err
	}
	return m, names, g.Verify()
}
