package shapes_test

import (
	"maps"
	"slices"
	"testing"

	"github.com/skipgraph/skipgraph/graph"
	"github.com/skipgraph/skipgraph/graph/onnxio"
	"github.com/skipgraph/skipgraph/graph/shapes"
	"github.com/skipgraph/skipgraph/internal/testenv"
	"github.com/skipgraph/skipgraph/runtime"
	"github.com/skipgraph/skipgraph/tensorio"
)

// TestFixtureAgreesWithORT infers the reference CLIP export's shapes symbolically, then runs it
// on ONNX Runtime with every intermediate value as an output, at two sets of input sizes, and
// checks each inferred dimension (the symbols bound to the input sizes) against the size ORT
// produced. Every value of the export must get a fully proved shape.
func TestFixtureAgreesWithORT(t *testing.T) {
	path := testenv.FixtureFile(t, "clip-hf-tiny/model.onnx")
	ref := testenv.FixtureFile(t, "clip-hf-tiny/reference.json")
	m, err := onnxio.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	f := shapes.New()
	infos := map[string]*shapes.Info{}
	g := m.Graph
	for _, n := range g.Nodes() {
		for _, o := range n.Outputs() {
			if o == nil || n.OpType == "Constant" {
				continue
			}
			i := f.Infer(o)
			if i.Rank() < 0 || i.Elem == graph.Undefined {
				t.Errorf("%s %s: inferred %v", n.OpType, o.Name, i)
				continue
			}
			for _, d := range i.Shape {
				if d.Unknown() {
					t.Errorf("%s %s: inferred %v, with a size nothing proves", n.OpType, o.Name, i)
				}
			}
			if i.Rank() == 0 {
				continue // the runtime does not hand back rank-0 outputs; their users are checked
			}
			infos[o.Name] = i
			if !o.IsGraphOutput() {
				o.Type = graph.Type{Elem: i.Elem}
				g.AddOutput(o)
			}
		}
	}
	if len(infos) < 400 {
		t.Fatalf("only %d values inferred", len(infos))
	}
	model, err := onnxio.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	s, err := runtime.NewSessionFromBytes("fixture-all-values", model, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	inputs, err := tensorio.LoadJSONMap(ref, "inputs")
	if err != nil {
		t.Fatal(err)
	}
	// The reference sizes (5 prompts of 8 tokens, 4 images), then 3 prompts of 5 tokens (fewer
	// than the 8 position embeddings: the position slice is min(8, sequence_length)) and 1 image.
	short := map[string]*tensorio.Tensor{
		"input_ids":      cropInt64(t, inputs["input_ids"], 3, 5),
		"attention_mask": cropInt64(t, inputs["attention_mask"], 3, 5),
		"pixel_values":   cropFloat(t, inputs["pixel_values"], 1),
	}
	for _, in := range []map[string]*tensorio.Tensor{inputs, short} {
		bind := map[string]int64{
			"text_batch_size":  in["input_ids"].Shape[0],
			"sequence_length":  in["input_ids"].Shape[1],
			"image_batch_size": in["pixel_values"].Shape[0],
		}
		out, err := s.Run(in)
		if err != nil {
			t.Fatal(err)
		}
		checked := 0
		for _, name := range slices.Sorted(maps.Keys(infos)) {
			got, inf := out[name], infos[name]
			if got == nil {
				t.Errorf("%s: no output from ORT", name)
				continue
			}
			want := make([]int64, len(inf.Shape))
			for k, d := range inf.Shape {
				v, ok := d.Eval(bind)
				if !ok {
					t.Errorf("%s: dimension %d = %v does not evaluate with %v", name, k, d, bind)
				}
				want[k] = v
			}
			if !slices.Equal(got.Shape, want) {
				t.Errorf("%s (%v): ORT gives shape %v, inference %v with %v", name, inf, got.Shape, want, bind)
			}
			if vals, ok := inf.Ints(); ok && got.DType == tensorio.Int64 && !slices.Equal(got.Int64s(), vals) {
				t.Errorf("%s: ORT gives %v, inference %v", name, got.Int64s(), vals)
			} else if inf.Data != nil && got.DType == tensorio.Int64 {
				for k, d := range inf.Data {
					if v, ok := d.Eval(bind); !ok || v != got.Int64s()[k] {
						t.Errorf("%s: element %d is %d on ORT, inferred %v", name, k, got.Int64s()[k], d)
					}
				}
			}
			checked++
		}
		t.Logf("%v: %d values checked", bind, checked)
	}
}

func cropInt64(t *testing.T, x *tensorio.Tensor, rows, cols int64) *tensorio.Tensor {
	t.Helper()
	src := x.Int64s()
	out := make([]int64, 0, rows*cols)
	for r := range rows {
		out = append(out, src[r*x.Shape[1]:r*x.Shape[1]+cols]...)
	}
	y, err := tensorio.FromSlice([]int64{rows, cols}, out)
	if err != nil {
		t.Fatal(err)
	}
	return y
}

func cropFloat(t *testing.T, x *tensorio.Tensor, n int64) *tensorio.Tensor {
	t.Helper()
	per := x.NumElements() / x.Shape[0]
	y, err := tensorio.FromSlice(append([]int64{n}, x.Shape[1:]...), x.Float32s()[:n*per])
	if err != nil {
		t.Fatal(err)
	}
	return y
}
