package cost

import (
	"context"
	"github.com/skipgraph/skipgraph/internal/testenv"
	"math"
	"strconv"
	"testing"

	"github.com/skipgraph/skipgraph/bundle"
	"github.com/skipgraph/skipgraph/clip"
	"github.com/skipgraph/skipgraph/rewrite"
	"github.com/skipgraph/skipgraph/strategy"
	"github.com/skipgraph/skipgraph/synth"

	_ "github.com/skipgraph/skipgraph/plugins/cskip"
	_ "github.com/skipgraph/skipgraph/plugins/full"
	_ "github.com/skipgraph/skipgraph/plugins/lskip"
)

// fixtureSource loads the reference fixture clip-hf-tiny (see testenv.FixturesDir).
func fixtureSource(t *testing.T) *bundle.SourceModel {
	t.Helper()
	src, err := bundle.LoadSource(testenv.FixtureFile(t, "clip-hf-tiny/model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// synthSource builds a synthetic combined export (weights stay lazy).
func synthSource(t testing.TB, cfg synth.Config) *bundle.SourceModel {
	t.Helper()
	res, err := synth.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := res.Models[synth.ModelCombined]
	st, err := clip.Discover(m)
	if err != nil {
		t.Fatal(err)
	}
	return &bundle.SourceModel{Model: m, Structure: st}
}

type source struct {
	name string
	load func(t *testing.T) *bundle.SourceModel
}

func sources() []source {
	return []source{
		{"fixture", fixtureSource},
		{"synth-hf-tiny", func(t *testing.T) *bundle.SourceModel { return synthSource(t, synth.Config{Style: "hf", Size: "tiny"}) }},
		{"synth-openai-tiny", func(t *testing.T) *bundle.SourceModel {
			return synthSource(t, synth.Config{Style: "openai", Size: "tiny", Opset: 17})
		}},
		{"synth-openclip-tiny", func(t *testing.T) *bundle.SourceModel {
			return synthSource(t, synth.Config{Style: "openclip", Size: "tiny", Opset: 18})
		}},
		{"synth-openai-tiny-packed", func(t *testing.T) *bundle.SourceModel {
			return synthSource(t, synth.Config{Style: "openai", Size: "tiny", Opset: 17, PackedInProj: true})
		}},
		{"synth-hf-vit-b-16", func(t *testing.T) *bundle.SourceModel {
			return synthSource(t, synth.Config{Style: "hf", Size: "vit-b-16", Opset: 17})
		}},
	}
}

func spec(t testing.TB, name string, args map[string]string) bundle.StrategySpec {
	t.Helper()
	s, ok := strategy.Builtin(name)
	if !ok {
		t.Fatalf("no built-in strategy %s", name)
	}
	return bundle.StrategySpec{Strategy: s, Args: args}
}

func estimate(t testing.TB, src *bundle.SourceModel, s Settings, specs ...bundle.StrategySpec) *Estimate {
	t.Helper()
	e, err := ForSpecs(context.Background(), src, specs, s)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func lskipAt(t testing.TB, omega int) bundle.StrategySpec {
	return spec(t, "lskip", map[string]string{"start": strconv.Itoa(omega)})
}

func cskipOn(t testing.TB) bundle.StrategySpec { return spec(t, "cskip", nil) }

var step = Settings{Batch: 4, Classes: 100}

func numLayers(st *clip.Structure) int {
	return min(st.Vision.NumLayers(), st.Text.NumLayers())
}

func TestMonotonicInOmega(t *testing.T) {
	for _, sc := range sources() {
		t.Run(sc.name, func(t *testing.T) {
			src := sc.load(t)
			for _, withCSkip := range []bool{false, true} {
				var prev *Estimate
				for omega := 0; omega <= numLayers(src.Structure); omega++ {
					specs := []bundle.StrategySpec{lskipAt(t, omega)}
					if withCSkip {
						specs = append(specs, cskipOn(t))
					}
					e := estimate(t, src, step, specs...)
					if prev != nil {
						p, c := prev.Total, e.Total
						if c.TrainableParams >= p.TrainableParams || c.OptimizerBytes >= p.OptimizerBytes {
							t.Errorf("cskip=%v omega %d: trainable %d (state %d) not below omega %d's %d (%d)", withCSkip, omega, c.TrainableParams, c.OptimizerBytes, omega-1, p.TrainableParams, p.OptimizerBytes)
						}
						if c.StepFLOPs() >= p.StepFLOPs() || c.ActivationBytes >= p.ActivationBytes {
							t.Errorf("cskip=%v omega %d: step %.4g FLOPs / %.4g B not below omega %d's %.4g / %.4g", withCSkip, omega, c.StepFLOPs(), c.ActivationBytes, omega-1, p.StepFLOPs(), p.ActivationBytes)
						}
						if e.TextPrefixFLOPs <= prev.TextPrefixFLOPs || e.ImagePrefixFLOPs <= prev.ImagePrefixFLOPs {
							t.Errorf("cskip=%v omega %d: prefix %.4g/%.4g not above %.4g/%.4g", withCSkip, omega, e.TextPrefixFLOPs, e.ImagePrefixFLOPs, prev.TextPrefixFLOPs, prev.ImagePrefixFLOPs)
						}
						if c.Params != p.Params {
							t.Errorf("total parameters change with omega: %d vs %d", c.Params, p.Params)
						}
					}
					prev = e
				}
			}
		})
	}
}

func costEqual(a, b Cost) bool {
	near := func(x, y float64) bool { return math.Abs(x-y) <= 1e-9*math.Max(math.Abs(x), math.Abs(y)) }
	return a.Params == b.Params && a.TrainableParams == b.TrainableParams && a.TrainableBytes == b.TrainableBytes &&
		a.OptimizerBytes == b.OptimizerBytes && near(a.ForwardFLOPs, b.ForwardFLOPs) &&
		near(a.BackwardFLOPs, b.BackwardFLOPs) && near(a.ActivationBytes, b.ActivationBytes)
}

func TestCSkipReducesOnlyDeepTextLayers(t *testing.T) {
	for _, sc := range sources() {
		t.Run(sc.name, func(t *testing.T) {
			src := sc.load(t)
			L := numLayers(src.Structure)
			for _, omega := range []int{0, L / 2, L} {
				off := estimate(t, src, step, lskipAt(t, omega))
				on := estimate(t, src, step, lskipAt(t, omega), cskipOn(t))
				if on.CSkip == nil || off.CSkip != nil {
					t.Fatalf("CSkip recorded wrongly: on %v off %v", on.CSkip, off.CSkip)
				}
				if !costEqual(off.Tower(clip.Vision).Cost, on.Tower(clip.Vision).Cost) {
					t.Errorf("omega %d: CSkip changed the vision tower: %+v vs %+v", omega, off.Tower(clip.Vision).Cost, on.Tower(clip.Vision).Cost)
				}
				ot, nt := off.Tower(clip.Text), on.Tower(clip.Text)
				if ot.PrefixFLOPsPerItem != nt.PrefixFLOPsPerItem || off.TextPrefixFLOPs != on.TextPrefixFLOPs {
					t.Errorf("omega %d: CSkip changed the cached prefix", omega)
				}
				if want := float64(on.CSkip.K) + on.CSkip.ExpectedTail; nt.Rows != want || nt.Rows >= ot.Rows {
					t.Errorf("omega %d: text rows %g with CSkip, want K+tail = %g < %g", omega, nt.Rows, want, ot.Rows)
				}
				for i := range ot.Parts {
					op, np := ot.Parts[i], nt.Parts[i]
					if op.Params != np.Params || op.TrainableParams != np.TrainableParams || op.OptimizerBytes != np.OptimizerBytes {
						t.Errorf("omega %d %s: CSkip changed the parameters", omega, op.Name)
					}
					switch {
					case !op.Runs:
						if !costEqual(op.Cost, np.Cost) {
							t.Errorf("omega %d %s (cached): CSkip changed its cost", omega, op.Name)
						}
					case op.ForwardFLOPs > 0:
						if np.ForwardFLOPs >= op.ForwardFLOPs || np.StepFLOPs() >= op.StepFLOPs() {
							t.Errorf("omega %d %s: CSkip did not reduce FLOPs (%g vs %g)", omega, op.Name, np.StepFLOPs(), op.StepFLOPs())
						}
					}
				}
				if on.Total.StepFLOPs() >= off.Total.StepFLOPs() || on.Total.ActivationBytes >= off.Total.ActivationBytes {
					t.Errorf("omega %d: CSkip did not reduce the step", omega)
				}
			}
		})
	}
}

func TestFullEqualsOmegaZeroButEmbeddings(t *testing.T) {
	for _, sc := range sources() {
		t.Run(sc.name, func(t *testing.T) {
			src := sc.load(t)
			full := estimate(t, src, step, spec(t, "full", nil))
			zero := estimate(t, src, step, lskipAt(t, 0))
			var embedParams int64
			for _, ft := range full.Towers {
				zt := zero.Tower(ft.Kind)
				if ft.Cached || !zt.Cached || zt.Start != 0 {
					t.Errorf("%s: cache flags full %v zero %v/%d", ft.Kind, ft.Cached, zt.Cached, zt.Start)
				}
				for i, fp := range ft.Parts {
					zp := zt.Parts[i]
					if fp.Name == "embedding" {
						if zp.Runs || zp.TrainableParams != 0 || zp.StepFLOPs() != 0 || fp.TrainableParams != fp.Params {
							t.Errorf("%s embedding: full %+v, omega 0 %+v", ft.Kind, fp, zp)
						}
						embedParams += fp.TrainableParams
						continue
					}
					if !costEqual(fp.Cost, zp.Cost) {
						t.Errorf("%s %s: full %+v != omega 0 %+v", ft.Kind, fp.Name, fp.Cost, zp.Cost)
					}
				}
				// At omega 0 the cached prefix is the embedding alone.
				if want := ft.Parts[0].ForwardFLOPs / ft.Rows; zt.PrefixFLOPsPerItem != want {
					t.Errorf("%s: prefix per item %g, want the embedding's %g", ft.Kind, zt.PrefixFLOPsPerItem, want)
				}
			}
			if d := full.Total.TrainableParams - zero.Total.TrainableParams; d != embedParams || d <= 0 {
				t.Errorf("trainable difference %d, want the embeddings' %d", d, embedParams)
			}
			if !costEqual(full.Head, zero.Head) {
				t.Errorf("head: full %+v, omega 0 %+v", full.Head, zero.Head)
			}
		})
	}
}

func TestOptimizerState(t *testing.T) {
	src := synthSource(t, synth.Config{Size: "tiny"})
	for _, tc := range []struct {
		opt   rewrite.OptimizerConfig
		slots int64
	}{
		{rewrite.OptimizerConfig{}, 1},
		{rewrite.DefaultSGD, 1},
		{rewrite.OptimizerConfig{Kind: "sgd"}, 0},
		{rewrite.DefaultAdamW, 2},
	} {
		e := estimate(t, src, Settings{Batch: 2, Classes: 3, Optimizer: tc.opt}, lskipAt(t, 1))
		if want := e.Total.TrainableParams * MasterBytes * tc.slots; e.Total.OptimizerBytes != want || e.Total.TrainableBytes != e.Total.TrainableParams*MasterBytes {
			t.Errorf("%+v: optimizer %d bytes, want %d", tc.opt, e.Total.OptimizerBytes, want)
		}
	}
}

func TestBadSettings(t *testing.T) {
	src := synthSource(t, synth.Config{Size: "tiny"})
	for _, s := range []Settings{{Batch: 0, Classes: 3}, {Batch: 1, Classes: 0}, {Batch: 1, Classes: 1, Optimizer: rewrite.OptimizerConfig{Kind: "lion"}}} {
		if _, err := ForSpecs(context.Background(), src, nil, s); err == nil {
			t.Errorf("%+v: no error", s)
		}
	}
}

// TestViTB16Range checks the vit-b-16 full fine-tuning figures against the published model's
// size (149.6M parameters) and the usual per-image and per-prompt forward costs (about 35
// GFLOPs per 224px image, about 6 GFLOPs per 77-token prompt, multiply-add = 2).
func TestViTB16Range(t *testing.T) {
	src := synthSource(t, synth.Config{Style: "hf", Size: "vit-b-16", Opset: 17})
	e := estimate(t, src, step, spec(t, "full", nil))
	in := func(what string, v, lo, hi float64) {
		if v < lo || v > hi {
			t.Errorf("%s = %.4g, want in [%.4g, %.4g]", what, v, lo, hi)
		}
	}
	in("parameters", float64(e.Total.Params), 149e6, 150.5e6)
	in("trainable", float64(e.Total.TrainableParams), 149e6, 150.5e6)
	if e.Total.Params-e.Total.TrainableParams != 1 {
		t.Errorf("full FT freezes %d parameters, want the logit scale only", e.Total.Params-e.Total.TrainableParams)
	}
	v, x := e.Tower(clip.Vision), e.Tower(clip.Text)
	in("vision forward per image", v.ForwardFLOPs/4, 34e9, 36e9)
	in("text forward per class", x.ForwardFLOPs/100, 5.8e9, 6.2e9)
	in("step/forward", e.Total.StepFLOPs()/e.Total.ForwardFLOPs, 2.9, 3.0)
	in("SGD state bytes", float64(e.Total.OptimizerBytes), 595e6, 602e6)

	skip := estimate(t, src, step, lskipAt(t, 6), spec(t, "cskip", map[string]string{"ratio": "0.5"}))
	if skip.CSkip.K != 50 {
		t.Errorf("K = %d, want 50", skip.CSkip.K)
	}
	in("skip trainable share", float64(skip.Total.TrainableParams)/float64(e.Total.TrainableParams), 0.3, 0.5)
	in("skip step FLOPs share", skip.Total.StepFLOPs()/e.Total.StepFLOPs(), 0.25, 0.35)
}

// TestFormulasMatchGraph counts the MatMul, Gemm and Conv FLOPs of each export from shapes
// evaluated over its graph, and compares them with the full model's forward estimate.
func TestFormulasMatchGraph(t *testing.T) {
	for _, sc := range sources() {
		t.Run(sc.name, func(t *testing.T) {
			src := sc.load(t)
			st := src.Structure
			const B, C = 3, 5
			S := st.Text.SeqLen
			if S == 0 {
				S = st.Text.Positions
			}
			img := st.Vision.SeqLen - 1
			side := int64(math.Sqrt(float64(img)))
			var patch []int64
			for _, p := range st.ParamsOf(st.Vision.Embedding.PatchWeight) {
				patch = p.Shape
			}
			inputs := map[string]shaped{}
			for _, v := range src.Model.Graph.Inputs {
				switch v.Name {
				case "pixel_values", "image":
					inputs[v.Name] = shaped{shape: []int64{B, patch[1], side * patch[2], side * patch[3]}}
				case "input_ids", "attention_mask", "text":
					inputs[v.Name] = shaped{shape: []int64{C, int64(S)}}
				}
			}
			got, perOp, err := matmulFLOPs(src.Model.Graph, inputs)
			if err != nil {
				t.Fatal(err)
			}
			e := estimate(t, src, Settings{Batch: B, Classes: C}, spec(t, "full", nil))
			if math.Abs(got-e.Total.ForwardFLOPs) > 1e-9*got {
				t.Errorf("graph count %.6g FLOPs (%v), formulas %.6g", got, perOp, e.Total.ForwardFLOPs)
			}
			t.Logf("graph %.6g FLOPs, formulas %.6g", got, e.Total.ForwardFLOPs)
		})
	}
}

// TestFrozenLayers checks the gradient flag: a frozen layer below every trainable parameter
// costs its forward only; a frozen layer above one costs dX only (no dW) and keeps no
// projection inputs.
func TestFrozenLayers(t *testing.T) {
	src := synthSource(t, synth.Config{Style: "hf", Size: "vit-b-16", Opset: 17})
	st := src.Structure
	freeze := func(keep func(p *clip.Param) bool) *strategy.Plan {
		p := &strategy.Plan{}
		for _, prm := range st.Params {
			if prm.Role == clip.RoleLogitScale || keep(prm) {
				p.Freeze = append(p.Freeze, prm.Initializer)
			}
		}
		return p
	}
	layerOf := func(e *Estimate, i int) Part { return *e.Tower(clip.Vision).Part("layer." + strconv.Itoa(i)) }
	full, err := Compute(st, freeze(func(*clip.Param) bool { return false }), step)
	if err != nil {
		t.Fatal(err)
	}
	// Embeddings and vision layers 0..5 frozen, no boundary: those layers run forward only.
	below, err := Compute(st, freeze(func(p *clip.Param) bool {
		return p.Tower == clip.Vision && (p.Role == clip.RoleEmbedding || p.Role == clip.RolePreNorm || (p.Role == clip.RoleLayer && p.Layer < 6))
	}), step)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 6; i++ {
		l := layerOf(below, i)
		if !l.Runs || l.Grad || l.BackwardFLOPs != 0 || l.ActivationBytes != 0 || l.ForwardFLOPs != layerOf(full, i).ForwardFLOPs {
			t.Errorf("frozen layer %d below the trained ones: %+v", i, l)
		}
	}
	if l, f := layerOf(below, 6), layerOf(full, 6); !costEqual(l.Cost, f.Cost) {
		t.Errorf("first trained layer %+v != full FT's %+v", l.Cost, f.Cost)
	}
	// Vision layer 6 frozen between trained layers: dX only.
	mid, err := Compute(st, freeze(func(p *clip.Param) bool { return p.Tower == clip.Vision && p.Role == clip.RoleLayer && p.Layer == 6 }), step)
	if err != nil {
		t.Fatal(err)
	}
	l, f := layerOf(mid, 6), layerOf(full, 6)
	v := st.Vision
	N := float64(step.Batch * v.SeqLen)
	S, D := float64(v.SeqLen), float64(v.Width)
	attn := 4 * float64(step.Batch) * S * S * D
	// A trainable layer's backward is dX and dW of each projection plus twice the attention
	// matmuls: 2 x forward. A frozen one drops dW: forward plus the attention matmuls once more.
	if want := l.ForwardFLOPs + attn; !l.Grad || l.BackwardFLOPs != want {
		t.Errorf("frozen middle layer backward %g, want forward + attention = %g", l.BackwardFLOPs, want)
	}
	if f.BackwardFLOPs != 2*f.ForwardFLOPs {
		t.Errorf("trainable layer backward %g, want 2 x forward %g", f.BackwardFLOPs, 2*f.ForwardFLOPs)
	}
	M := float64(v.MLPWidth)
	kept := (2*(N*D+2*N) + 3*N*D + float64(step.Batch*v.Heads)*S*S + N*M) * 4
	if l.ActivationBytes != kept {
		t.Errorf("frozen middle layer keeps %g bytes, want %g (norms, q, k, v, probabilities, MLP hidden)", l.ActivationBytes, kept)
	}
}
