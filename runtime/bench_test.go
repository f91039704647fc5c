package runtime

import (
	"testing"

	"github.com/skipgraph/skipgraph/tensorio"
)

// clipBinding binds the reference inputs and pre-allocated outputs of the fixture CLIP.
func clipBinding(b *testing.B) (*Session, *Binding, []*Value) {
	requireORT(b)
	model := fixture(b, "clip-hf-tiny/model.onnx")
	inputs, err := tensorio.LoadJSONMap(fixture(b, "clip-hf-tiny/reference.json"), "inputs")
	if err != nil {
		b.Fatal(err)
	}
	s, err := NewSession(model, &Options{IntraOpThreads: 1})
	if err != nil {
		b.Fatal(err)
	}
	bind, err := s.NewBinding()
	if err != nil {
		b.Fatal(err)
	}
	var vals []*Value
	for name, t := range inputs {
		v, err := NewValue(t)
		if err != nil {
			b.Fatal(err)
		}
		vals = append(vals, v)
		if err := bind.BindInput(name, v); err != nil {
			b.Fatal(err)
		}
	}
	// The fixture's outputs have symbolic batch dims: allocate them from a first Run.
	out, err := s.Run(inputs)
	if err != nil {
		b.Fatal(err)
	}
	for name, t := range out {
		v, err := NewValue(t)
		if err != nil {
			b.Fatal(err)
		}
		vals = append(vals, v)
		if err := bind.BindOutput(name, v); err != nil {
			b.Fatal(err)
		}
	}
	return s, bind, vals
}

// BenchmarkCLIPBindingRun: one forward pass of the fixture CLIP through a Binding (no Go
// allocations expected).
func BenchmarkCLIPBindingRun(b *testing.B) {
	s, bind, vals := clipBinding(b)
	defer func() {
		s.Close()
		for _, v := range vals {
			v.Close()
		}
	}()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := bind.Run(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCLIPSessionRun: the same pass through Session.Run (map in, map out).
func BenchmarkCLIPSessionRun(b *testing.B) {
	requireORT(b)
	inputs, err := tensorio.LoadJSONMap(fixture(b, "clip-hf-tiny/reference.json"), "inputs")
	if err != nil {
		b.Fatal(err)
	}
	s, err := NewSession(fixture(b, "clip-hf-tiny/model.onnx"), &Options{IntraOpThreads: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Run(inputs); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSwapLoop: the training-loop pattern, Run then Swap, on y = x + 1.
func BenchmarkSwapLoop(b *testing.B) {
	requireORT(b)
	s, err := NewSessionFromBytes("add_one", addOneModel(b), &Options{IntraOpThreads: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	x, _ := NewEmptyValue(tensorio.Float32, 2, 3)
	y, _ := NewEmptyValue(tensorio.Float32, 2, 3)
	defer x.Close()
	defer y.Close()
	bind, err := s.NewBinding()
	if err != nil {
		b.Fatal(err)
	}
	if err := bind.BindInput("x", x); err != nil {
		b.Fatal(err)
	}
	if err := bind.BindOutput("y", y); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := bind.Run(); err != nil {
			b.Fatal(err)
		}
		if err := bind.Swap("x", "y"); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if got := bind.Input("x").Tensor().Float32s()[0]; got != float32(b.N) && b.N < 1<<24 {
		b.Fatalf("after %d steps x[0] = %v", b.N, got)
	}
}
