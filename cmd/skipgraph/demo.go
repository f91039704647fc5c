package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/skipgraph/skipgraph/bundle"
	"github.com/skipgraph/skipgraph/data"
	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/internal/safeio"
	"github.com/skipgraph/skipgraph/plugins/cskip"
	"github.com/skipgraph/skipgraph/plugins/lskip"
	"github.com/skipgraph/skipgraph/synth"
	"github.com/skipgraph/skipgraph/train"
)

// demoMarker marks a folder written by 'skipgraph demo', which a later demo may replace.
const demoMarker = "DEMO"

func init() {
	register(&command{
		name:    "demo",
		summary: "end to end on a tiny random CLIP and a generated image set: zero-shot, convert (lskip,cskip), train, evaluate, export",
		usage:   "[-o DIR]",
		example: "skipgraph demo -o demo-out",
		flags: func(fs *flag.FlagSet) func([]string) error {
			o := fs.String("o", "demo-out", "folder for everything the demo makes (replaced if an earlier demo made it)")
			classes := fs.Int("classes", 6, "classes of the generated data set")
			epochs := fs.Int("epochs", 12, "training epochs")
			lr := fs.Float64("lr", 0.05, "base learning rate of both towers")
			seed := fs.Uint64("seed", 1, "training seed")
			threads := fs.Int("threads", 0, "ONNX Runtime intra-op threads (0: its default)")
			return func(args []string) error {
				if len(args) != 0 {
					return usageError("demo", "demo takes no arguments")
				}
				if *classes < 2 || *classes > data.MaxSyntheticClasses {
					return usageError("demo", "--classes %d: want 2 to %d", *classes, data.MaxSyntheticClasses)
				}
				if *epochs < 1 {
					return usageError("demo", "--epochs %d: want at least 1", *epochs)
				}
				ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
				defer stop()
				return runDemo(ctx, *o, *classes, *epochs, *lr, *seed, *threads)
			}
		},
	})
}

func runDemo(ctx context.Context, dir string, classes, epochs int, lr float64, seed uint64, threads int) error {
	start := time.Now()
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		if err := (safeio.Output{Path: dir, What: "a demo folder", Replace: true, Ours: recogniseDemo}).Check(); err != nil {
			return err
		}
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("cannot replace %s: %w", dir, err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return errs.Input("cannot create %s: %w", dir, err)
	}
	if err := os.WriteFile(filepath.Join(dir, demoMarker), []byte("made by 'skipgraph demo'; a later demo replaces this folder\n"), 0o644); err != nil {
		return err
	}
	step := func(format string, a ...any) { fmt.Fprintf(out, "== "+format+"\n", a...) }

	names := data.SyntheticClasses(classes)
	var display []string
	for _, n := range names {
		display = append(display, data.DisplayName(n))
	}
	modelDir := filepath.Join(dir, "model")
	step("1. a tiny random CLIP (Hugging Face layout) and its tokenizer in %s", modelDir)
	model, err := synth.WriteDemo(modelDir, synth.PromptWords(display, []string{data.DefaultTemplate}), 2)
	if err != nil {
		return err
	}
	dataDir := filepath.Join(dir, "data")
	step("2. a generated image set in %s: %d classes (%s, ...), 16 train / 6 val / 10 test images each", dataDir, classes, display[0])
	for i, s := range []struct {
		name string
		n    int
	}{{"train", 16}, {"val", 6}, {"test", 10}} {
		if err := data.GenerateDataset(filepath.Join(dataDir, s.name), classes, s.n, 32, uint64(100+i)); err != nil {
			return err
		}
	}
	step("3. zero-shot accuracy of the untouched export")
	before, err := train.Evaluate(train.EvalConfig{Model: model, Data: dataDir, Threads: threads})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "   test accuracy %.1f%% (chance %.1f%%: the weights are random)\n", 100*before.Accuracy, 100/float64(classes))

	bundleDir := filepath.Join(dir, "bundle")
	step("4. convert with lskip,cskip into %s", bundleDir)
	src, err := bundle.LoadSource(model)
	if err != nil {
		return err
	}
	specs := []bundle.StrategySpec{{Strategy: lskip.Strategy{}}, {Strategy: cskip.Strategy{}}}
	man, err := bundle.Convert(ctx, src, bundleDir, bundle.Options{Strategies: specs})
	if err != nil {
		return err
	}
	for _, t := range man.Towers {
		fmt.Fprintf(out, "   %s tower: layers %d.. of %d train, the prefix is cached\n", t.Kind, t.Start, t.Layers)
	}

	runDir := filepath.Join(dir, "run")
	step("5. train %d epochs (SGD, cosine schedule, 1 warm-up epoch) into %s", epochs, runDir)
	fmt.Fprintf(out, "   learning rate %g for both towers: far above the paper's 2e-5/5e-6, which suit a pretrained\n   CLIP; a random tiny model needs large steps to learn anything in a few epochs\n", lr)
	cfg := train.DefaultConfig()
	cfg.Bundle, cfg.Data, cfg.Out = bundleDir, dataDir, runDir
	cfg.Epochs, cfg.Batch, cfg.Seed, cfg.Threads = epochs, 8, seed, threads
	cfg.WarmupEpochs, cfg.WarmupLR = min(1, epochs-1), lr/50 // a one-epoch run has no warm-up
	cfg.NoAugment = true                                     // random crops of 32-pixel images destroy the shapes the classes are made of
	cfg.LR = map[string]float64{"text": lr, "vision": lr}
	cfg.Progress, cfg.ProgressTTY = errOut, train.IsTerminal(errOut)
	res, err := train.Train(ctx, cfg)
	if err != nil {
		return err
	}
	printTrainResult(res)

	step("6. evaluate the trained bundle")
	after, err := train.Evaluate(train.EvalConfig{Model: bundleDir, Params: runDir, Data: dataDir, Threads: threads})
	if err != nil {
		return err
	}
	after.WriteTable(out)
	confusion := filepath.Join(dir, "confusion.png")
	if err := train.PlotConfusion(after, confusion); err != nil {
		return err
	}

	exported := filepath.Join(dir, "model-tuned.onnx")
	step("7. export the trained weights into the original export: %s", exported)
	if _, err := train.Export(train.ExportConfig{Bundle: bundleDir, Params: runDir, Out: exported}); err != nil {
		return err
	}
	check, err := train.Evaluate(train.EvalConfig{Model: exported, Data: dataDir, Tokenizer: modelDir, Threads: threads})
	if err != nil {
		return err
	}

	fmt.Fprintf(out, "\nzero-shot accuracy  %5.1f%%\n", 100*before.Accuracy)
	fmt.Fprintf(out, "after training      %5.1f%%  (exported model: %.1f%%)\n", 100*after.Accuracy, 100*check.Accuracy)
	fmt.Fprintf(out, "loss/accuracy plot  %s\n", res.Plot)
	fmt.Fprintf(out, "confusion matrix    %s\n", confusion)
	fmt.Fprintf(out, "run report          %s\n", res.Report)
	fmt.Fprintf(out, "exported model      %s\n", exported)
	fmt.Fprintf(out, "done in %s\n", time.Since(start).Round(100*time.Millisecond))
	return nil
}

// recogniseDemo returns nil when dir was made by 'skipgraph demo' (it holds the marker file).
func recogniseDemo(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, demoMarker)); err != nil {
		return fmt.Errorf("no %s marker", demoMarker)
	}
	return nil
}
