package bundle

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/skipgraph/skipgraph/graph/onnxio"
	"github.com/skipgraph/skipgraph/internal/onnxcheck"
	"github.com/skipgraph/skipgraph/plugins/cskip"
	"github.com/skipgraph/skipgraph/plugins/lskip"
	"github.com/skipgraph/skipgraph/runtime"
	"github.com/skipgraph/skipgraph/synth"
	"github.com/skipgraph/skipgraph/tensorio"
)

// randomBatch makes inputs for a tiny synthetic CLIP: images, C prompts ending in the
// end-of-text token (the largest id, as CLIP's vocabularies have it), and labels.
func randomBatch(r *rand.Rand, man *Manifest, images, classes int) map[string]*tensorio.Tensor {
	d := map[string]*tensorio.Tensor{}
	size := int64(man.Vision.ImageSize)
	px := make([]float32, int64(images)*3*size*size)
	for i := range px {
		px[i] = float32(r.NormFloat64())
	}
	d[man.Vision.Input], _ = tensorio.FromSlice([]int64{int64(images), 3, size, size}, px)
	ctx := man.Text.ContextLength
	ids := make([]int64, classes*ctx)
	mask := make([]int64, classes*ctx)
	for c := 0; c < classes; c++ {
		end := 2 + c%(ctx-2)
		for j := 0; j < ctx; j++ {
			switch {
			case j < end:
				ids[c*ctx+j] = 1 + r.Int64N(man.Text.EOSToken-2)
				mask[c*ctx+j] = 1
			case j == end:
				ids[c*ctx+j] = man.Text.EOSToken
				mask[c*ctx+j] = 1
			}
		}
	}
	d[man.Text.InputIDs], _ = tensorio.FromSlice([]int64{int64(classes), int64(ctx)}, ids)
	if man.Text.AttentionMask != "" {
		d[man.Text.AttentionMask], _ = tensorio.FromSlice([]int64{int64(classes), int64(ctx)}, mask)
	}
	lab := make([]int64, images)
	for i := range lab {
		lab[i] = r.Int64N(int64(classes))
	}
	d["labels"], _ = tensorio.FromSlice([]int64{int64(images)}, lab)
	return d
}

