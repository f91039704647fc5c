package synth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/skipgraph/skipgraph/internal/testenv"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/skipgraph/skipgraph/graph"
	"github.com/skipgraph/skipgraph/graph/onnxio"
)

// smallConst is the largest initializer (in elements) that may be neither a parameter nor a
// known buffer.
const smallConst = 16

// expectedParams is the number of parameters of a tower with L layers: embeddings and the
// pre-LayerNorm (vision: class, patch, position, ln w/b = 5; text: token, position = 2), 16 per
// layer, the final LayerNorm and the projection (3).
func expectedParams(tower string, layers int) int {
	if tower == TowerVision {
		return 5 + 16*layers + 3
	}
	return 2 + 16*layers + 3
}

func TestBuildStructure(t *testing.T) {
	for _, style := range []string{StyleHF, StyleOpenAI, StyleOpenCLIP} {
		for _, size := range []string{"tiny", "vit-b-32", "vit-l-14"} {
			for _, opset := range []int{14, 17, 18} {
				for _, split := range []bool{false, true} {
					cfg := Config{Style: style, Size: size, Opset: opset, Split: split, Seed: 7}
					t.Run(fmt.Sprintf("%s/%s/opset%d/split=%v", style, size, opset, split), func(t *testing.T) {
						t.Parallel()
						checkStructure(t, cfg)
					})
				}
			}
		}
	}
}

