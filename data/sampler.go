package data

import (
	"math/rand/v2"
)

// SameClassMinShots is the number of shots from which training batches
// hold a single class each (the paper's setting: same-class batches when
// shots >= 4).
const SameClassMinShots = 4

// Sampler orders a data set's items into batches, one epoch at a time. The
// order depends only on Seed and the epoch number, so a run resumed at
// epoch e reproduces the batches it would have seen.
//
// With SameClass, each epoch shuffles the items of every class, cuts each
// class into batches of BatchSize, then shuffles the order of all batches;
// a class's last batch is smaller when its count is not a multiple of
// BatchSize, and is dropped when DropLast is set. Otherwise each epoch is
// a random permutation cut into batches; DropLast drops the final short
// batch.
type Sampler struct {
	// Labels holds the label of each item (Dataset.Labels).
	Labels []int
	// BatchSize is the number of items per batch.
	BatchSize int
	// SameClass makes every batch hold one class only.
	SameClass bool
	// DropLast drops short batches (see the type's doc).
	DropLast bool
	// Seed fixes every epoch's order.
	Seed uint64
}

// NewSampler returns the training sampler the paper's recipe uses for a
// few-shot data set: same-class batches when shots >= SameClassMinShots,
// random batches otherwise. Short batches are kept for same-class batches;
// random batches drop the final short batch when there are at least
// batchSize items (as Dassl's loader does).
func NewSampler(labels []int, batchSize, shots int, seed uint64) *Sampler {
	s := &Sampler{Labels: labels, BatchSize: max(batchSize, 1), Seed: seed}
	s.SameClass = shots >= SameClassMinShots
	if !s.SameClass {
		s.DropLast = len(labels) >= s.BatchSize
	}
	return s
}

// Epoch returns the batches of the given epoch as lists of item indices.
func (s *Sampler) Epoch(epoch int) [][]int {
	bs := max(s.BatchSize, 1)
	rng := rand.New(rand.NewPCG(s.Seed, 0x9e3779b97f4a7c15^uint64(epoch)))
	var batches [][]int
	cut := func(idx []int) {
		for start := 0; start < len(idx); start += bs {
			end := min(start+bs, len(idx))
			if end-start < bs && s.DropLast {
				break
			}
			batches = append(batches, idx[start:end:end])
		}
	}
	if !s.SameClass {
		perm := rng.Perm(len(s.Labels))
		cut(perm)
		return batches
	}
	groups := map[int][]int{}
	var labels []int
	for i, l := range s.Labels {
		if _, ok := groups[l]; !ok {
			labels = append(labels, l)
		}
		groups[l] = append(groups[l], i)
	}
	// Visit classes in first-appearance order so the result never depends
	// on map order.
	for _, l := range labels {
		idx := groups[l]
		rng.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		cut(idx)
	}
	rng.Shuffle(len(batches), func(i, j int) { batches[i], batches[j] = batches[j], batches[i] })
	return batches
}

// NumBatches returns the number of batches per epoch (the same for every
// epoch).
func (s *Sampler) NumBatches() int { return len(s.Epoch(0)) }

// Sequential cuts n items into batches of batchSize in order, the last
// possibly short: the evaluation order.
func Sequential(n, batchSize int) [][]int {
	bs := max(batchSize, 1)
	var out [][]int
	for start := 0; start < n; start += bs {
		b := make([]int, 0, min(bs, n-start))
		for i := start; i < min(start+bs, n); i++ {
			b = append(b, i)
		}
		out = append(out, b)
	}
	return out
}
