package main

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/skipgraph/skipgraph/bundle"
	"github.com/skipgraph/skipgraph/plugins/cskip"
	"github.com/skipgraph/skipgraph/plugins/lskip"
	"github.com/skipgraph/skipgraph/runtime"
	"github.com/skipgraph/skipgraph/synth"
)

// BenchmarkStepperStep times Stepper.Step on a tiny LSkip+CSkip bundle and checks that the Go
// side of a step allocates nothing: the parameters and optimizer state are swapped, never
// copied, and every output buffer is bound once.
func BenchmarkStepperStep(b *testing.B) {
	if err := runtime.Init(); err != nil {
		b.Fatal("ONNX Runtime not available (run make setup):", err)
	}
	dir := b.TempDir()
	if _, err := synth.Write(synth.Config{Size: "tiny", Seed: 3, Opset: 17}, dir); err != nil {
		b.Fatal(err)
	}
	src, err := bundle.LoadSource(filepath.Join(dir, "model.onnx"))
	if err != nil {
		b.Fatal(err)
	}
	out := filepath.Join(dir, "bundle")
	man, err := bundle.Convert(context.Background(), src, out, bundle.Options{Strategies: []bundle.StrategySpec{
		{Strategy: lskip.Strategy{}, Args: map[string]string{"start": "1"}},
		{Strategy: cskip.Strategy{}, Args: map[string]string{"ratio": "0.5"}},
	}})
	if err != nil {
		b.Fatal(err)
	}
	c := config{dir: out, batch: 4, classes: 8, threads: 1}
	in := filepath.Join(dir, "inputs")
	if _, err := featuresPhase(c, man, in); err != nil {
		b.Fatal(err)
	}
	data, err := loadInputs(in)
	if err != nil {
		b.Fatal(err)
	}
	st, err := bundle.NewRunner(out, man, &runtime.Options{IntraOpThreads: 1}).OpenFed(data, 1e-5, 1)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Step(); err != nil { // binds the CSkip output once
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := st.Step(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if n := testing.AllocsPerRun(10, func() {
		if _, err := st.Step(); err != nil {
			b.Fatal(err)
		}
	}); n != 0 {
		b.Errorf("Stepper.Step allocates %v times per step in Go, want 0", n)
	}
}
