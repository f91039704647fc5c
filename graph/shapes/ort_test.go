package shapes_test

import (
	"testing"

	"github.com/skipgraph/skipgraph/graph/onnxio"
	"github.com/skipgraph/skipgraph/internal/shapecheck"
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
	infos := shapecheck.Expose(t, m, true)
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
		bind := map[string]int64{}
		shapecheck.Bind(m.Graph, in, bind)
		if len(bind) != 3 {
			t.Fatalf("bound %v; want text_batch_size, sequence_length and image_batch_size", bind)
		}
		out, err := s.Run(in)
		if err != nil {
			t.Fatal(err)
		}
		checked, unevaluated := shapecheck.Compare(t, infos, out, bind)
		if unevaluated > 0 {
			t.Errorf("%d values not evaluated with %v", unevaluated, bind)
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
