package main

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/skipgraph/skipgraph/bundle"
	"github.com/skipgraph/skipgraph/rewrite"
)

func init() {
	register(&command{
		name:    "convert",
		summary: "turn a CLIP export into a Skip Tuning training bundle (manifest, features, train step, eval)",
		usage:   "MODEL -o DIR [--strategy lskip,cskip] [strategy flags] [flags]",
		example: "skipgraph convert model.onnx -o bundle --strategy lskip,cskip --lskip-start 6 --cskip-ratio 0.5\n" +
			"skipgraph convert onnx/ -o bundle --strategy full --emit-grads   # split export folder",
		flags: func(fs *flag.FlagSet) func([]string) error {
			sf := addStrategyFlags(fs, "lskip,cskip")
			outDir := fs.String("o", "", "bundle folder to write (required)")
			optimizer := fs.String("optimizer", "sgd", "optimizer written into the train step: sgd (momentum 0.9, weight decay 5e-4) or adamw")
			momentum := fs.Float64("momentum", rewrite.DefaultSGD.Momentum, "SGD momentum")
			wd := fs.Float64("weight-decay", -1, "weight decay (default 5e-4 for sgd, 1e-2 for adamw)")
			emitGrads := fs.Bool("emit-grads", false, "add each gradient as a train-step output <name>_grad")
			precision := fs.String("precision", "fp32", "train-step compute: fp32, fp16 (with dynamic loss scaling) or bf16; float32 master weights and optimizer state either way (for CUDA: ONNX Runtime's CPU provider lacks most 16-bit kernels)")
			force := fs.Bool("force", false, "replace DIR if it exists")
			dumpAfter := fs.String("dump-after", "", "print the train-step graph after this pass ("+strings.Join(bundle.TrainPipeline, ", ")+")")
			quiet := fs.Bool("q", false, "no progress output")
			return func(args []string) error {
				if len(args) != 1 || *outDir == "" {
					return usageError("convert", "convert takes one model (file or split-export folder) and -o DIR")
				}
				opt := rewrite.DefaultSGD
				switch *optimizer {
				case "sgd":
					opt.Momentum = *momentum
				case "adamw":
					opt = rewrite.DefaultAdamW
				default:
					return usageError("convert", "--optimizer %q: use sgd or adamw", *optimizer)
				}
				set := map[string]bool{}
				fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
				if set["weight-decay"] {
					if !(*wd >= 0) || math.IsInf(*wd, 0) {
						return usageError("convert", "--weight-decay %g: want a finite value >= 0 (0 turns it off)", *wd)
					}
					opt.WeightDecay = *wd
				}
				if set["momentum"] && (*optimizer != "sgd" || !(*momentum >= 0 && *momentum < 1)) {
					return usageError("convert", "--momentum %g: want a value in [0, 1) with --optimizer sgd", *momentum)
				}
				if *dumpAfter != "" && !slices.Contains(bundle.TrainPipeline, *dumpAfter) {
					return usageError("convert", "--dump-after %q: not a train-step pass (%s)", *dumpAfter, strings.Join(bundle.TrainPipeline, ", "))
				}
				ctx := context.Background()
				specs, closePlugins, err := sf.specs(ctx)
				if err != nil {
					return err
				}
				defer closePlugins()
				logf := func(format string, a ...any) {
					if !*quiet {
						fmt.Fprintf(errOut, "  "+format+"\n", a...)
					}
				}
				start := time.Now()
				logf("loading %s", args[0])
				src, err := bundle.LoadSource(args[0])
				if err != nil {
					return err
				}
				opts := bundle.Options{Strategies: specs, Optimizer: opt, EmitGrads: *emitGrads, Precision: *precision, Force: *force, Logf: logf}
				if *dumpAfter != "" {
					opts.DumpAfter, opts.DumpTo = *dumpAfter, out
				}
				man, err := bundle.Convert(planContext(ctx, src), src, *outDir, opts)
				if err != nil {
					return err
				}
				printBundleSummary(*outDir, man, time.Since(start))
				return nil
			}
		},
	})
}

// printBundleSummary says what convert wrote.
func printBundleSummary(dir string, man *bundle.Manifest, took time.Duration) {
	var strategies []string
	for _, s := range man.Strategies {
		var ps []string
		for _, k := range slices.Sorted(maps.Keys(s.Params)) {
			if s.Params[k] != "" {
				ps = append(ps, k+"="+s.Params[k])
			}
		}
		strategies = append(strategies, s.Name+"("+strings.Join(ps, " ")+")")
	}
	var trainable, total int64
	for _, p := range man.Parameters {
		n := int64(1)
		for _, d := range p.Shape {
			n *= d
		}
		total += n
		if p.Trainable {
			trainable += n
		}
	}
	fmt.Fprintf(out, "bundle %s (%.1fs): %s\n", dir, took.Seconds(), strings.Join(strategies, ", "))
	for _, t := range man.Towers {
		state := ""
		if t.State != "" {
			state = ", cached state " + t.State
		}
		fmt.Fprintf(out, "  %-6s %d layers, trains layers %d..%d%s\n", t.Kind, t.Layers, t.Start, t.Layers-1, state)
	}
	fmt.Fprintf(out, "  parameters: %s of %s trainable (%.1f%%)\n", human(trainable), human(total), 100*float64(trainable)/float64(max(total, 1)))
	for _, key := range []bundle.GraphKey{bundle.GraphFeatures, bundle.GraphTrainStep, bundle.GraphEval} {
		g := man.Graphs[key]
		if g == nil {
			continue
		}
		size := ""
		if st, err := os.Stat(filepath.Join(dir, g.File)); err == nil {
			size = bytesHuman(st.Size())
		}
		fmt.Fprintf(out, "  %-16s %3d inputs, %3d outputs, %s\n", g.File, len(g.Inputs), len(g.Outputs), size)
	}
	if ts := man.Graphs["train_step"]; ts != nil {
		printDynamicReductions(ts.DynamicReductions)
	}
}

// printDynamicReductions says whether the train step's broadcast reductions were all proved
// static, or lists those found at run time (host syncs on an accelerator).
func printDynamicReductions(dyn []string) {
	if len(dyn) == 0 {
		fmt.Fprintf(out, "  shapes: every broadcast reduction static (0 dynamic, no NonZero)\n")
		return
	}
	fmt.Fprintf(out, "  shapes: %d dynamic broadcast reductions (NonZero: a device-to-host sync per step on CUDA)\n", len(dyn))
	const show = 10
	for i, d := range dyn {
		if i == show {
			fmt.Fprintf(out, "    ... and %d more (manifest.json: graphs.train_step.dynamic_reductions)\n", len(dyn)-show)
			break
		}
		fmt.Fprintf(out, "    %s\n", d)
	}
}
