package bundle

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/skipgraph/skipgraph/plugins/cskip"
	"github.com/skipgraph/skipgraph/plugins/full"
	"github.com/skipgraph/skipgraph/plugins/lskip"
	"github.com/skipgraph/skipgraph/rewrite"
	"github.com/skipgraph/skipgraph/runtime"
	"github.com/skipgraph/skipgraph/synth"
)

// The host update applies the graph's optimizer operation for operation: over several steps
// with changing learning rates, the losses, parameters and optimizer state equal those of
// train_step.onnx run as written. SGD (with and without momentum and weight decay) is bit for
// bit; AdamW's bias corrections use Go's Pow where ORT uses its own, so its values may differ by
// rounding (1e-6 relative).
func TestHostUpdateMatchesGraph(t *testing.T) {
	cases := []struct {
		name     string
		opt      rewrite.OptimizerConfig
		strategy string
		tol      float64
	}{
		{"sgd-lskip-cskip", rewrite.DefaultSGD, "lskip,cskip", 0},
		{"sgd-full", rewrite.DefaultSGD, "full", 0},
		{"sgd-plain", rewrite.OptimizerConfig{Kind: "sgd"}, "lskip", 0},
		{"sgd-momentum-only", rewrite.OptimizerConfig{Kind: "sgd", Momentum: 0.5}, "lskip", 0},
		{"adamw", rewrite.DefaultAdamW, "lskip,cskip", 1e-6},
		{"adamw-no-decay", rewrite.OptimizerConfig{Kind: "adamw", Beta1: 0.8, Beta2: 0.99, Eps: 1e-6}, "full", 1e-6},
	}
	_, src := tinyHF(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var specs []StrategySpec
			for _, s := range strings.Split(tc.strategy, ",") {
				switch s {
				case "lskip":
					specs = append(specs, StrategySpec{Strategy: lskip.Strategy{}, Args: map[string]string{"start": "1"}})
				case "cskip":
					specs = append(specs, StrategySpec{Strategy: cskip.Strategy{}})
				case "full":
					specs = append(specs, StrategySpec{Strategy: full.Strategy{}})
				}
			}
			out := filepath.Join(t.TempDir(), "bundle")
			man, err := Convert(context.Background(), src, out, Options{Optimizer: tc.opt, Strategies: specs})
			if err != nil {
				t.Fatal(err)
			}
			d := RandomInputs(rand.New(rand.NewPCG(1, 2)), man, 4, 8)
			addStates(t, out, man, d)
			params, err := InitialParams(out, man)
			if err != nil {
				t.Fatal(err)
			}
			open := func(u Update) *Stepper {
				st, err := OpenStepperUpdate(out, man, params, nil, nil, u)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
				if err := (&Runner{Man: man}).Feed(st, d, append(DataRoles, RoleInput)...); err != nil {
					t.Fatal(err)
				}
				return st
			}
			host, gr := open(UpdateHost), open(UpdateGraph)
			if !host.HostUpdate() || gr.HostUpdate() {
				t.Fatalf("host update: %v and %v, want true and false", host.HostUpdate(), gr.HostUpdate())
			}
			r := &Runner{Man: man}
			for step := 1; step <= 3; step++ {
				lr := 0.05 / float64(step)
				for _, st := range []*Stepper{host, gr} {
					if err := r.FeedHyper(st, lr, float64(step)); err != nil {
						t.Fatal(err)
					}
				}
				lh, err := host.Step()
				if err != nil {
					t.Fatal(err)
				}
				lg, err := gr.Step()
				if err != nil {
					t.Fatal(err)
				}
				if lh != lg {
					t.Fatalf("step %d: loss %v with the host update, %v with the graph's", step, lh, lg)
				}
				changed := 0
				for _, p := range man.Trainable() {
					names := []string{p.Initializer}
					for _, slot := range tc.opt.OptimizerState() {
						names = append(names, p.Initializer+"."+slot)
					}
					for _, name := range names {
						a, b := host.Param(name), gr.Param(name)
						if a == nil || b == nil {
							t.Fatalf("step %d: %s missing (host %v, graph %v)", step, name, a != nil, b != nil)
						}
						if worst := relDiff(a.Float32s(), b.Float32s()); worst > tc.tol {
							t.Fatalf("step %d: %s differs by %.3g relative (tolerance %g)", step, name, worst, tc.tol)
						}
						if name == p.Initializer && !slices.Equal(a.Float32s(), params[name].Float32s()) {
							changed++
						}
					}
				}
				if changed == 0 {
					t.Fatalf("step %d: no parameter changed", step)
				}
			}
		})
	}
}

