// Command peak measures the machine limits that the step benchmarks are reported against, on ONNX
// Runtime with the session settings a training step uses: the float32 matrix-product rate (one
// MatMul of two n x n matrices) and the memory bandwidth of an elementwise Add of two large
// vectors into a bound, already-touched output (bytes read plus bytes written, per second). It
// prints one JSON line.
//
//	peak [-n 2048] [-mib 64] [-reps 5] [-threads 0]
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	goruntime "runtime"
	"sort"
	"time"

	"github.com/skipgraph/skipgraph/graph"
	"github.com/skipgraph/skipgraph/graph/onnxio"
	"github.com/skipgraph/skipgraph/runtime"
	"github.com/skipgraph/skipgraph/tensorio"
)

// Result is the measurement, printed as JSON.
type Result struct {
	// SgemmGFLOPs is the median rate of a 2n^3-FLOP MatMul.
	SgemmGFLOPs float64 `json:"ort_sgemm_gflops"`
	N           int     `json:"n"`
	// AddGBs is the median bandwidth of Add into a bound output: 3 vectors of the size moved.
	AddGBs   float64 `json:"ort_add_gbs"`
	VecMiB   int     `json:"vector_mib"`
	Threads  int     `json:"threads"`
	SgemmMs  float64 `json:"sgemm_median_ms"`
	AddMs    float64 `json:"add_median_ms"`
	Repeats  int     `json:"repeats"`
	ORT      string  `json:"onnxruntime"`
	MaxProcs int     `json:"cpus"`
}

func main() {
	n := flag.Int("n", 2048, "matrix size of the sgemm")
	mib := flag.Int("mib", 64, "size of each vector of the Add, MiB")
	reps := flag.Int("reps", 5, "timed repetitions (after one warm-up)")
	threads := flag.Int("threads", 0, "ORT intra-op threads (0: the runtime's default)")
	flag.Parse()
	if *n < 1 || *mib < 1 || *reps < 1 {
		fmt.Fprintln(os.Stderr, "peak: -n, -mib and -reps must be positive")
		os.Exit(2)
	}
	res, err := measure(*n, *mib, *reps, *threads)
	if err != nil {
		fmt.Fprintln(os.Stderr, "peak:", err)
		os.Exit(1)
	}
	b, _ := json.Marshal(res)
	fmt.Println(string(b))
}

// model returns an ONNX model of one binary op over two float inputs a and b, output y.
func model(op string, shapeA, shapeB, shapeY []int64) ([]byte, error) {
	g := graph.New(op)
	a, err := g.AddInput("a", graph.TensorType(graph.Float, shapeA...))
	if err != nil {
		return nil, err
	}
	b, err := g.AddInput("b", graph.TensorType(graph.Float, shapeB...))
	if err != nil {
		return nil, err
	}
	y := g.NewNode(op, "", "op", []*graph.Value{a, b}, []string{"y"}).Output(0)
	y.Type = graph.TensorType(graph.Float, shapeY...)
	g.AddOutput(y)
	return onnxio.Encode(&graph.Model{Graph: g, IRVersion: 8, Opsets: []graph.Opset{{Domain: "", Version: 17}}})
}

// timeOp runs op over random inputs of the given shapes reps times (after one warm-up) with
// bound inputs and output and returns the median milliseconds.
func timeOp(op string, shape []int64, outShape []int64, reps, threads int) (float64, error) {
	bytes, err := model(op, shape, shape, outShape)
	if err != nil {
		return 0, err
	}
	s, err := runtime.NewSessionFromBytes(op, bytes, &runtime.Options{IntraOpThreads: threads})
	if err != nil {
		return 0, err
	}
	defer s.Close()
	bd, err := s.NewBinding()
	if err != nil {
		return 0, err
	}
	defer bd.Close()
	size := int64(1)
	for _, d := range shape {
		size *= d
	}
	r := rand.New(rand.NewPCG(1, 2))
	for _, name := range []string{"a", "b"} {
		data := make([]float32, size)
		for i := range data {
			data[i] = r.Float32() - 0.5
		}
		v, err := runtime.NewValue(&tensorio.Tensor{DType: tensorio.Float32, Shape: shape, Data: data})
		if err != nil {
			return 0, err
		}
		defer v.Close()
		if err := bd.BindInput(name, v); err != nil {
			return 0, err
		}
	}
	out, err := runtime.NewEmptyValue(tensorio.Float32, outShape...)
	if err != nil {
		return 0, err
	}
	defer out.Close()
	if err := bd.BindOutput("y", out); err != nil {
		return 0, err
	}
	var ms []float64
	for i := 0; i <= reps; i++ {
		t0 := time.Now()
		if err := bd.Run(); err != nil {
			return 0, err
		}
		if i > 0 {
			ms = append(ms, float64(time.Since(t0).Microseconds())/1000)
		}
	}
	sort.Float64s(ms)
	return ms[len(ms)/2], nil
}

func measure(n, mib, reps, threads int) (*Result, error) {
	res := &Result{N: n, VecMiB: mib, Threads: threads, Repeats: reps, MaxProcs: goruntime.NumCPU()}
	sq := []int64{int64(n), int64(n)}
	ms, err := timeOp("MatMul", sq, sq, reps, threads)
	if err != nil {
		return nil, fmt.Errorf("sgemm: %w", err)
	}
	res.SgemmMs = ms
	res.ORT = runtime.Version()
	res.SgemmGFLOPs = 2 * float64(n) * float64(n) * float64(n) / (ms / 1000) / 1e9
	vec := []int64{int64(mib) << 18} // mib MiB of float32
	ms, err = timeOp("Add", vec, vec, reps, threads)
	if err != nil {
		return nil, fmt.Errorf("vector add: %w", err)
	}
	res.AddMs = ms
	res.AddGBs = 3 * float64(int64(mib)<<20) / (ms / 1000) / 1e9
	return res, nil
}
