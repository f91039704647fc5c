package bundle

import (
	"context"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/skipgraph/skipgraph/graph/onnxio"
	"github.com/skipgraph/skipgraph/internal/onnxcheck"
	"github.com/skipgraph/skipgraph/plugins/cskip"
	"github.com/skipgraph/skipgraph/plugins/lskip"
	"github.com/skipgraph/skipgraph/synth"
	"github.com/skipgraph/skipgraph/tensorio"
)

// TestFamiliesFiniteDifference converts synthetic exports of every family (combined and split)
// with LSkip+CSkip, runs features.onnx and train_step.onnx on ONNX Runtime, and checks the
// gradient of the loss along a random direction over all trainable parameters against central
// finite differences of the train step's own loss. The graphs run in float32, so the tolerance
// is 5e-4 relative rather than 1e-4: the loss passes through ~1-2k float32 ops, so each
// evaluation carries rounding noise of ~1e-6 of the loss (up to ~50 here, with CLIP's logit
// scale of 100 on the split exports); divided by the step h = 1e-3 that is up to ~5e-2 on
// derivatives of ~3e2, i.e. ~2e-4 relative. The direction includes the unit gradient so the
// derivative is large against that noise, and Richardson extrapolation of two central
// differences makes the truncation error O(h⁴). Observed errors are 2e-6 to 1.7e-4; a wrong
// rule shows up as 1e-2 or more.
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
		{synth.Config{Style: "openai", Opset: 17, PackedInProj: true}, both, "packed-in-proj/lskip+cskip"},
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
			d := RandomInputs(r, man, 4, classes)
			run := NewRunner(out, man, nil)
			if _, err := run.Features(d); err != nil {
				t.Fatal(err)
			}
			params, err := run.InitialParams()
			if err != nil {
				t.Fatal(err)
			}
			// The direction: a random unit vector plus the unit gradient (computed below), so the
			// derivative along it is large against float32 rounding noise while every
			// parameter's gradient still enters the check.
			dir0 := map[string][]float32{}
			var norm float64
			for _, name := range slices.Sorted(maps.Keys(params)) {
				p := params[name]
				v := make([]float32, len(p.Float32s()))
				for i := range v {
					v[i] = float32(r.NormFloat64())
					norm += float64(v[i]) * float64(v[i])
				}
				dir0[name] = v
			}
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
				st, err := run.Open(ps, nil)
				if err != nil {
					t.Fatal(err)
				}
				if err := run.Feed(st, d); err != nil {
					t.Fatal(err)
				}
				if err := run.FeedHyper(st, 0, 0); err != nil {
					t.Fatal(err)
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
			const h = 1e-3
			fd := (4*central(h/2) - central(h)) / 3
			rel := math.Abs(fd-analytic) / math.Max(math.Abs(fd), 1e-3)
			t.Logf("loss %.6f, directional derivative %.6g, finite difference %.6g, relative error %.2e, %d trainable tensors",
				l0, analytic, fd, rel, len(params))
			if rel > 5e-4 {
				t.Errorf("gradient check failed: analytic %.6g vs finite difference %.6g (relative error %.2e)", analytic, fd, rel)
			}
		})
	}
}
