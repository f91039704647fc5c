package bundle

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
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
	out, man, d, params := stepperFixture(t)
	st, err := OpenStepper(out, man, params, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	feedAll(t, st, man, d)
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

// stepperFixture converts a tiny synthetic CLIP with LSkip (start 1) and CSkip and returns the
// bundle, its manifest, random step inputs (boundary states from features.onnx) and the initial
// parameters.
func stepperFixture(t *testing.T) (string, *Manifest, map[string]*tensorio.Tensor, map[string]*tensorio.Tensor) {
	t.Helper()
	dir := t.TempDir()
	if _, err := synth.Write(synth.Config{Style: "hf", Size: "tiny", Opset: 17, Seed: 9}, dir); err != nil {
		t.Fatal(err)
	}
	src, err := LoadSource(filepath.Join(dir, "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "bundle")
	man, err := Convert(context.Background(), src, out, Options{EmitGrads: true, Strategies: []StrategySpec{
		{Strategy: lskip.Strategy{}, Args: map[string]string{"start": "1"}}, {Strategy: cskip.Strategy{}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	d := RandomInputs(rand.New(rand.NewPCG(5, 6)), man, 4, 8)
	addStates(t, out, man, d)
	params, err := InitialParams(out, man)
	if err != nil {
		t.Fatal(err)
	}
	return out, man, d, params
}

// feedAll feeds every data input of the train step from d (the source model's own inputs
// too), learning rate 0.01 and step 1.
func feedAll(t *testing.T, st *Stepper, man *Manifest, d map[string]*tensorio.Tensor) {
	t.Helper()
	r := &Runner{Man: man}
	if err := r.Feed(st, d, append(DataRoles, RoleInput)...); err != nil {
		t.Fatal(err)
	}
	if err := r.FeedHyper(st, 0.01, 1); err != nil {
		t.Fatal(err)
	}
}

// A resident Stepper (the CUDA code path, here over ORT-allocated CPU memory) computes exactly
// what the host Stepper does: the same losses, gradients, parameters and optimizer state over
// several steps, with its image states gathered from a cache on the device by FeedRows.
func TestResidentStepperMatchesHost(t *testing.T) {
	out, man, d, params := stepperFixture(t)
	host, err := OpenStepper(out, man, params, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	res, err := OpenResidentStepper(out, man, params, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	if host.Resident() || !res.Resident() {
		t.Fatalf("resident: host %v, resident %v", host.Resident(), res.Resident())
	}
	feedAll(t, host, man, d)
	feedAll(t, res, man, d)

	// the image states as a device cache of 2x the batch, from which the batch is gathered
	var imgState string
	for _, in := range man.Graphs["train_step"].Inputs {
		if in.Role == "state" && d[in.Name] != nil && d[in.Name].Shape[0] == 4 && strings.Contains(in.Name, "vision") {
			imgState = in.Name
		}
	}
	if imgState == "" {
		t.Fatal("no image boundary state among the train-step inputs")
	}
	st := d[imgState]
	cache, err := res.Memory().New(tensorio.Float32, append([]int64{8}, st.Shape[1:]...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	rev := st.Clone() // rows 3, 2, 1, 0
	row := int(st.Shape[1] * st.Shape[2])
	for i := range 4 {
		copy(rev.Float32s()[i*row:(i+1)*row], st.Float32s()[(3-i)*row:(4-i)*row])
	}
	both, _ := tensorio.New(tensorio.Float32, cache.Shape()...)
	copy(both.Float32s(), rev.Float32s())
	copy(both.Float32s()[4*row:], st.Float32s())
	hv, _ := runtime.NewValue(both)
	defer hv.Close()
	if err := res.Kernels().Copy(cache, hv); err != nil {
		t.Fatal(err)
	}
	if err := res.FeedRows(imgState, cache, []int64{3, 2, 6, 0}, 0); err != nil {
		t.Fatal(err)
	}
	for step := range 3 {
		lh, err := host.Step()
		if err != nil {
			t.Fatal(err)
		}
		lr, err := res.Step()
		if err != nil {
			t.Fatal(err)
		}
		if lh != lr {
			t.Fatalf("step %d: loss %v on the host, %v resident", step, lh, lr)
		}
		for _, p := range man.Trainable() {
			for _, name := range []string{p.Initializer, p.Initializer + ".momentum"} {
				a, b := host.Param(name), res.Param(name)
				if (a == nil) != (b == nil) || a != nil && !slices.Equal(a.Float32s(), b.Float32s()) {
					t.Fatalf("step %d: %s differs between host and resident", step, name)
				}
			}
			g := p.Initializer + "_grad"
			if a, b := host.Output(g), res.Output(g); a == nil || b == nil || !slices.Equal(a.Float32s(), b.Float32s()) {
				t.Fatalf("step %d: gradient %s differs (or is missing)", step, g)
			}
		}
	}
	if err := host.Feed(imgState, st); err != nil { // same batch again
		t.Fatal(err)
	}
	if err := res.FeedRows(imgState, cache, []int64{4, 5, 6, 7}, 0); err != nil {
		t.Fatal(err)
	}
	lh, _ := host.Step()
	lr, err := res.Step()
	if err != nil || lh != lr {
		t.Fatalf("after regathering: loss %v host, %v resident (%v)", lh, lr, err)
	}
	if err := host.FeedRows(imgState, cache, []int64{0}, 0); err == nil {
		t.Fatal("FeedRows on a host stepper: no error")
	}
}

// addStates runs the bundle's features graph (when it has one) on d's inputs and adds the
// boundary states it computes to d.
func addStates(t *testing.T, dir string, man *Manifest, d map[string]*tensorio.Tensor) {
	t.Helper()
	if _, err := NewRunner(dir, man, nil).Features(d); err != nil {
		t.Fatal(err)
	}
}
