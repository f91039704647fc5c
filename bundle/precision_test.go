package bundle

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/skipgraph/skipgraph/graph"
	"github.com/skipgraph/skipgraph/graph/onnxio"
	"github.com/skipgraph/skipgraph/internal/onnxcheck"
	"github.com/skipgraph/skipgraph/internal/testenv"
	"github.com/skipgraph/skipgraph/plugins/cskip"
	"github.com/skipgraph/skipgraph/plugins/lskip"
	"github.com/skipgraph/skipgraph/rewrite/grad"
	"github.com/skipgraph/skipgraph/runtime"
	"github.com/skipgraph/skipgraph/tensorio"
)

// Tolerances of a mixed-precision step against the float32 one (fixture sizes), as
// ||g - g32|| <= tol * max(||g32||, 1e-2 * the largest gradient norm): the floor keeps
// gradients that are zero in exact arithmetic (the key bias's, by softmax's shift invariance)
// from dividing rounding noise by nothing. float16 rounds to 2^-11 (4.9e-4) and bfloat16 to
// 2^-8 (3.9e-3); a gradient passes a handful of roundings (the casts of its inputs, matrix
// products, casts at each float32 island), measured at 0.5-1.2e-3 for float16 here, so the
// bounds are ~20 units of rounding. The loss is a float32 reduction of low-precision logits.
var precisionTol = map[string]struct{ loss, grad float64 }{
	PrecisionFP16: {loss: 2e-3, grad: 1e-2},
	PrecisionBF16: {loss: 2e-2, grad: 8e-2},
}

