package bundle

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/skipgraph/skipgraph/plugins/cskip"
	"github.com/skipgraph/skipgraph/plugins/lskip"
	"github.com/skipgraph/skipgraph/runtime"
	"github.com/skipgraph/skipgraph/synth"
	"github.com/skipgraph/skipgraph/tensorio"
)

// TestStepperAllocatesNothing: after the first step, a training step allocates nothing on the
// Go side (parameters and optimizer state alternate between two fixed bindings), and the
// parameters it reports are the updated ones.
func TestStepperAllocatesNothing(t *testing.T) {
	dir := t.TempDir()
	if _, err := synth.Write(synth.Config{Style: "hf", Size: "tiny", Opset: 17, Seed: 9}, dir); err != nil {
		t.Fatal(err)
	}
	src, err := LoadSource(filepath.Join(dir, "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "bundle")
	man, err := Convert(context.Background(), src, out, Options{Strategies: []StrategySpec{
		{Strategy: lskip.Strategy{}, Args: map[string]string{"start": "1"}}, {Strategy: cskip.Strategy{}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	d := RandomInputs(rand.New(rand.NewPCG(5, 6)), man, 4, 8)
	fs, err := runtime.NewSession(filepath.Join(out, FeaturesFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	states, err := fs.Run(map[string]*tensorio.Tensor{"pixel_values": d["pixel_values"], "input_ids": d["input_ids"], "attention_mask": d["attention_mask"]})
	fs.Close()
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range states {
		d[k] = v
	}
	params, err := InitialParams(out, man)
	if err != nil {
		t.Fatal(err)
	}
	st, err := OpenStepper(out, man, params, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, in := range man.Graphs["train_step"].Inputs {
		switch in.Role {
		case "lr":
			err = st.FeedScalar(in.Name, 0.01)
		case "step":
			err = st.FeedScalar(in.Name, 1)
		case "param", "optimizer_state":
		default:
			err = st.Feed(in.Name, d[in.Name])
		}
		if err != nil {
			t.Fatalf("feeding %s: %v", in.Name, err)
		}
	}
	name := man.Trainable()[0].Initializer
	before := append([]float32(nil), st.Param(name).Float32s()...)
	if _, err := st.Step(); err != nil {
		t.Fatal(err)
	}
	changed := false
	for i, x := range st.Param(name).Float32s() {
		if x != before[i] {
			changed = true
		}
	}
	if !changed {
		t.Fatalf("parameter %s did not change after a step", name)
	}
	var stepErr error
	allocs := testing.AllocsPerRun(5, func() {
		if _, err := st.Step(); err != nil {
			stepErr = err
		}
	})
	if stepErr != nil {
		t.Fatal(stepErr)
	}
	if allocs != 0 {
		t.Fatalf("a step allocates %.0f times on the Go side, want 0", allocs)
	}
}
