package bundle

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/skipgraph/skipgraph/clip"
	"github.com/skipgraph/skipgraph/graph"
	"github.com/skipgraph/skipgraph/graph/onnxio"
	"github.com/skipgraph/skipgraph/internal/onnxcheck"
	"github.com/skipgraph/skipgraph/internal/shapecheck"
	"github.com/skipgraph/skipgraph/internal/testenv"
	"github.com/skipgraph/skipgraph/plugins/cskip"
	"github.com/skipgraph/skipgraph/plugins/full"
	"github.com/skipgraph/skipgraph/plugins/lskip"
	"github.com/skipgraph/skipgraph/runtime"
	"github.com/skipgraph/skipgraph/synth"
	"github.com/skipgraph/skipgraph/tensorio"
)

// nonZeros names the NonZero nodes of g (each a device-to-host sync on an accelerator).
func nonZeros(g *graph.Graph) []string {
	var out []string
	for _, n := range g.Nodes() {
		if n.OpType == "NonZero" {
			out = append(out, n.Name)
		}
	}
	return out
}

// vitB16Source is a ViT-B/16-size synthetic export of a layout, in memory (weights stay lazy),
// with its structure discovered.
func vitB16Source(tb testing.TB, style string) *SourceModel {
	tb.Helper()
	return synthSource(tb, synth.Config{Style: style, Size: "vit-b-16", Opset: 17})
}