// TestFamiliesFiniteDifference converts synthetic exports of every family (combined and split)
// with LSkip+CSkip, runs features.onnx and train_step.onnx on ONNX Runtime, and checks the
// gradient of the loss along a random direction over all trainable parameters against central
// finite differences of the train step's own loss. The graphs run in float32, so the tolerance
// is 2e-4 relative rather than 1e-4: the loss passes through ~1-2k float32 ops (rounding noise
// ~1e-6 relative), divided by the step h = 2e-3; the direction includes the unit gradient so
// the derivative is large against that noise, and Richardson extrapolation of two central
// differences makes the truncation error O(h⁴). Observed errors are 1e-6 to 7e-5.
func TestFamiliesFiniteDifference(t *testing.T) {
	lskip1 := StrategySpec{Strategy: lskip.Strategy{}, Args: map[string]string{"start": "1"}}
	cskipHalf := StrategySpec{Strategy: cskip.Strategy{}, Args: map[string]string{"ratio": "0.5", "lambda": "0"}}
	both := []StrategySpec{lskip1, cskipHalf}
	cases := []struct {
		cfg   synth.Config
		specs []StrategySpec
		name  string
	}{
		{synth.Config{Style: "hf", Opset: 17}, both, "lskip+cskip"},
		{synth.Config{Style: "openai", Opset: 14}, both, "lskip+cskip"},
		{synth.Config{Style: "openclip", Opset: 18}, both, "lskip+cskip"},
		{synth.Config{Style: "hf", Opset: 14, Split: true}, both, "lskip+cskip"},
		{synth.Config{Style: "openai", Opset: 17, Split: true}, both, "lskip+cskip"},
		{synth.Config{Style: "hf", Opset: 14}, []StrategySpec{cskipHalf}, "cskip"},
		{synth.Config{Style: "openai", Opset: 17}, []StrategySpec{cskipHalf}, "cskip"},
		{synth.Config{Style: "openai", Opset: 14, Split: true}, []StrategySpec{lskip1}, "lskip"},
	}
	for _, tc := range cases {
		cfg := tc.cfg
		cfg.Size, cfg.Seed = "tiny", 3
		name := fmt.Sprintf("%s-opset%d", cfg.Style, cfg.Opset)
		if cfg.Split {
			name += "-split"
		}
		t.Run(name+"/"+tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := synth.Write(cfg, dir); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "model.onnx")
			if cfg.Split {
				path = dir
			}
			src, err := LoadSource(path)
			if err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, "bundle")
			man, err := Convert(context.Background(), src, out, Options{EmitGrads: true, Strategies: tc.specs})
			if err != nil {
				t.Fatal(err)
			}
			var files []string
			for _, g := range man.Graphs {
				files = append(files, filepath.Join(out, g.File))
				if m, err := onnxio.Load(filepath.Join(out, g.File)); err != nil {
					t.Fatal(err)
				} else {
					for _, n := range m.Graph.Nodes() {
						if n.Domain != "" {
							t.Fatalf("%s: non-standard op %s::%s", g.File, n.Domain, n.OpType)
						}
					}
				}
			}
			onnxcheck.Check(t, files...)
			r := rand.New(rand.NewPCG(1, 2))
			const classes = 6
			d := randomBatch(r, man, 4, classes)
			if rec := man.Graphs["features"]; rec != nil {
				fs, err := runtime.NewSession(filepath.Join(out, rec.File), nil)
				if err != nil {
					t.Fatal(err)
				}
				fin := map[string]*tensorio.Tensor{}
				for _, in := range rec.Inputs {
					fin[in.Name] = d[in.Name]
				}
				states, err := fs.Run(fin)
				fs.Close()
				if err != nil {
					t.Fatal(err)
				}
				for k, v := range states {
					d[k] = v
				}
			}
			params, err := InitialParams(out, man)
			if err != nil {
				t.Fatal(err)
			}
			// The direction: a random unit vector plus the unit gradient (computed below), so the
			// derivative along it is large against float32 rounding noise while every
			// parameter's gradient still enters the check.
			dir0 := map[string][]float32{}
			var norm float64
			for _, name := range sortedKeys(params) {
				p := params[name]
				v := make([]float32, len(p.Float32s()))
				for i := range v {
					v[i] = float32(r.NormFloat64())
					norm += float64(v[i]) * float64(v[i])
				}
				dir0[name] = v
			}
			// prototypes: random vectors, the same at every evaluation
			pv := make([]float32, classes*16)
			for i := range pv {
				pv[i] = float32(r.NormFloat64()) / 4
			}
			protos, _ := tensorio.FromSlice([]int64{classes, 16}, pv)
			lossAt := func(h float64) (float64, *Stepper) {
				ps := map[string]*tensorio.Tensor{}
				for name, p := range params {
					q := p.Clone()
					f := q.Float32s()
					for i := range f {
						f[i] += float32(h * float64(dir0[name][i]) / norm)
					}
					ps[name] = q
				}
				st, err := OpenStepper(out, man, ps, nil, nil)
				if err != nil {
					t.Fatal(err)
				}
				for _, in := range man.Graphs["train_step"].Inputs {
					var err error
					switch in.Role {
					case "image", "text_input", "state", "labels":
						err = st.Feed(in.Name, d[in.Name])
					case "lr", "step":
						err = st.FeedScalar(in.Name, 0)
					case "cskip_prototypes":
						err = st.Feed(in.Name, protos)
					case "cskip_k":
						kt, _ := tensorio.FromSlice([]int64{1}, []int64{int64(cskip.Config{Ratio: 0.5, Max: 50}.TopK(classes))})
						err = st.Feed(in.Name, kt)
					case "cskip_tail":
						tt, _ := tensorio.FromSlice([]int64{0}, []int64{})
						err = st.Feed(in.Name, tt)
					}
					if err != nil {
						t.Fatalf("feeding %s: %v", in.Name, err)
					}
				}
				loss, err := st.Step()
				if err != nil {
					t.Fatal(err)
				}
				return loss, st
			}
			l0, st := lossAt(0)
			grads := map[string][]float32{}
			var gnorm float64
			for name := range params {
				grads[name] = append([]float32(nil), st.Output(name+"_grad").Float32s()...)
				for _, x := range grads[name] {
					gnorm += float64(x) * float64(x)
				}
			}
			st.Close()
			gnorm, norm = math.Sqrt(gnorm), math.Sqrt(norm)
			var analytic, dnorm float64
			for name, d := range dir0 {
				for i := range d {
					d[i] = float32(float64(d[i])/norm + float64(grads[name][i])/gnorm)
					dnorm += float64(d[i]) * float64(d[i])
				}
			}
			norm = math.Sqrt(dnorm)
			for name, d := range dir0 {
				for i, x := range grads[name] {
					analytic += float64(x) * float64(d[i]) / norm
				}
			}
			central := func(h float64) float64 {
				lp, sp := lossAt(h)
				sp.Close()
				lm, sm := lossAt(-h)
				sm.Close()
				return (lp - lm) / (2 * h)
			}
			// Richardson extrapolation of two central differences: O(h⁴) truncation.
			const h = 2e-3
			fd := (4*central(h/2) - central(h)) / 3
			rel := math.Abs(fd-analytic) / math.Max(math.Abs(fd), 1e-3)
			t.Logf("loss %.6f, directional derivative %.6g, finite difference %.6g, relative error %.2e, %d trainable tensors",
				l0, analytic, fd, rel, len(params))
			if rel > 2e-4 {
				t.Errorf("gradient check failed: analytic %.6g vs finite difference %.6g (relative error %.2e)", analytic, fd, rel)
			}
		})
	}
}