func checkStructure(t *testing.T, cfg Config) {
	t.Helper()
	res, err := Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d, tr := res.Dims, res.Truth
	wantModels := []string{ModelCombined}
	if cfg.Split {
		wantModels = []string{ModelText, ModelVision}
	}
	var got []string
	for k := range res.Models {
		got = append(got, k)
	}
	sort.Strings(got)
	if !slices.Equal(got, wantModels) {
		t.Fatalf("models %v, want %v", got, wantModels)
	}
	for key, m := range res.Models {
		g := m.Graph
		if err := g.Verify(); err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		if m.Opset("") != int64(cfg.Opset) {
			t.Errorf("%s: opset %d, want %d", key, m.Opset(""), cfg.Opset)
		}
		// every initializer is a parameter, a known buffer or a small constant
		for _, v := range g.Initializers {
			p := tr.ByInitializer(key, v.Name)
			_, buf := tr.Buffers[key][v.Name]
			if p == nil && !buf && v.Const.NumElements() > smallConst {
				t.Errorf("%s: initializer %s %v is not accounted for", key, v.Name, v.Const.Dims)
			}
			if p != nil && !slices.Equal(p.Shape, v.Const.Dims) {
				t.Errorf("%s: %s: truth shape %v, initializer %v", key, p.Canonical, p.Shape, v.Const.Dims)
			}
		}
		// structure only: building must not generate the weights
		if cfg.Size != "tiny" {
			for _, v := range g.Initializers {
				if v.Const.NumElements() > 1<<16 && v.Const.Loaded() {
					t.Errorf("%s: %s was materialised by Build", key, v.Name)
					break
				}
			}
		}
		hist := opHistogram(g)
		switch {
		case cfg.Opset >= 17 && (hist["ReduceMean"] > 0 || hist["LayerNormalization"] == 0):
			t.Errorf("%s: opset %d wants LayerNormalization, got %v", key, cfg.Opset, hist)
		case cfg.Opset < 17 && (hist["LayerNormalization"] > 0 || hist["ReduceMean"] == 0):
			t.Errorf("%s: opset %d wants decomposed LayerNorm, got %v", key, cfg.Opset, hist)
		}
		for _, n := range g.Nodes() {
			switch n.OpType {
			case "ReduceL2", "ReduceMean":
				_, hasAttr := n.AttrInts("axes")
				if cfg.Opset >= 18 && (hasAttr || n.NumInputs() != 2) || cfg.Opset < 18 && (!hasAttr || n.NumInputs() != 1) {
					t.Errorf("%s: %s at opset %d has the wrong axes form", key, n, cfg.Opset)
				}
			case "Unsqueeze":
				if n.NumInputs() != 2 {
					t.Errorf("%s: %s takes its axes as an attribute", key, n)
				}
			}
			if n.Name == "" {
				t.Errorf("%s: node %s has no name", key, n)
			}
		}
		checkIO(t, res, key, g)
	}

	// towers
	for _, tc := range []struct {
		name                 string
		layers, width, heads int
		mlp, seq             int
	}{
		{TowerVision, d.VisionLayers, d.VisionWidth, d.VisionHeads, d.VisionMLP, d.Patches()},
		{TowerText, d.TextLayers, d.TextWidth, d.TextHeads, d.TextMLP, d.Context},
	} {
		tw := tr.Towers[tc.name]
		if tw == nil {
			t.Fatalf("no %s tower in the truth", tc.name)
		}
		if tw.Layers != tc.layers || tw.Width != tc.width || tw.Heads != tc.heads || tw.MLP != tc.mlp || tw.SeqLen != tc.seq {
			t.Errorf("%s tower %+v, want layers %d width %d heads %d mlp %d seq %d", tc.name, tw, tc.layers, tc.width, tc.heads, tc.mlp, tc.seq)
		}
		if len(tw.Boundaries) != tc.layers+1 {
			t.Errorf("%s: %d boundaries, want %d", tc.name, len(tw.Boundaries), tc.layers+1)
		}
		g := res.Models[tw.Model].Graph
		for i, name := range tw.Boundaries {
			v := g.Value(name)
			if v == nil {
				t.Errorf("%s: boundary %d %q is not a value of %s", tc.name, i, name, tw.Model)
				continue
			}
			// the residual stream feeds the next layer's first LayerNorm and its residual Add
			if i < tc.layers && v.NumUses() < 2 {
				t.Errorf("%s: boundary %d %q has %d uses", tc.name, i, name, v.NumUses())
			}
		}
		if g.Value(tw.Embeds) == nil {
			t.Errorf("%s: embeds %q missing", tc.name, tw.Embeds)
		}
		if n := len(tr.TowerParams(tc.name)); n != expectedParams(tc.name, tc.layers) {
			t.Errorf("%s: %d parameters in the truth, want %d", tc.name, n, expectedParams(tc.name, tc.layers))
		}
		perLayer := map[int]int{}
		for _, k := range tr.TowerParams(tc.name) {
			if p := tr.Params[k]; p.Layer >= 0 {
				perLayer[p.Layer]++
			}
		}
		for i := 0; i < tc.layers; i++ {
			if perLayer[i] != 16 {
				t.Errorf("%s layer %d: %d parameters, want 16", tc.name, i, perLayer[i])
			}
		}
	}
	total := expectedParams(TowerVision, d.VisionLayers) + expectedParams(TowerText, d.TextLayers)
	if !cfg.Split {
		total++ // logit_scale
	}
	if len(tr.Params) != total {
		t.Errorf("%d parameters, want %d", len(tr.Params), total)
	}
	for _, p := range tr.Params {
		g := res.Models[p.Model].Graph
		v := g.Value(p.Initializer)
		if v == nil || !v.IsInitializer() {
			t.Errorf("%s: initializer %q missing from %s", p.Canonical, p.Initializer, p.Model)
		}
	}
	checkParamLayouts(t, res)
}

