package data

import (
	"slices"
	"testing"
)

func TestSampler(t *testing.T) {
	// 3 classes of 6, 5 and 4 items.
	var labels []int
	for c, n := range []int{6, 5, 4} {
		for range n {
			labels = append(labels, c)
		}
	}
	tests := []struct {
		name     string
		s        *Sampler
		batches  int
		sizes    []int // sorted batch sizes
		oneClass bool
	}{
		{"same class keep", &Sampler{Labels: labels, BatchSize: 4, SameClass: true, Seed: 1}, 5, []int{1, 2, 4, 4, 4}, true},
		{"same class drop", &Sampler{Labels: labels, BatchSize: 4, SameClass: true, DropLast: true, Seed: 1}, 3, []int{4, 4, 4}, true},
		{"random drop", &Sampler{Labels: labels, BatchSize: 4, DropLast: true, Seed: 1}, 3, []int{4, 4, 4}, false},
		{"random keep", &Sampler{Labels: labels, BatchSize: 4, Seed: 1}, 4, []int{3, 4, 4, 4}, false},
		{"NewSampler 16 shots", NewSampler(labels, 4, 16, 1), 5, []int{1, 2, 4, 4, 4}, true},
		{"NewSampler 2 shots", NewSampler(labels, 4, 2, 1), 3, []int{4, 4, 4}, false},
	}
	for _, tt := range tests {
		for epoch := range 3 {
			b := tt.s.Epoch(epoch)
			var sizes []int
			seen := map[int]int{}
			for _, batch := range b {
				sizes = append(sizes, len(batch))
				for _, i := range batch {
					seen[i]++
					if tt.oneClass && labels[i] != labels[batch[0]] {
						t.Errorf("%s: batch %v mixes classes", tt.name, batch)
					}
				}
			}
			slices.Sort(sizes)
			if len(b) != tt.batches || !slices.Equal(sizes, tt.sizes) {
				t.Errorf("%s epoch %d: %d batches of %v, want %d of %v", tt.name, epoch, len(b), sizes, tt.batches, tt.sizes)
			}
			for i, n := range seen {
				if n != 1 {
					t.Errorf("%s: item %d seen %d times", tt.name, i, n)
				}
			}
			if !slices.EqualFunc(b, tt.s.Epoch(epoch), slices.Equal) {
				t.Errorf("%s: epoch %d is not reproducible", tt.name, epoch)
			}
		}
		if slices.EqualFunc(tt.s.Epoch(0), tt.s.Epoch(1), slices.Equal) {
			t.Errorf("%s: epochs 0 and 1 have the same order", tt.name)
		}
		if tt.s.NumBatches() != tt.batches {
			t.Errorf("%s: NumBatches %d", tt.name, tt.s.NumBatches())
		}
	}
	// A resumed sampler (new value, same seed) gives the same epoch.
	a := &Sampler{Labels: labels, BatchSize: 4, SameClass: true, Seed: 9}
	b := &Sampler{Labels: slices.Clone(labels), BatchSize: 4, SameClass: true, Seed: 9}
	if !slices.EqualFunc(a.Epoch(7), b.Epoch(7), slices.Equal) {
		t.Error("resumed sampler differs")
	}
}

func TestSequential(t *testing.T) {
	got := Sequential(5, 2)
	want := [][]int{{0, 1}, {2, 3}, {4}}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("Sequential(5, 2) = %v", got)
	}
	if len(Sequential(0, 4)) != 0 {
		t.Error("Sequential(0, 4) not empty")
	}
}
