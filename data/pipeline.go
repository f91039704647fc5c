package data

import (
	"context"
	"math/rand/v2"

	"github.com/skipgraph/skipgraph/errs"
)

// Each preprocesses batches of images (Batch over each list of paths, in order) and calls use
// with each batch's index and pixels, in order, on the caller's goroutine.
//
// With ahead > 0 a goroutine decodes up to ahead batches beyond the one use is working on, so
// that decoding overlaps use (a features run, say); with ahead <= 0 each batch is decoded just
// before its use. Either way the batches draw their augmentation seeds from rng in batch order,
// so the pixels are the same; rng ends advanced past the batches decoded ahead. Decoding works
// within the Preprocessor's budget as Batch does, and the pixels of a batch decoded ahead count
// against that budget from when they are ready until use returns: when the budget is tight,
// decoding waits for use instead of piling batches up.
//
// Each stops at the first error: a batch's decoding error (marked as an input error; batches
// before it have been used), use's error as it is, or ctx's error when ctx is done. It returns
// only after its goroutine has ended.
func (p *Preprocessor) Each(ctx context.Context, batches [][]string, rng *rand.Rand, ahead int, use func(i int, px []float32) error) error {
	if ahead <= 0 {
		for i, paths := range batches {
			if err := ctx.Err(); err != nil {
				return err
			}
			px, err := p.Batch(paths, rng)
			if err != nil {
				return errs.AsInput(err)
			}
			if err := use(i, px); err != nil {
				return err
			}
		}
		return nil
	}
	type decoded struct {
		px   []float32
		held int64 // bytes of px counted against the budget
		err  error
	}
	budget := p.budget()
	inner, cancel := context.WithCancel(ctx)
	// Unbuffered for one batch ahead: the goroutine decodes the next batch while use runs,
	// then waits to hand it over.
	ready := make(chan decoded, ahead-1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(ready)
		for _, paths := range batches {
			if inner.Err() != nil {
				return
			}
			px, err := p.Batch(paths, rng)
			d := decoded{px: px, err: err}
			if err == nil {
				d.held = 4 * int64(len(px))
				budget.acquire(d.held)
			}
			select {
			case ready <- d:
			case <-inner.Done():
				budget.giveBack(d.held)
				return
			}
			if err != nil {
				return
			}
		}
	}()
	defer func() {
		cancel()
		// Batches still queued give their bytes back, which also frees a goroutine waiting for
		// the budget; it then sees the cancellation and ends.
		for d := range ready {
			budget.giveBack(d.held)
		}
		<-done
	}()
	for i := range batches {
		if err := ctx.Err(); err != nil {
			return err
		}
		var d decoded
		var ok bool
		select {
		case d, ok = <-ready:
		case <-ctx.Done():
			return ctx.Err()
		}
		if !ok { // the goroutine stopped early: only for ctx
			return ctx.Err()
		}
		if d.err != nil {
			return errs.AsInput(d.err)
		}
		err := use(i, d.px)
		budget.giveBack(d.held)
		if err != nil {
			return err
		}
	}
	return nil
}
