package bundle

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/skipgraph/skipgraph/internal/testenv"
	"github.com/skipgraph/skipgraph/plugins/cskip"
	"github.com/skipgraph/skipgraph/plugins/full"
	"github.com/skipgraph/skipgraph/plugins/lskip"
	"github.com/skipgraph/skipgraph/runtime"
	"github.com/skipgraph/skipgraph/tensorio"
)

// CUDAEnv gates the tests that need an NVIDIA GPU and the CUDA provider (bench/cuda.sh sets it).
const cudaEnv = "SKIPGRAPH_CUDA"

// cudaTolerance bounds max|cuda - cpu| / max|cpu| for the loss and each gradient. TF32 is off
// (use_tf32=0), so both devices compute in float32 and differ only in reduction order: at the
// fixture's sizes (width 64, a few layers) float32 accumulation errors are ~1e-6 relative,
// two orders below the bound.
const cudaTolerance = 1e-4

// On CUDA, the fixture's full fine-tuning, LSkip and LSkip+CSkip train steps give the loss and
// every gradient the CPU gives, and the resident stepper keeps updating in device memory.
func TestCUDAMatchesCPU(t *testing.T) {
	if os.Getenv(cudaEnv) != "1" {
		t.Skip(cudaEnv + "=1 not set (needs an NVIDIA GPU and the CUDA provider; bench/cuda.sh runs it)")
	}
	model := testenv.FixtureFile(t, "clip-hf-tiny/model.onnx")
	src, err := LoadSource(model)
	if err != nil {
		t.Fatal(err)
	}
	lsk := StrategySpec{Strategy: lskip.Strategy{}}
	csk := StrategySpec{Strategy: cskip.Strategy{}, Args: map[string]string{"ratio": "0.5", "lambda": "0"}}
	for _, tc := range []struct {
		name  string
		specs []StrategySpec
	}{{"full", []StrategySpec{{Strategy: full.Strategy{}}}}, {"lskip", []StrategySpec{lsk}}, {"lskip_cskip", []StrategySpec{lsk, csk}}} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "bundle")
			man, err := Convert(context.Background(), src, out, Options{EmitGrads: true, Strategies: tc.specs})
			if err != nil {
				t.Fatal(err)
			}
			d := RandomInputs(rand.New(rand.NewPCG(11, 12)), man, 4, 8)
			addStates(t, out, man, d)
			cpu := openAt(t, out, man, d, nil)
			gpu := openAt(t, out, man, d, nil, &runtime.Options{Device: runtime.DeviceCUDA, CUDA: map[string]string{"use_tf32": "0"}})
			if !gpu.Resident() {
				t.Fatal("the CUDA stepper is not resident")
			}
			for step := range 2 {
				lc, err := cpu.Step()
				if err != nil {
					t.Fatal(err)
				}
				lg, err := gpu.Step()
				if err != nil {
					t.Fatal(err)
				}
				if r := math.Abs(lc-lg) / math.Max(math.Abs(lc), 1e-12); r > cudaTolerance {
					t.Errorf("step %d: loss %v on the CPU, %v on CUDA (relative %.2g)", step, lc, lg, r)
				}
				worst, worstName := 0.0, ""
				for _, p := range man.Trainable() {
					name := p.Initializer + "_grad"
					a, b := cpu.Output(name), gpu.Output(name)
					if a == nil || b == nil {
						t.Fatalf("gradient %s missing (cpu %v, cuda %v)", name, a != nil, b != nil)
					}
					if r := relMaxDiff(a.Float32s(), b.Float32s()); r > worst {
						worst, worstName = r, name
					}
					if r := relMaxDiff(a.Float32s(), b.Float32s()); r > cudaTolerance {
						t.Errorf("step %d: %s differs: max|cuda-cpu|/max|cpu| = %.3g", step, name, r)
					}
				}
				t.Logf("step %d: loss cpu %.7f cuda %.7f; worst gradient %s at %.3g relative", step, lc, lg, worstName, worst)
			}
		})
	}
}

// relMaxDiff returns max|a-b| / max|a|.
func relMaxDiff(a, b []float32) float64 {
	var diff, scale float64
	for i := range a {
		diff = math.Max(diff, math.Abs(float64(a[i])-float64(b[i])))
		scale = math.Max(scale, math.Abs(float64(a[i])))
	}
	if scale == 0 {
		return diff
	}
	return diff / scale
}

// On CUDA, the float16 and bfloat16 steps match the float32 CPU step within precisionTol.
func TestCUDAMixedPrecision(t *testing.T) {
	if os.Getenv(cudaEnv) != "1" {
		t.Skip(cudaEnv + "=1 not set (needs an NVIDIA GPU and the CUDA provider; bench/cuda.sh runs it)")
	}
	d, st32, loss32 := float32Step(t)
	for _, p := range []string{PrecisionFP16, PrecisionBF16} {
		t.Run(p, func(t *testing.T) {
			dir, man := precisionBundle(t, p, false)
			var state map[string]*tensorio.Tensor
			if man.LossScale != nil {
				state = map[string]*tensorio.Tensor{LossScaleInput: tensorio.Scalar(float32(1024))}
			}
			st := openAt(t, dir, man, d, state, &runtime.Options{Device: runtime.DeviceCUDA})
			loss, err := st.Step()
			if err != nil {
				t.Fatal(err)
			}
			tol := precisionTol[p]
			if r := math.Abs(loss-loss32) / loss32; r > tol.loss {
				t.Errorf("loss %v, float32 %v: relative %.3g > %.3g", loss, loss32, r, tol.loss)
			}
			worst := compareGrads(t, man, st32, st, tol.grad)
			t.Logf("%s on CUDA: loss %.6f (float32 CPU %.6f), worst gradient error %.3g", p, loss, loss32, worst)
		})
	}
}
