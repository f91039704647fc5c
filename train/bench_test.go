package train

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/skipgraph/skipgraph/bundle"
	"github.com/skipgraph/skipgraph/data"
	"github.com/skipgraph/skipgraph/plugins/cskip"
	"github.com/skipgraph/skipgraph/plugins/full"
	"github.com/skipgraph/skipgraph/plugins/lskip"
	"github.com/skipgraph/skipgraph/rewrite/classsel"
	"github.com/skipgraph/skipgraph/synth"
	"github.com/skipgraph/skipgraph/tensorio"
)

// BenchmarkViTB16 measures, on a synthetic ViT-B/16 export (10 classes, 16 shots, batch 4), the
// image feature cache (images/s through the frozen image prefix) and the train step (steps/s)
// for full fine-tuning and for LSkip+CSkip. Making and converting the model takes a minute or
// two; it runs only when -bench selects it.
//
//	go test -run '^$' -bench ViTB16 -benchtime 5x ./train
func BenchmarkViTB16(b *testing.B) {
	dir := filepath.Join(fixtureDir, "vit-b-16")
	classes := data.SyntheticClasses(10)
	var names []string
	for _, c := range classes {
		names = append(names, data.DisplayName(c))
	}
	if _, err := os.Stat(filepath.Join(dir, "model", "model.onnx")); err != nil {
		t0 := time.Now()
		if _, err := synth.WriteTokenizerSize(filepath.Join(dir, "model"), synth.PromptWords(names, []string{data.DefaultTemplate}), synth.Sizes["vit-b-16"].Vocab); err != nil {
			b.Fatal(err)
		}
		if _, err := synth.Write(synth.Config{Style: synth.StyleHF, Size: "vit-b-16", Seed: 1}, filepath.Join(dir, "model")); err != nil {
			b.Fatal(err)
		}
		if err := data.GenerateDataset(filepath.Join(dir, "data"), 10, 16, 224, 1); err != nil {
			b.Fatal(err)
		}
		b.Logf("synthetic ViT-B/16 and data set made in %v", time.Since(t0).Round(time.Millisecond))
	}
	src, err := bundle.LoadSource(filepath.Join(dir, "model", "model.onnx"))
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		specs []bundle.StrategySpec
	}{
		{"full", []bundle.StrategySpec{{Strategy: full.Strategy{}}}},
		{"lskip+cskip", []bundle.StrategySpec{{Strategy: lskip.Strategy{}}, {Strategy: cskip.Strategy{}}}},
	} {
		bdir := filepath.Join(dir, "bundle-"+tc.name)
		if _, err := os.Stat(filepath.Join(bdir, bundle.ManifestFile)); err != nil {
			t0 := time.Now()
			if _, err := bundle.Convert(context.Background(), src, bdir, bundle.Options{Strategies: tc.specs}); err != nil {
				b.Fatal(err)
			}
			b.Logf("%s: converted in %v", tc.name, time.Since(t0).Round(time.Millisecond))
		}
		cfg := DefaultConfig()
		cfg.Bundle, cfg.Data, cfg.Out = bdir, filepath.Join(dir, "data"), filepath.Join(b.TempDir(), "run")
		cfg.Shots, cfg.Batch, cfg.Seed = 16, 4, 1
		tr := &trainer{cfg: cfg, cacheFor: -1}
		if err := tr.prepare(); err != nil {
			b.Fatal(err)
		}
		if tr.man.CSkip != nil {
			// Random prototypes: the benchmark times the step, not the zero-shot classifier.
			p := make([]float32, tr.classes*512)
			r := rand.New(rand.NewPCG(1, 2))
			for i := range p {
				p[i] = float32(r.NormFloat64())
			}
			tr.protos, _ = classsel.NormalizeRows(must(tensorio.FromSlice([]int64{int64(tr.classes), 512}, p)))
		}
		params, err := bundle.InitialParams(bdir, tr.man)
		if err != nil {
			b.Fatal(err)
		}
		if err := tr.openStep(params, nil, params); err != nil {
			b.Fatal(err)
		}
		for g, lr := range tr.cfg.LR {
			tr.st.FeedScalar("lr."+g, lr)
		}
		b.Run(tc.name+"/features", func(b *testing.B) {
			// One epoch of the image cache per iteration: preprocessing, and the frozen prefix
			// when the bundle has one.
			for i := 0; b.Loop(); i++ {
				tr.cacheFor = -1
				if err := tr.buildEpoch(context.Background(), i, newProgress(nil, false, 0, 0)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(tr.train.Items))/b.Elapsed().Seconds(), "images/s")
		})
		if tr.cacheFor < 0 {
			tr.buildEpoch(context.Background(), 0, newProgress(nil, false, 0, 0))
		}
		batches := data.NewSampler(tr.train.Labels(), 4, 16, 1).Epoch(0)
		b.Run(tc.name+"/step", func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				if err := tr.feedBatch(batches[i%len(batches)], tr.train.Labels()); err != nil {
					b.Fatal(err)
				}
				tr.st.FeedScalar("step", float64(i+1))
				if _, err := tr.st.Step(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "steps/s")
		})
		tr.close()
	}
}

func must[T any](x T, err error) T {
	if err != nil {
		panic(err)
	}
	return x
}
