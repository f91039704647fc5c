// Package testmodel builds ONNX models for the codec's tests, benchmarks and tools.
package testmodel

import (
	"fmt"
	"math/rand/v2"

	"github.com/skipgraph/skipgraph/graph"
)

// Small returns a small valid model: a two-layer perceptron y = relu(x W1 + b1) W2 + b2 with
// float32 weights drawn from seed. W1, b1 and W2 are over 1 KiB, b2 and the Constant below.
func Small(seed uint64) *graph.Model {
	r := rand.New(rand.NewPCG(seed, 1))
	g := graph.New("small")
	x, _ := g.AddInput("x", graph.Type{Elem: graph.Float, Shape: []graph.Dim{graph.Sym("B"), graph.Fixed(4)}, HasShape: true})
	w1, _ := g.AddInitializer("W1", randFloats(r, 4, 300))
	b1, _ := g.AddInitializer("b1", randFloats(r, 300))
	w2, _ := g.AddInitializer("W2", randFloats(r, 300, 2))
	b2, _ := g.AddInitializer("b2", randFloats(r, 2))
	h := g.NewNode("MatMul", "", "mm1", []*graph.Value{x, w1}, []string{"h"}).Output(0)
	h = g.NewNode("Add", "", "add1", []*graph.Value{h, b1}, []string{"h1"}).Output(0)
	h = g.NewNode("Relu", "", "relu", []*graph.Value{h}, []string{"h2"}).Output(0)
	h = g.NewNode("MatMul", "", "mm2", []*graph.Value{h, w2}, []string{"h3"}).Output(0)
	c := g.NewNode("Constant", "", "scale", nil, []string{"scale"}, graph.TensorAttr("value", graph.ScalarFloat(graph.Float, 0.5))).Output(0)
	h = g.NewNode("Add", "", "add2", []*graph.Value{h, b2}, []string{"h4"}).Output(0)
	y := g.NewNode("Mul", "", "mul", []*graph.Value{h, c}, []string{"y"}).Output(0)
	y.Type = graph.Type{Elem: graph.Float, Shape: []graph.Dim{graph.Sym("B"), graph.Fixed(2)}, HasShape: true}
	g.AddOutput(y)
	s := g.NewNode("Softmax", "", "softmax", []*graph.Value{y}, []string{"p"}, graph.IntAttr("axis", -1)).Output(0)
	s.Type = y.Type
	g.AddOutput(s)
	return &graph.Model{Graph: g, IRVersion: 8, Opsets: []graph.Opset{{Domain: "", Version: 14}}}
}

// Big returns a model with about totalMB megabytes of random float32 weights, in square
// matrices of about 100 MB chained by MatMul and Add nodes.
func Big(totalMB int, seed uint64) *graph.Model {
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 1, 2, 3})
	const n = 5000 // 5000x5000 float32 = 100 MB
	g := graph.New("big")
	x, _ := g.AddInput("x", graph.TensorType(graph.Float, 1, n))
	h := x
	left := int64(totalMB) << 20
	for i := 0; left > 0; i++ {
		rows := int64(n)
		if left < rows*n*4 {
			rows = max(1, left/(n*4))
		}
		buf := make([]byte, rows*n*4)
		r.Read(buf)
		for j := 3; j < len(buf); j += 4 {
			buf[j] &= 0x3f // finite values
		}
		w, _ := g.AddInitializer(fmt.Sprintf("layers.%d.weight", i), graph.NewTensor(graph.Float, []int64{n, rows}, buf))
		b, _ := g.AddInitializer(fmt.Sprintf("layers.%d.bias", i), randFloats(rand.New(rand.NewPCG(seed, uint64(i))), rows))
		h = g.NewNode("MatMul", "", fmt.Sprintf("/layers.%d/MatMul", i), []*graph.Value{h, w}, []string{fmt.Sprintf("/layers.%d/MatMul_output_0", i)}).Output(0)
		h = g.NewNode("Add", "", fmt.Sprintf("/layers.%d/Add", i), []*graph.Value{h, b}, []string{fmt.Sprintf("/layers.%d/Add_output_0", i)}).Output(0)
		if rows != n {
			break
		}
		left -= rows * n * 4
	}
	h.Type = graph.Type{Elem: graph.Float}
	g.AddOutput(h)
	return &graph.Model{Graph: g, IRVersion: 8, Opsets: []graph.Opset{{Domain: "", Version: 14}}}
}

// randFloats returns a float32 tensor of the given dimensions with values in [-1, 1).
func randFloats(r *rand.Rand, dims ...int64) *graph.Tensor {
	n := int64(1)
	for _, d := range dims {
		n *= d
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = 2*r.Float32() - 1
	}
	return graph.FromFloat32(dims, v)
}