// checkParamLayouts checks the per-style conventions of parameter layouts.
func checkParamLayouts(t *testing.T, res *Result) {
	tr, d := res.Truth, res.Dims
	for _, p := range tr.Params {
		anon := strings.HasPrefix(p.Initializer, "onnx::")
		switch {
		case strings.Contains(p.Canonical, "in_proj_"):
			if !anon || p.Rows == nil || p.Rows[1]-p.Rows[0] != p.Shape[0] || p.Transposed != strings.Contains(p.Canonical, "weight") {
				t.Errorf("%s: in-projection slice %+v", p.Canonical, p)
			}
		case tr.Style == StyleHF && strings.HasSuffix(p.Canonical, ".weight") && len(p.Shape) == 2 && !strings.Contains(p.Canonical, "embedding"):
			if !anon || !p.Transposed {
				t.Errorf("%s: HF Linear weights are anonymous and transposed: %+v", p.Canonical, p)
			}
		case tr.Style != StyleHF && (strings.HasSuffix(p.Canonical, "c_fc.weight") || strings.HasSuffix(p.Canonical, "c_proj.weight")):
			if !anon || !p.Transposed {
				t.Errorf("%s: MLP weights are anonymous and transposed: %+v", p.Canonical, p)
			}
		default:
			if anon || p.Transposed || p.Rows != nil || p.Initializer != p.Canonical {
				t.Errorf("%s: want a named initializer in torch layout: %+v", p.Canonical, p)
			}
		}
	}
	if tr.Style != StyleHF {
		for _, name := range []string{"visual.proj", "text_projection"} {
			if p := tr.Params[name]; p == nil || p.Transposed || !slices.Equal(p.Shape, []int64{int64(map[string]int{"visual.proj": d.VisionWidth, "text_projection": d.TextWidth}[name]), int64(d.Embed)}) {
				t.Errorf("%s: %+v", name, p)
			}
		}
	}
}

// checkIO checks the graph inputs and outputs of one model.
func checkIO(t *testing.T, res *Result, key string, g *graph.Graph) {
	t.Helper()
	d := res.Dims
	names := func(vs []*graph.Value) []string {
		var out []string
		for _, v := range vs {
			out = append(out, v.Name+":"+v.Type.String())
		}
		return out
	}
	img := fmt.Sprintf("3,%d,%d]", d.ImageSize, d.ImageSize)
	var wantIn, wantOut []string
	switch {
	case key == ModelText:
		seq := "sequence_length"
		if res.Config.Style != StyleHF {
			seq = fmt.Sprint(d.Context)
		}
		wantIn = []string{"input_ids:int64[batch_size," + seq + "]"}
		wantOut = []string{fmt.Sprintf("text_embeds:float32[batch_size,%d]", d.Embed)}
	case key == ModelVision:
		wantIn = []string{"pixel_values:float32[batch_size," + img}
		wantOut = []string{fmt.Sprintf("image_embeds:float32[batch_size,%d]", d.Embed)}
	case res.Config.Style == StyleHF:
		wantIn = []string{"input_ids:int64[text_batch_size,sequence_length]", "pixel_values:float32[image_batch_size," + img,
			"attention_mask:int64[text_batch_size,sequence_length]"}
		wantOut = []string{"logits_per_image:float32[image_batch_size,text_batch_size]", "logits_per_text:float32[text_batch_size,image_batch_size]",
			fmt.Sprintf("text_embeds:float32[text_batch_size,%d]", d.Embed), fmt.Sprintf("image_embeds:float32[image_batch_size,%d]", d.Embed)}
	default:
		wantIn = []string{"image:float32[image_batch_size," + img, fmt.Sprintf("text:int64[text_batch_size,%d]", d.Context)}
		wantOut = []string{"logits_per_image:float32[image_batch_size,text_batch_size]", "logits_per_text:float32[text_batch_size,image_batch_size]"}
	}
	if got := names(g.Inputs); !slices.Equal(got, wantIn) {
		t.Errorf("%s: inputs %v, want %v", key, got, wantIn)
	}
	if got := names(g.Outputs); !slices.Equal(got, wantOut) {
		t.Errorf("%s: outputs %v, want %v", key, got, wantOut)
	}
}

func opHistogram(g *graph.Graph) map[string]int {
	h := map[string]int{}
	for _, n := range g.Nodes() {
		h[n.OpType]++
	}
	return h
}

// fixturePath returns a file of the reference fixtures (testdata, see testenv.FixturesDir).
func fixturePath(t *testing.T, rel string) string {
	t.Helper()
	return testenv.FixtureFile(t, rel)
}

var anonName = regexp.MustCompile(`^(onnx::[A-Za-z]+_|Constant_)[0-9]+$`)

// normName hides the exporter's running numbers in anonymous names.
func normName(s string) string {
	if m := anonName.FindStringSubmatch(s); m != nil {
		return m[1] + "N"
	}
	return s
}