// tinyHF writes the tiny synthetic HF CLIP into a temporary folder and loads it.
func tinyHF(t *testing.T) (string, *SourceModel) {
	t.Helper()
	dir := t.TempDir()
	if _, err := synth.Write(synth.Config{Style: "hf", Size: "tiny", Opset: 17, Seed: 3}, dir); err != nil {
		t.Fatal(err)
	}
	src, err := LoadSource(filepath.Join(dir, "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	return dir, src
}

// relDiff is the largest |a-b| / max(|b|, 1e-3) over the elements.
func relDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	worst := 0.0
	for i := range a {
		d := math.Abs(float64(a[i]) - float64(b[i]))
		worst = max(worst, d/max(math.Abs(float64(b[i])), 1e-3))
	}
	return worst
}

// UpdateHost is refused, with the reason, where it cannot run: on a step computing in 16 bits
// and on CUDA; UpdateAuto falls back to the graph's update for the former.
func TestHostUpdateRefused(t *testing.T) {
	dir, src := tinyHF(t)
	out := filepath.Join(dir, "fp16")
	man, err := Convert(context.Background(), src, out, Options{Precision: "fp16", Strategies: []StrategySpec{{Strategy: lskip.Strategy{}}}})
	if err != nil {
		t.Fatal(err)
	}
	params, err := InitialParams(out, man)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenStepperUpdate(out, man, params, nil, nil, UpdateHost); err == nil || !strings.Contains(err.Error(), "fp16") {
		t.Fatalf("host update of an fp16 step: %v, want a refusal naming fp16", err)
	}
	st, err := OpenStepperUpdate(out, man, params, nil, nil, UpdateAuto)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if st.HostUpdate() {
		t.Fatal("auto chose the host update for an fp16 step")
	}
	if _, err := OpenStepperUpdate(out, man, params, nil, &runtime.Options{Device: runtime.DeviceCUDA}, UpdateHost); err == nil || !strings.Contains(err.Error(), "CUDA") {
		t.Fatalf("host update on CUDA: %v, want a refusal", err)
	}
	for _, s := range []string{"auto", "graph", "host", "HOST"} {
		if _, err := ParseUpdate(s); err != nil {
			t.Errorf("ParseUpdate(%q): %v", s, err)
		}
	}
	if _, err := ParseUpdate("gpu"); err == nil {
		t.Error("ParseUpdate(gpu): no error")
	}
}

// BenchmarkHostUpdate measures the fused SGD update (momentum and weight decay) over 16M
// parameters: bytes moved are 5 x 4 per element (read p, g, buf; write p, buf).
func BenchmarkHostUpdate(b *testing.B) {
	const n = 16 << 20
	mk := func() []float32 {
		s := make([]float32, n)
		for i := range s {
			s[i] = float32(i%97) * 1e-3
		}
		return s
	}
	u := newHostUpdater(rewrite.DefaultSGD, []hostParam{{p: mk(), g: mk(), state: [][]float32{mk()}, lr: "lr.x"}}, defaultUpdateWorkers(0))
	defer u.close()
	u.lr["lr.x"] = 1e-3
	b.SetBytes(n * 4 * 5)
	b.ResetTimer()
	for b.Loop() {
		if err := u.apply(); err != nil {
			b.Fatal(err)
		}
	}
}
