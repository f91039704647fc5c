package train

import (
	"context"
	"errors"
	"fmt"
	"os"
	goruntime "runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/internal/testenv"
)

// cacheTrainer prepares a trainer on the fixture (train split, 96 images) without opening the
// step: enough to build the image cache.
func cacheTrainer(t *testing.T, strategies string, augment bool, ahead int) *trainer {
	t.Helper()
	cfg := quickConfig(t, fixtureBundle(t, strategies), t.TempDir())
	cfg.NoAugment = !augment
	cfg.FeatureBatch = 10 // ten batches, the last one shorter
	cfg.DecodeAhead = ahead
	tr := &trainer{cfg: cfg, cacheFor: -1}
	t.Cleanup(tr.close)
	if err := tr.prepare(); err != nil {
		t.Fatal(err)
	}
	return tr
}

// The cache built with decoding ahead of the features run is the one decoding in turn builds,
// byte for byte: image states (lskip) or pixels (full), with and without augmentation.
func TestCacheDecodeAheadSame(t *testing.T) {
	for _, strategies := range []string{"lskip,cskip", "full"} {
		for _, augment := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/augment=%v", strategies, augment), func(t *testing.T) {
				var want []chunk
				for _, ahead := range []int{-1, 1, 2, 16} {
					tr := cacheTrainer(t, strategies, augment, ahead)
					if err := tr.buildEpoch(context.Background(), 1, nil); err != nil {
						t.Fatal(err)
					}
					if len(tr.cache) != 10 {
						t.Fatalf("ahead %d: %d chunks, want 10", ahead, len(tr.cache))
					}
					if want == nil {
						want = tr.cache
						continue
					}
					for i, c := range tr.cache {
						w := want[i]
						if !slices.Equal(c.shape, w.shape) || c.axis != w.axis || !slices.Equal(c.data, w.data) {
							t.Errorf("ahead %d: chunk %d differs from decoding in turn", ahead, i)
						}
					}
				}
				if augment {
					// the epoch's augmentation shows: another epoch caches other inputs
					tr := cacheTrainer(t, strategies, augment, 2)
					if err := tr.buildEpoch(context.Background(), 2, nil); err != nil {
						t.Fatal(err)
					}
					if slices.Equal(tr.cache[0].data, want[0].data) {
						t.Error("epochs 1 and 2 cached the same inputs under augmentation")
					}
				}
			})
		}
	}
}

// stopAfter is a context that reports itself cancelled from its n+1-th Err call on: a
// cancellation at a known batch of the cache.
type stopAfter struct {
	context.Context
	n    atomic.Int32
	done chan struct{}
	once sync.Once
}

func newStopAfter(n int) *stopAfter {
	c := &stopAfter{Context: context.Background(), done: make(chan struct{})}
	c.n.Store(int32(n))
	return c
}

func (c *stopAfter) Err() error {
	if c.n.Add(-1) < 0 {
		c.once.Do(func() { close(c.done) })
		return context.Canceled
	}
	return nil
}

func (c *stopAfter) Done() <-chan struct{} { return c.done }

// A bad image in batch 3, or a cancellation before batch 4, stops the cache there with the
// same error whether decoding runs ahead or not, and leaves no goroutine behind.
func TestCacheStops(t *testing.T) {
	tests := []struct {
		name   string
		bad    bool // image 35 (batch 3) made unreadable
		stopAt int  // the batch before which the context is cancelled (-1: never)
		chunks int  // chunks cached when it stops
		check  func(t *testing.T, err error, bad string)
	}{
		{"bad image", true, -1, 3, func(t *testing.T, err error, bad string) {
			if err == nil || !errs.IsInput(err) || !strings.Contains(err.Error(), bad) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %v: want one input-error line naming %s", err, bad)
			}
		}},
		{"cancel", false, 4, 4, func(t *testing.T, err error, _ string) {
			if !errors.Is(err, ErrStopped) || !errors.Is(err, context.Canceled) {
				t.Errorf("error %v: want the stop", err)
			}
		}},
	}
	for _, tt := range tests {
		var first error
		for _, ahead := range []int{-1, 1, 3} {
			t.Run(fmt.Sprintf("%s/ahead=%d", tt.name, ahead), func(t *testing.T) {
				tr := cacheTrainer(t, "lskip,cskip", true, ahead)
				bad := tr.train.Items[35].Path
				if tt.bad {
					// prepare has checked every image; this one breaks afterwards
					orig, err := os.ReadFile(bad)
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { os.WriteFile(bad, orig, 0o644) })
					if err := os.WriteFile(bad, []byte("truncated"), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				var ctx context.Context = context.Background()
				if tt.stopAt >= 0 {
					ctx = newStopAfter(tt.stopAt)
				}
				before := goruntime.NumGoroutine()
				err := tr.buildEpoch(ctx, 1, nil)
				tt.check(t, err, bad)
				if len(tr.cache) != tt.chunks {
					t.Errorf("%d chunks cached, want %d", len(tr.cache), tt.chunks)
				}
				if tr.cacheFor != -1 {
					t.Errorf("the stopped cache counts as built for epoch %d", tr.cacheFor)
				}
				if first == nil {
					first = err
				} else if err == nil || err.Error() != first.Error() {
					t.Errorf("error %q, decoding in turn gave %q", err, first)
				}
				if !testenv.GoroutinesBack(before) {
					t.Errorf("%d goroutines running, %d before", goruntime.NumGoroutine(), before)
				}
			})
		}
	}
}

func TestDecodeWorkers(t *testing.T) {
	defer goruntime.GOMAXPROCS(goruntime.GOMAXPROCS(4))
	tests := []struct {
		device         string
		threads, ahead int
		want           int
	}{
		{"cpu", 0, 2, 1},  // ORT takes every core: one decoder
		{"cpu", 1, 2, 3},  // the cores ORT leaves
		{"", 3, 1, 1},     // the CPU by default
		{"cpu", 9, 2, 1},  // more threads than cores
		{"cpu", 1, 0, 0},  // decoding in turn: every core
		{"cuda", 0, 2, 0}, // the prefix runs on the GPU
	}
	for _, tt := range tests {
		if got := decodeWorkers(tt.device, tt.threads, tt.ahead); got != tt.want {
			t.Errorf("decodeWorkers(%q, %d, %d) on 4 CPUs = %d, want %d", tt.device, tt.threads, tt.ahead, got, tt.want)
		}
	}
	if DefaultFeatureBatch("cpu") != 8 || DefaultFeatureBatch("") != 8 || DefaultFeatureBatch("cuda") != 32 {
		t.Errorf("default feature batches %d (cpu), %d (cuda)", DefaultFeatureBatch("cpu"), DefaultFeatureBatch("cuda"))
	}
}