// synthSource builds a synthetic combined export and discovers its structure, as LoadSource
// would (without reading a file).
func synthSource(tb testing.TB, cfg synth.Config) *SourceModel {
	tb.Helper()
	res, err := synth.Build(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	m := res.Models[synth.ModelCombined]
	st, err := clip.Discover(m)
	if err != nil {
		tb.Fatal(err)
	}
	return &SourceModel{Model: m, Structure: st}
}

// stepSpecs are the strategies of the train steps checked here: full fine-tuning, LSkip from
// layer start, and LSkip plus CSkip at ratio 0.5.
func stepSpecs(start string) map[string][]StrategySpec {
	ls := StrategySpec{Strategy: lskip.Strategy{}, Args: map[string]string{"start": start}}
	return map[string][]StrategySpec{
		"full":        {{Strategy: full.Strategy{}}},
		"lskip":       {ls},
		"lskip+cskip": {ls, {Strategy: cskip.Strategy{}, Args: map[string]string{"ratio": "0.5"}}},
	}
}

// TestViTB16StaticBroadcasts builds the ViT-B/16 bundles of every synthetic layout (graphs only,
// weights stay lazy) for full fine-tuning, LSkip from layer 6 and LSkip+CSkip 0.5, and asserts
// that symbolic shape inference proved every broadcast reduction: no NonZero in any graph and
// nothing listed as dynamic in the manifest.
func TestViTB16StaticBroadcasts(t *testing.T) {
	for _, style := range []string{synth.StyleHF, synth.StyleOpenAI, synth.StyleOpenCLIP} {
		src := vitB16Source(t, style)
		specs := stepSpecs("6")
		for _, name := range []string{"full", "lskip", "lskip+cskip"} {
			t.Run(style+"/"+name, func(t *testing.T) {
				built, err := Build(context.Background(), src, Options{Strategies: specs[name]})
				if err != nil {
					t.Fatal(err)
				}
				if built.Graphs["train_step"] == nil || name != "full" && built.Graphs["features"] == nil {
					t.Fatalf("graphs built: %v", built.Graphs)
				}
				for key, gm := range built.Graphs {
					if nz := nonZeros(gm.Graph); len(nz) > 0 {
						t.Errorf("%s: %d NonZero nodes, e.g. %s", key, len(nz), nz[0])
					}
					if dyn := built.Manifest.Graphs[key].DynamicReductions; len(dyn) > 0 {
						t.Errorf("%s: manifest lists %d dynamic reductions", key, len(dyn))
					}
				}
			})
		}
	}
}

// tinySource is a small export to convert: a name and where to find it.
type tinySource struct {
	name string
	path func(t *testing.T) string
}

// tinySources are the reference export and small synthetic exports of each layout (combined
// and split, opsets 14 to 18, packed attention in-projection, stripped names).
func tinySources() []tinySource {
	synthSrc := func(cfg synth.Config) tinySource {
		cfg.Size = "tiny"
		name := fmt.Sprintf("%s-opset%d", cfg.Style, cfg.Opset)
		if cfg.Split {
			name += "-split"
		}
		if cfg.PackedInProj {
			name += "-packed"
		}
		return tinySource{name, func(t *testing.T) string {
			dir := t.TempDir()
			if _, err := synth.Write(cfg, dir); err != nil {
				t.Fatal(err)
			}
			if cfg.Split {
				return dir
			}
			return filepath.Join(dir, "model.onnx")
		}}
	}
	return []tinySource{
		{"fixture", func(t *testing.T) string { return testenv.FixtureFile(t, "clip-hf-tiny/model.onnx") }},
		synthSrc(synth.Config{Style: synth.StyleHF, Opset: 14, Split: true}),
		synthSrc(synth.Config{Style: synth.StyleOpenAI, Opset: 17, Split: true}),
		synthSrc(synth.Config{Style: synth.StyleOpenCLIP, Opset: 18}),
		synthSrc(synth.Config{Style: synth.StyleOpenAI, Opset: 14, PackedInProj: true, StripNames: true}),
	}
}

// TestWrittenStepsStatic converts the reference export and small synthetic exports (combined
// and split, opsets 14 to 18) with each strategy and asserts that no written graph holds a
// NonZero; the graphs pass ONNX's checker.
func TestWrittenStepsStatic(t *testing.T) {
	sources := tinySources()
	for _, s := range sources {
		for name, specs := range stepSpecs("1") {
			t.Run(s.name+"/"+name, func(t *testing.T) {
				src, err := LoadSource(s.path(t))
				if err != nil {
					t.Fatal(err)
				}
				out := filepath.Join(t.TempDir(), "bundle")
				man, err := Convert(context.Background(), src, out, Options{Strategies: specs, EmitGrads: true})
				if err != nil {
					t.Fatal(err)
				}
				var files []string
				for key, rec := range man.Graphs {
					path := filepath.Join(out, rec.File)
					files = append(files, path)
					m, err := onnxio.Load(path)
					if err != nil {
						t.Fatal(err)
					}
					if nz := nonZeros(m.Graph); len(nz) > 0 {
						t.Errorf("%s: %d NonZero nodes: %s", key, len(nz), strings.Join(nz, ", "))
					}
				}
				onnxcheck.Check(t, files...)
			})
		}
	}
}

// TestDynamicReductionsListed: with the model's input sizes anonymous (no dim_params) nothing
// proves that the attention mask's sizes are the token ids', so the fallback remains; the manifest lists exactly the NonZero
// nodes of the written train step, and the graph passes the checker.
func TestDynamicReductionsListed(t *testing.T) {
	src, err := LoadSource(testenv.FixtureFile(t, "clip-hf-tiny/model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range src.Model.Graph.Inputs {
		for i, d := range in.Type.Shape {
			if !d.Known() {
				in.Type.Shape[i] = graph.UnknownDim()
			}
		}
	}
	out := filepath.Join(t.TempDir(), "bundle")
	man, err := Convert(context.Background(), src, out, Options{Strategies: stepSpecs("1")["full"]})
	if err != nil {
		t.Fatal(err)
	}
	rec := man.Graphs["train_step"]
	m, err := onnxio.Load(filepath.Join(out, rec.File))
	if err != nil {
		t.Fatal(err)
	}
	nz := nonZeros(m.Graph)
	if len(nz) == 0 {
		t.Fatal("no dynamic reduction left: the test no longer exercises the fallback")
	}
	var listed []string
	for _, d := range rec.DynamicReductions {
		name, doc, _ := strings.Cut(d, ": ")
		listed = append(listed, name)
		if !strings.Contains(doc, "gradient of") {
			t.Errorf("%q does not say which gradient it serves", d)
		}
	}
	slices.Sort(nz)
	slices.Sort(listed)
	if !slices.Equal(nz, listed) {
		t.Errorf("manifest lists %v, the written graph has NonZero nodes %v", listed, nz)
	}
	onnxcheck.Check(t, filepath.Join(out, rec.File))
}

// TestTrainStepShapesAgreeWithORT checks the symbolic shapes of the written train steps of the
// small exports (full fine-tuning, and LSkip+CSkip) against ONNX Runtime: every intermediate
// value of the forward suffix, loss, backward pass and optimizer becomes an output, one step
// runs, and each inferred dimension, with the inputs' symbols bound to the fed sizes, must equal
// the size ORT produced. Dimensions that depend on data (CSkip's number of kept classes) cannot
// be evaluated and are only counted.
func TestTrainStepShapesAgreeWithORT(t *testing.T) {
	minChecked := map[string]int{"full": 1000, "lskip+cskip": 500}
	for _, ts := range tinySources() {
		for _, name := range []string{"full", "lskip+cskip"} {
			t.Run(ts.name+"/"+name, func(t *testing.T) { checkStepShapes(t, ts.path(t), name, minChecked[name]) })
		}
	}
}

// checkStepShapes converts model with the strategies stepSpecs names and compares the train
// step's inferred shapes with ORT's (at least least values checked). A size that depends on
// data (CSkip's K) is bound from ORT's first value holding it; the sizes built from it are
// checked.
func checkStepShapes(t *testing.T, model, name string, least int) {
	t.Helper()
	src, err := LoadSource(model)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "bundle")
	man, err := Convert(context.Background(), src, out, Options{Strategies: stepSpecs("1")[name]})
	if err != nil {
		t.Fatal(err)
	}
	feeds := RandomInputs(rand.New(rand.NewPCG(3, 4)), man, 3, 5)
	run := NewRunner(out, man, nil)
	if _, err := run.Features(feeds); err != nil {
		t.Fatal(err)
	}
	params, err := run.InitialParams()
	if err != nil {
		t.Fatal(err)
	}
	maps.Copy(feeds, params)
	rec := man.Graphs["train_step"]
	for _, in := range rec.Inputs {
		switch in.Role {
		case "optimizer_state":
			p := params[in.Param]
			feeds[in.Name], _ = tensorio.New(p.DType, p.Shape...)
		case "lr", "step":
			feeds[in.Name] = tensorio.Scalar(float32(1e-3))
		}
	}
	m, err := onnxio.Load(filepath.Join(out, rec.File))
	if err != nil {
		t.Fatal(err)
	}
	ins := map[string]*tensorio.Tensor{}
	for _, in := range m.Graph.Inputs {
		if f := feeds[in.Name]; f != nil {
			ins[in.Name] = f
		} else if in.Const == nil {
			t.Fatalf("no feed for input %s", in.Name)
		}
	}
	bind := map[string]int64{}
	shapecheck.Bind(m.Graph, ins, bind)
	infos := shapecheck.Expose(t, m, false)
	encoded, err := onnxio.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	s, err := runtime.NewSessionFromBytes("train-step-all-values", encoded, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Run(ins)
	if err != nil {
		t.Fatal(err)
	}
	fresh := shapecheck.BindFresh(infos, got, bind)
	checked, dataDependent := shapecheck.Compare(t, infos, got, bind)
	t.Logf("%d values checked, %d not evaluated; %d data-dependent sizes bound from ORT; %v", checked, dataDependent, fresh, bind)
	if checked < least || dataDependent > 0 {
		t.Errorf("%d values checked (want %d or more), %d not evaluated", checked, least, dataDependent)
	}
}
