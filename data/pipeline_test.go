package data

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"testing"
	"time"

	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/internal/testenv"
)

// eachImages writes a small data set and returns its paths in batches of 3 (the last one
// shorter).
func eachImages(t *testing.T) (string, [][]string) {
	t.Helper()
	dir := t.TempDir()
	if err := GenerateDataset(dir, 2, 7, 40, 3); err != nil {
		t.Fatal(err)
	}
	ds, err := LoadFolder(dir)
	if err != nil {
		t.Fatal(err)
	}
	paths := ds.Paths()
	var batches [][]string
	for s := 0; s < len(paths); s += 3 {
		batches = append(batches, paths[s:min(s+3, len(paths))])
	}
	return dir, batches
}

func budgetUsed(b *DecodeBudget) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

func TestEachMatchesBatch(t *testing.T) {
	_, batches := eachImages(t)
	for _, augment := range []bool{false, true} {
		p := NewPreprocessor(16)
		p.Augment = augment
		p.Budget = NewDecodeBudget(64 << 20)
		rngFor := func() *rand.Rand {
			if !augment {
				return nil
			}
			return rand.New(rand.NewPCG(9, 10))
		}
		var want [][]float32
		rng := rngFor()
		for _, b := range batches {
			px, err := p.Batch(b, rng)
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, px)
		}
		for _, ahead := range []int{0, 1, 2, 3, 10} {
			t.Run(fmt.Sprintf("augment=%v/ahead=%d", augment, ahead), func(t *testing.T) {
				var got [][]float32
				err := p.Each(context.Background(), batches, rngFor(), ahead, func(i int, px []float32) error {
					if i != len(got) {
						t.Errorf("batch %d used after %d batches", i, len(got))
					}
					got = append(got, px)
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != len(want) {
					t.Fatalf("%d batches used, want %d", len(got), len(want))
				}
				for i := range want {
					if !slices.Equal(got[i], want[i]) {
						t.Errorf("batch %d differs from Batch's", i)
					}
				}
				if u := budgetUsed(p.Budget); u != 0 {
					t.Errorf("%d bytes of the budget still held", u)
				}
			})
		}
	}
}

func TestEachStops(t *testing.T) {
	dir, batches := eachImages(t)
	bad := filepath.Join(dir, "bad.png")
	if err := os.WriteFile(bad, []byte("not an image"), 0o644); err != nil {
		t.Fatal(err)
	}
	broken := slices.Clone(batches)
	broken[2] = append(slices.Clone(batches[2][:1]), bad)
	errUse := errors.New("features run failed")
	tests := []struct {
		name    string
		batches [][]string
		// stopAt is the batch at which use fails (-1: never); cancelAt the one at which use
		// cancels the context.
		stopAt, cancelAt int
		used             int // batches use sees
		check            func(t *testing.T, err error)
	}{
		{"decode error", broken, -1, -1, 2, func(t *testing.T, err error) {
			if err == nil || !errs.IsInput(err) {
				t.Errorf("error %v: want an input error", err)
			}
		}},
		{"use error", batches, 1, -1, 2, func(t *testing.T, err error) {
			if !errors.Is(err, errUse) || errs.IsInput(err) {
				t.Errorf("error %v: want use's error unmarked", err)
			}
		}},
		{"cancel", batches, -1, 1, 2, func(t *testing.T, err error) {
			if !errors.Is(err, context.Canceled) {
				t.Errorf("error %v: want the context's", err)
			}
		}},
	}
	for _, tt := range tests {
		var seqErr error
		for _, ahead := range []int{0, 1, 2, 5} {
			t.Run(fmt.Sprintf("%s/ahead=%d", tt.name, ahead), func(t *testing.T) {
				p := NewPreprocessor(16)
				p.Augment = true
				p.Budget = NewDecodeBudget(64 << 20)
				before := goruntime.NumGoroutine()
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				used := 0
				err := p.Each(ctx, tt.batches, rand.New(rand.NewPCG(1, 2)), ahead, func(i int, px []float32) error {
					used++
					if i == tt.cancelAt {
						cancel()
					}
					if i == tt.stopAt {
						return fmt.Errorf("batch %d: %w", i, errUse)
					}
					return nil
				})
				tt.check(t, err)
				if used != tt.used {
					t.Errorf("use called for %d batches, want %d", used, tt.used)
				}
				if ahead == 0 {
					seqErr = err
				} else if err == nil || seqErr == nil || err.Error() != seqErr.Error() {
					t.Errorf("error %q, the sequential path's %q", err, seqErr)
				}
				if !testenv.GoroutinesBack(before) {
					t.Errorf("%d goroutines left running, %d before", goruntime.NumGoroutine(), before)
				}
				if u := budgetUsed(p.Budget); u != 0 {
					t.Errorf("%d bytes of the budget still held", u)
				}
			})
		}
	}
}

// TestEachTightBudget: with a budget that cannot hold a decoded batch and an image's decoding
// at once, decoding ahead waits for use instead of deadlocking or exceeding the budget.
func TestEachTightBudget(t *testing.T) {
	_, batches := eachImages(t)
	p := NewPreprocessor(64)
	ref, err := p.Batch(batches[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	// A batch waiting for use counts against the budget: with room for it, the peak holds a
	// batch beside an image being decoded (over 1 MiB).
	p.Budget = NewDecodeBudget(64 << 20)
	if err := p.Each(context.Background(), batches[:2], nil, 1, func(int, []float32) error {
		time.Sleep(50 * time.Millisecond)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if pk := p.Budget.Peak(); pk <= 1<<20+int64(4*len(ref)) {
		t.Errorf("peak %d bytes: the batch decoded ahead was not counted", pk)
	}
	// One image's decoding costs a little over 1 MiB; a batch of 3 at 64x64 holds 147 KiB.
	limit := int64(1<<20) + int64(4*len(ref))/2
	p.Budget = NewDecodeBudget(limit)
	done := make(chan error, 1)
	var first []float32
	go func() {
		done <- p.Each(context.Background(), batches, nil, 3, func(i int, px []float32) error {
			if i == 0 {
				first = px
			}
			time.Sleep(5 * time.Millisecond)
			return nil
		})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("decoding ahead within a tight budget did not finish")
	}
	if !slices.Equal(first, ref) {
		t.Error("pixels differ")
	}
	if pk := p.Budget.Peak(); pk > limit {
		t.Errorf("peak %d bytes over the budget of %d", pk, limit)
	}
	if u := budgetUsed(p.Budget); u != 0 {
		t.Errorf("%d bytes of the budget still held", u)
	}
}