// precisionBundle converts the fixture (LSkip + CSkip without tail) at a precision.
func precisionBundle(t *testing.T, precision string, lossScaling bool) (string, *Manifest) {
	t.Helper()
	src, err := LoadSource(testenv.FixtureFile(t, "clip-hf-tiny/model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "bundle-"+precision)
	man, err := Convert(context.Background(), src, out, Options{Precision: precision, LossScaling: lossScaling, EmitGrads: true,
		Strategies: []StrategySpec{{Strategy: lskip.Strategy{}}, {Strategy: cskip.Strategy{}, Args: map[string]string{"lambda": "0"}}}})
	if err != nil {
		t.Fatal(err)
	}
	return out, man
}

// stepInputs makes random step inputs for a bundle, with the boundary states from its
// features graph.
func stepInputs(t *testing.T, dir string, man *Manifest) map[string]*tensorio.Tensor {
	t.Helper()
	d := RandomInputs(rand.New(rand.NewPCG(1, 2)), man, 4, 8)
	addStates(t, dir, man, d)
	return d
}

// openAt opens a stepper of the bundle with the initial parameters and the given loss-scaling
// state (nil: defaults) on the runtime options' device (nil: the CPU), fed with d.
func openAt(t *testing.T, dir string, man *Manifest, d map[string]*tensorio.Tensor, state map[string]*tensorio.Tensor, opts ...*runtime.Options) *Stepper {
	t.Helper()
	var o *runtime.Options
	if len(opts) > 0 {
		o = opts[0]
	}
	st, err := NewRunner(dir, man, o).Open(nil, state)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	feedAll(t, st, man, d)
	return st
}

func scalar(t *testing.T, st *Stepper, name string) float64 {
	t.Helper()
	v := st.Param(name)
	if v == nil || v.NumElements() != 1 {
		t.Fatalf("no scalar state %s", name)
	}
	return float64(v.Float32s()[0])
}

func l2(a []float32) float64 {
	var s float64
	for _, x := range a {
		s += float64(x) * float64(x)
	}
	return math.Sqrt(s)
}

// The float16 step runs on ONNX Runtime's CPU provider (it has float16 kernels for the ops
// that compute in it) and matches the float32 step within precisionTol; the bfloat16 step,
// which the CPU provider cannot run (no bfloat16 Sub), is checked for its structure here and
// numerically by TestCUDAMixedPrecision. Both pass ONNX's checker, keep float32 parameters,
// states, gradients and loss, and compute every matrix product in 16 bits.
func TestMixedPrecision(t *testing.T) {
	d, st32, loss32 := float32Step(t)
	for _, p := range []string{PrecisionFP16, PrecisionBF16} {
		t.Run(p, func(t *testing.T) {
			dir, man := precisionBundle(t, p, false)
			onnxcheck.Check(t, filepath.Join(dir, TrainStepFile))
			if man.Precision != p || (man.LossScale != nil) != (p == PrecisionFP16) {
				t.Fatalf("manifest precision %q, loss scale %v", man.Precision, man.LossScale)
			}
			m, err := onnxio.Load(filepath.Join(dir, TrainStepFile))
			if err != nil {
				t.Fatal(err)
			}
			low := map[string]graph.DType{PrecisionFP16: graph.Float16, PrecisionBF16: graph.BFloat16}[p]
			for _, v := range append(append([]*graph.Value{}, m.Graph.Inputs...), m.Graph.Outputs...) {
				if v.Type.Elem == low {
					t.Errorf("graph input or output %s is %v; want float32 interfaces", v.Name, low)
				}
			}
			types := grad.NewTypes()
			matmuls := 0
			for _, n := range m.Graph.Nodes() {
				if n.OpType == "MatMul" || n.OpType == "Gemm" {
					matmuls++
					if dt := types.DType(n.Input(0)); dt != low {
						t.Errorf("%s %s reads %v, want %v", n.OpType, n.Name, dt, low)
					}
				}
			}
			if matmuls == 0 {
				t.Fatal("no matrix product in the train step")
			}
			if p == PrecisionBF16 {
				return
			}
			// loss scale 1024: 65536 overflows float16 at the logit scale's product on the
			// first steps, which TestLossScaling covers
			st := openAt(t, dir, man, d, map[string]*tensorio.Tensor{LossScaleInput: tensorio.Scalar(float32(1024))})
			loss, err := st.Step()
			if err != nil {
				t.Fatal(err)
			}
			tol := precisionTol[p]
			if r := math.Abs(loss-loss32) / loss32; r > tol.loss {
				t.Errorf("loss %v, float32 %v: relative %.3g > %.3g", loss, loss32, r, tol.loss)
			}
			if g := scalar(t, st, LossScaleGood); g != 1 {
				t.Errorf("a finite step left loss_scale.good at %v, want 1", g)
			}
			worst := compareGrads(t, man, st32, st, tol.grad)
			t.Logf("%s: loss %.6f (float32 %.6f), worst gradient error %.3g", p, loss, loss32, worst)
		})
	}
}

// Dynamic loss scaling, on a float32 step where it is exact (a power-of-two scale commutes with
// rounding): a finite step equals the unscaled step and counts one good step; a step whose
// gradients overflow changes no parameter or state, halves the scale and resets the count;
// the interval's last good step doubles the scale.
func TestLossScaling(t *testing.T) {
	ref, refMan := precisionBundle(t, PrecisionFP32, false)
	dir, man := precisionBundle(t, PrecisionFP32, true)
	if man.LossScale == nil || man.LossScale.Init != LossScaleInit {
		t.Fatalf("manifest loss scale %+v", man.LossScale)
	}
	d := stepInputs(t, ref, refMan)
	plain := openAt(t, ref, refMan, d, nil)
	lp, err := plain.Step()
	if err != nil {
		t.Fatal(err)
	}
	p0 := man.Trainable()[0].Initializer

	t.Run("finite", func(t *testing.T) {
		st := openAt(t, dir, man, d, nil)
		if s := scalar(t, st, LossScaleInput); s != LossScaleInit {
			t.Fatalf("initial scale %v, want %v", s, LossScaleInit)
		}
		l, err := st.Step()
		if err != nil {
			t.Fatal(err)
		}
		if l != lp {
			t.Errorf("loss %v, unscaled step %v", l, lp)
		}
		for _, q := range man.Trainable() {
			a, b := plain.Output(q.Initializer+"_grad").Float32s(), st.Output(q.Initializer+"_grad").Float32s()
			for i := range a {
				if math.Abs(float64(a[i]-b[i])) > 1e-6*math.Max(math.Abs(float64(a[i])), 1e-6) {
					t.Fatalf("gradient of %s[%d]: %v scaled, %v unscaled", q.Initializer, i, b[i], a[i])
				}
			}
		}
		if !slices.Equal(st.Param(p0).Float32s(), plain.Param(p0).Float32s()) {
			t.Errorf("parameter %s after a scaled step differs from the unscaled step's", p0)
		}
		if s, g := scalar(t, st, LossScaleInput), scalar(t, st, LossScaleGood); s != LossScaleInit || g != 1 {
			t.Errorf("after a finite step: scale %v good %v, want %v and 1", s, g, LossScaleInit)
		}
	})
	t.Run("overflow", func(t *testing.T) {
		st := openAt(t, dir, man, d, map[string]*tensorio.Tensor{LossScaleInput: tensorio.Scalar(float32(3e38)), LossScaleGood: tensorio.Scalar(float32(7))})
		before := slices.Clone(st.Param(p0).Float32s())
		mom := slices.Clone(st.Param(p0 + ".momentum").Float32s())
		l, err := st.Step()
		if err != nil {
			t.Fatal(err)
		}
		if math.IsNaN(l) || math.IsInf(l, 0) || l != lp {
			t.Errorf("the loss of an overflowing step is %v, want the finite %v", l, lp)
		}
		if !slices.Equal(st.Param(p0).Float32s(), before) || !slices.Equal(st.Param(p0+".momentum").Float32s(), mom) {
			t.Errorf("a step with non-finite gradients changed %s or its momentum", p0)
		}
		if s, g := scalar(t, st, LossScaleInput), scalar(t, st, LossScaleGood); s != float64(float32(3e38)*0.5) || g != 0 {
			t.Errorf("after an overflow: scale %v good %v, want %v and 0", s, g, float32(3e38)*0.5)
		}
	})
	t.Run("growth", func(t *testing.T) {
		st := openAt(t, dir, man, d, map[string]*tensorio.Tensor{LossScaleInput: tensorio.Scalar(float32(4)), LossScaleGood: tensorio.Scalar(float32(LossScaleInterval - 1))})
		if _, err := st.Step(); err != nil {
			t.Fatal(err)
		}
		if s, g := scalar(t, st, LossScaleInput), scalar(t, st, LossScaleGood); s != 8 || g != 0 {
			t.Errorf("after the interval's last good step: scale %v good %v, want 8 and 0", s, g)
		}
	})
}

// A float16 step starting at the default scale backs off as GradScaler does: steps whose
// scaled gradients overflow float16 are skipped with the scale halved, until one is taken.
func TestLossScaleBackoffFP16(t *testing.T) {
	dir, man := precisionBundle(t, PrecisionFP16, false)
	st := openAt(t, dir, man, stepInputs(t, dir, man), nil)
	p0 := man.Trainable()[0].Initializer
	scale := LossScaleInit
	for step := 1; ; step++ {
		if step > 20 {
			t.Fatal("no step taken in 20 tries")
		}
		before := slices.Clone(st.Param(p0).Float32s())
		if _, err := st.Step(); err != nil {
			t.Fatal(err)
		}
		changed := !slices.Equal(st.Param(p0).Float32s(), before)
		s := scalar(t, st, LossScaleInput)
		if changed {
			if s != scale || scalar(t, st, LossScaleGood) != 1 {
				t.Fatalf("step %d was taken but the scale went %v -> %v", step, scale, s)
			}
			t.Logf("first step taken at try %d, scale %v", step, s)
			return
		}
		if s != scale/2 || scalar(t, st, LossScaleGood) != 0 {
			t.Fatalf("step %d was skipped but the scale went %v -> %v", step, scale, s)
		}
		scale = s
	}
}

// compareGrads checks every gradient of got against ref: ||g - ref|| <= tol * max(||ref||, 1e-2
// * the largest reference gradient norm). It returns the worst ratio ||g - ref|| / that scale.
func compareGrads(t *testing.T, man *Manifest, ref, got *Stepper, tol float64) float64 {
	t.Helper()
	var largest float64
	for _, q := range man.Trainable() {
		largest = math.Max(largest, l2(ref.Output(q.Initializer+"_grad").Float32s()))
	}
	worst := 0.0
	for _, q := range man.Trainable() {
		a, b := ref.Output(q.Initializer+"_grad").Float32s(), got.Output(q.Initializer+"_grad").Float32s()
		diff := make([]float32, len(a))
		for i := range a {
			diff[i] = a[i] - b[i]
		}
		r := l2(diff) / math.Max(l2(a), 1e-2*largest)
		worst = math.Max(worst, r)
		if r > tol {
			t.Errorf("gradient of %s: relative error %.3g > %.3g", q.Initializer, r, tol)
		}
	}
	return worst
}

// float32Step converts the fixture at float32, makes step inputs and runs one step; it returns
// the inputs, the stepper (its gradients are the reference) and the loss.
func float32Step(t *testing.T) (map[string]*tensorio.Tensor, *Stepper, float64) {
	t.Helper()
	ref, refMan := precisionBundle(t, PrecisionFP32, false)
	d := stepInputs(t, ref, refMan)
	st32 := openAt(t, ref, refMan, d, nil)
	loss32, err := st32.Step()
	if err != nil {
		t.Fatal(err)
	}
	return d, st32, loss32
}
