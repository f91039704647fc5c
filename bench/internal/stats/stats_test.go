package stats

import (
	"slices"
	"testing"
)

func TestMedian(t *testing.T) {
	tests := []struct {
		x    []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
	}
	for _, tt := range tests {
		in := slices.Clone(tt.x)
		if got := Median(tt.x); got != tt.want {
			t.Errorf("Median(%v) = %v, want %v", in, got, tt.want)
		}
		if !slices.Equal(in, tt.x) {
			t.Errorf("Median reordered its input to %v", tt.x)
		}
	}
}
