package classsel

import (
	"math"
	"testing"

	"github.com/skipgraph/skipgraph/tensorio"
)

func TestPrototypes(t *testing.T) {
	mk := func(shape []int64, v ...float32) *tensorio.Tensor {
		x, err := tensorio.FromSlice(shape, v)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	s := float32(1 / math.Sqrt2)
	for _, tc := range []struct {
		name  string
		in    []*tensorio.Tensor
		want  []float32
		fails bool
	}{
		// one template: the rows normalised
		{"one", []*tensorio.Tensor{mk([]int64{2, 2}, 3, 4, 0, 2)}, []float32{0.6, 0.8, 0, 1}, false},
		// scale does not matter: each template is normalised before the mean
		{"two", []*tensorio.Tensor{mk([]int64{1, 2}, 10, 0), mk([]int64{1, 2}, 0, 0.1)}, []float32{s, s}, false},
		{"zero row stays zero", []*tensorio.Tensor{mk([]int64{1, 2}, 0, 0)}, []float32{0, 0}, false},
		{"none", nil, nil, true},
		{"shapes differ", []*tensorio.Tensor{mk([]int64{1, 2}, 1, 0), mk([]int64{2, 1}, 1, 0)}, nil, true},
		{"not a matrix", []*tensorio.Tensor{mk([]int64{2}, 1, 0)}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Prototypes(tc.in)
			if tc.fails {
				if err == nil {
					t.Fatalf("no error, got %v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for i, w := range tc.want {
				if math.Abs(float64(got.Float32s()[i]-w)) > 1e-6 {
					t.Fatalf("prototypes %v, want %v", got.Float32s(), tc.want)
				}
			}
		})
	}
}