// TestHFMatchesFixture compares the tiny HF model with the reference export made by torch: the
// same op histogram, and node for node the same names, op types, attributes and wiring (up to
// the exporter's running numbers in anonymous names).
func TestHFMatchesFixture(t *testing.T) {
	ref, err := onnxio.Load(fixturePath(t, "clip-hf-tiny/model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := Build(Config{Style: StyleHF, Size: "tiny", Opset: 14})
	if err != nil {
		t.Fatal(err)
	}
	g, rg := res.Models[ModelCombined].Graph, ref.Graph
	if h, rh := opHistogram(g), opHistogram(rg); !mapsEqual(h, rh) {
		t.Errorf("op histogram differs:\n got  %v\n want %v", h, rh)
	}
	nodes, rnodes := g.Nodes(), rg.Nodes()
	if len(nodes) != len(rnodes) {
		t.Fatalf("%d nodes, fixture has %d", len(nodes), len(rnodes))
	}
	bad := 0
	for i := range nodes {
		if a, b := nodeSig(nodes[i]), nodeSig(rnodes[i]); a != b {
			t.Errorf("node %d:\n got  %s\n want %s", i, a, b)
			if bad++; bad > 5 {
				t.FailNow()
			}
		}
	}
	// initializers: same count, and the fixture's map to torch parameters agrees with the truth
	if len(g.Initializers) != len(rg.Initializers) {
		t.Errorf("%d initializers, fixture has %d", len(g.Initializers), len(rg.Initializers))
	}
	var refMap struct {
		Initializers map[string]struct {
			Torch      string  `json:"torch"`
			Transposed bool    `json:"transposed"`
			Rows       []int64 `json:"rows"`
		} `json:"initializers"`
	}
	raw, err := os.ReadFile(fixturePath(t, "clip-hf-tiny/reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &refMap); err != nil {
		t.Fatal(err)
	}
	for init, info := range refMap.Initializers {
		p := res.Truth.Params[info.Torch]
		rv := rg.Value(init)
		if p == nil || rv == nil {
			t.Errorf("fixture parameter %s (%s) is not in the truth", info.Torch, init)
			continue
		}
		if p.Transposed != info.Transposed || !slices.Equal(p.Shape, rv.Const.Dims) || normName(p.Initializer) != normName(init) {
			t.Errorf("%s: truth %+v, fixture %s transposed=%v %v", info.Torch, p, init, info.Transposed, rv.Const.Dims)
		}
	}
	if len(refMap.Initializers) != len(res.Truth.Params) {
		t.Errorf("truth has %d parameters, the fixture %d", len(res.Truth.Params), len(refMap.Initializers))
	}
}

func nodeSig(n *graph.Node) string {
	var ins, outs []string
	for _, v := range n.Inputs() {
		ins = append(ins, normName(v.Name))
	}
	for _, v := range n.Outputs() {
		outs = append(outs, normName(v.Name))
	}
	var attrs []string
	for _, a := range n.Attrs {
		s := a.Name + "="
		switch a.Type {
		case graph.AttrTensor:
			s += tensorSig(a.T)
		case graph.AttrInt:
			s += fmt.Sprint(a.I)
		case graph.AttrInts:
			s += fmt.Sprint(a.Ints)
		case graph.AttrFloat:
			s += fmt.Sprint(a.F)
		default:
			s += fmt.Sprint(a.Type)
		}
		attrs = append(attrs, s)
	}
	return fmt.Sprintf("%s %s(%s)->%s {%s}", normName(n.Name), n.OpType, strings.Join(ins, ","), strings.Join(outs, ","), strings.Join(attrs, " "))
}

func tensorSig(t *graph.Tensor) string {
	b, err := t.Bytes()
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("%s%v:%x", t.DType, t.Dims, b)
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestStripNames(t *testing.T) {
	for _, style := range []string{StyleHF, StyleOpenAI} {
		res, err := Build(Config{Style: style, StripNames: true})
		if err != nil {
			t.Fatal(err)
		}
		g := res.Models[ModelCombined].Graph
		for _, n := range g.Nodes() {
			if n.Name != "" {
				t.Fatalf("%s: node %s keeps its name", style, n)
			}
			for _, o := range n.Outputs() {
				if !o.IsGraphOutput() && strings.ContainsAny(o.Name, "/:") {
					t.Fatalf("%s: value %s keeps a scoped name", style, o.Name)
				}
			}
		}
		for _, tw := range res.Truth.Towers {
			for _, b := range tw.Boundaries {
				if g.Value(b) == nil {
					t.Errorf("%s: boundary %q is not in the graph", style, b)
				}
			}
		}
		for _, p := range res.Truth.Params {
			if g.Value(p.Initializer) == nil {
				t.Errorf("%s: %s: initializer %q missing", style, p.Canonical, p.Initializer)
			}
		}
	}
}

func TestWeightsSeeded(t *testing.T) {
	data := func(seed int64) map[string][]byte {
		res, err := Build(Config{Style: StyleOpenAI, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string][]byte{}
		for k, p := range res.Truth.Params {
			v := res.Models[p.Model].Graph.Value(p.Initializer)
			b, err := v.Const.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			out[k] = b
		}
		return out
	}
	a, b, c := data(1), data(1), data(2)
	seen := map[string]string{}
	for k := range a {
		if !bytes.Equal(a[k], b[k]) {
			t.Errorf("%s differs between two builds with the same seed", k)
		}
		if k != "logit_scale" && bytes.Equal(a[k], c[k]) {
			t.Errorf("%s is the same under another seed", k)
		}
		if o, dup := seen[string(a[k])]; dup {
			t.Errorf("%s and %s hold the same values", k, o)
		}
		seen[string(a[k])] = k
	}
}

func TestSplitSharesWeights(t *testing.T) {
	comb, err := Build(Config{Style: StyleHF, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	split, err := Build(Config{Style: StyleHF, Seed: 3, Split: true})
	if err != nil {
		t.Fatal(err)
	}
	for k, p := range split.Truth.Params {
		q := comb.Truth.Params[k]
		a, _ := split.Models[p.Model].Graph.Value(p.Initializer).Const.Bytes()
		b, _ := comb.Models[q.Model].Graph.Value(q.Initializer).Const.Bytes()
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs between the split and the combined export", k)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{Style: "keras"},
		{Size: "vit-h-14"},
		{Opset: 13},
		{Opset: 19},
		{Gelu: "tanh"},
		{Dims: &Dims{ImageSize: 30, PatchSize: 8, VisionWidth: 32, VisionLayers: 1, VisionHeads: 2, VisionMLP: 64,
			Vocab: 10, Context: 4, TextWidth: 32, TextLayers: 1, TextHeads: 2, TextMLP: 64, Embed: 8}},
		{Dims: &Dims{}},
	} {
		if _, err := Build(cfg); err == nil {
			t.Errorf("Build(%+v) succeeded", cfg)
		}
	}
}

func TestExplicitDimsAndClasses(t *testing.T) {
	d := Dims{ImageSize: 24, PatchSize: 6, VisionWidth: 24, VisionLayers: 3, VisionHeads: 3, VisionMLP: 40,
		Vocab: 50, Context: 6, TextWidth: 16, TextLayers: 1, TextHeads: 4, TextMLP: 32, Embed: 8}
	res, err := Build(Config{Style: StyleOpenCLIP, Dims: &d, Classes: 5})
	if err != nil {
		t.Fatal(err)
	}
	g := res.Models[ModelCombined].Graph
	if s := g.Inputs[1].Type.String(); s != "int64[5,6]" {
		t.Errorf("text input %s, want int64[5,6]", s)
	}
	if h := opHistogram(g); h["Erf"] != d.VisionLayers+d.TextLayers || h["Sigmoid"] != 0 {
		t.Errorf("open_clip wants erf GELU: %v", h)
	}
	if res.Truth.Towers[TowerVision].Layers != 3 || res.Truth.Towers[TowerVision].SeqLen != 17 {
		t.Errorf("vision tower %+v", res.Truth.Towers[TowerVision])
	}
}
