package classsel

import (
	"fmt"
	"math"

	"github.com/skipgraph/skipgraph/tensorio"
)

// NormalizeRows returns x [rows, width] as float32 with each row scaled to unit L2 norm (a
// zero row stays zero).
func NormalizeRows(x *tensorio.Tensor) (*tensorio.Tensor, error) {
	if x == nil || len(x.Shape) != 2 {
		return nil, fmt.Errorf("features: want a [rows, width] tensor, got %v", x)
	}
	f, err := x.AsFloat32()
	if err != nil {
		return nil, err
	}
	out := make([]float32, len(f))
	d := int(x.Shape[1])
	for r := 0; r < int(x.Shape[0]); r++ {
		row := f[r*d : (r+1)*d]
		var n float64
		for _, v := range row {
			n += float64(v) * float64(v)
		}
		n = math.Sqrt(n)
		if n == 0 {
			n = 1
		}
		for i, v := range row {
			out[r*d+i] = float32(float64(v) / n)
		}
	}
	return tensorio.FromSlice(append([]int64{}, x.Shape...), out)
}

// Prototypes returns CSkip's class prototypes (the zero-shot classifier) from the text
// features of each prompt template, each [classes, embed]: per class, the mean over the
// templates of the normalised features, normalised again.
func Prototypes(perTemplate []*tensorio.Tensor) (*tensorio.Tensor, error) {
	if len(perTemplate) == 0 {
		return nil, fmt.Errorf("class prototypes: no prompt template")
	}
	var sum []float32
	var shape []int64
	for i, t := range perTemplate {
		f, err := NormalizeRows(t)
		if err != nil {
			return nil, fmt.Errorf("class prototypes, template %d: %w", i, err)
		}
		if sum == nil {
			sum, shape = make([]float32, len(f.Float32s())), f.Shape
		} else if !tensorio.SameShape(shape, f.Shape) {
			return nil, fmt.Errorf("class prototypes: template %d has features %v, template 0 %v", i, f.Shape, shape)
		}
		for j, x := range f.Float32s() {
			sum[j] += x
		}
	}
	t, err := tensorio.FromSlice(shape, sum)
	if err != nil {
		return nil, err
	}
	return NormalizeRows(t)
}
