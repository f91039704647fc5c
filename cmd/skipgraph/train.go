package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/skipgraph/skipgraph/bundle"
	"github.com/skipgraph/skipgraph/data"
	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/train"
)

func init() {
	register(&command{
		name:    "train",
		summary: "fine-tune a bundle on an image-folder data set (SGD, cosine schedule, checkpoints, metrics, plot)",
		usage:   "BUNDLE --data DIR -o OUT [flags]   |   skipgraph train --resume OUT",
		example: "skipgraph train bundle --data images/ -o run --shots 16 --epochs 20\n" +
			"skipgraph train --resume run   # continue an interrupted run exactly",
		flags: func(fs *flag.FlagSet) func([]string) error {
			def := train.DefaultConfig()
			dataDir := fs.String("data", "", "image-folder data set: train/ [val/ test/] of class folders, or one folder of class folders (required)")
			outDir := fs.String("o", "", "output folder: metrics.jsonl, plot.png, checkpoints/, params.safetensors (required unless --resume)")
			tok := fs.String("tokenizer", "", "tokenizer folder or file (default: look in the bundle, then beside its source model)")
			template := fs.String("template", "", "prompt template with {} for the class name (default \""+data.DefaultTemplate+"\")")
			templates := fs.String("templates", "", "file of prompt templates, one per line: the first is the training text input, all of them are averaged for the CSkip prototypes")
			epochs := fs.Int("epochs", def.Epochs, "epochs")
			batch := fs.Int("batch", def.Batch, "images per step")
			shots := fs.Int("shots", 0, "images per class drawn from the training split (0: all); same-class batches from 4 shots")
			seed := fs.Uint64("seed", 1, "seed of the few-shot draw, the batch order and the augmentation")
			lrText := fs.Float64("lr-text", 0, "base learning rate of the text tower (default: the bundle's lr_groups, 2e-5)")
			lrVision := fs.Float64("lr-vision", 0, "base learning rate of the image tower (default: the bundle's lr_groups, 5e-6)")
			lrHead := fs.Float64("lr-head", 0, "base learning rate of parameters outside both towers, if any are trained")
			warmup := fs.Int("warmup-epochs", def.WarmupEpochs, "epochs at the constant warm-up rate before the cosine schedule")
			warmupLR := fs.Float64("warmup-lr", def.WarmupLR, "learning rate of the warm-up epochs (every group)")
			noAug := fs.Bool("no-augment", false, "no random crops and flips: the image features are cached once instead of every epoch")
			classes := fs.String("classes", "all", "class subset: base (the first ceil(C/2) classes by label), new (the rest) or all")
			splitFile := fs.String("split-file", "", "published split file (split_zhou_<Name>.json) with paths relative to --data, instead of sub-folders")
			valFrac := fs.Float64("val-fraction", 0, "share of each class held out for validation when the data set has no val/ folder")
			device := fs.String("device", "cpu", "cpu or cuda")
			threads := fs.Int("threads", 0, "ONNX Runtime intra-op threads (0: its default)")
			update := fs.String("update", "auto", "where the optimizer update runs: host (in place, one pass over memory per parameter; CPU, float32 steps), graph (train_step.onnx as written), auto (host where it can)")
			keep := fs.Int("keep-checkpoints", def.KeepCheckpoints, "epoch checkpoints to keep (0: all)")
			every := fs.String("checkpoint-every", def.CheckpointInterval.String(), "also checkpoint within an epoch, every N steps (200), every interval of time (10m), or both (200,10m); 0: at epoch ends only. The newest two such checkpoints are kept; a hard kill loses at most this much")
			resume := fs.String("resume", "", "continue the run in this output folder from its last checkpoint, with its settings")
			force := fs.Bool("force", false, "replace an output folder that holds an earlier run")
			quiet := fs.Bool("q", false, "no progress output")
			decodeMem := decodeMemoryFlag(fs, "train")
			return func(args []string) error {
				args, err := parseInterspersed(fs, args)
				if err != nil {
					return usageError("train", "%v", err)
				}
				if err := decodeMem(); err != nil {
					return err
				}
				set := map[string]bool{}
				fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
				cfg := train.DefaultConfig()
				if *resume != "" {
					if *outDir != "" && filepath.Clean(*outDir) != filepath.Clean(*resume) {
						return usageError("train", "-o %s and --resume %s differ; --resume continues the run in its own folder", *outDir, *resume)
					}
					if *force {
						return usageError("train", "--resume and --force contradict each other")
					}
					if err := checkResumeFlags(*resume, set, args, map[string]string{
						"data": *dataDir, "epochs": strconv.Itoa(*epochs), "batch": strconv.Itoa(*batch), "shots": strconv.Itoa(*shots),
						"seed": strconv.FormatUint(*seed, 10), "warmup-epochs": strconv.Itoa(*warmup), "warmup-lr": fmtF(*warmupLR),
						"lr-text": fmtF(*lrText), "lr-vision": fmtF(*lrVision), "lr-head": fmtF(*lrHead), "no-augment": strconv.FormatBool(*noAug),
					}); err != nil {
						return err
					}
					cfg.Out, cfg.Resume = *resume, true
				} else {
					if len(args) != 1 {
						return usageError("train", "train takes one bundle folder (or --resume OUT)")
					}
					if *dataDir == "" || *outDir == "" {
						return usageError("train", "train needs --data DIR and -o OUT")
					}
					tpl, err := data.ResolveTemplates(*template, *templates)
					if err != nil {
						return errs.AsInput(err)
					}
					cfg.Bundle, cfg.Data, cfg.Out, cfg.Tokenizer, cfg.Templates = args[0], *dataDir, *outDir, *tok, tpl
					cfg.Epochs, cfg.Batch, cfg.Shots, cfg.Seed = *epochs, *batch, *shots, *seed
					cfg.WarmupEpochs, cfg.WarmupLR, cfg.NoAugment, cfg.ValFraction = *warmup, *warmupLR, *noAug, *valFrac
					cfg.Classes, cfg.SplitFile = *classes, *splitFile
					if !set["warmup-epochs"] && cfg.WarmupEpochs >= cfg.Epochs {
						// a one-epoch run has no room for the default warm-up epoch
						cfg.WarmupEpochs = max(cfg.Epochs-1, 0)
					}
					cfg.LR = map[string]float64{}
					for name, v := range map[string]float64{"text": *lrText, "vision": *lrVision, "head": *lrHead} {
						if set["lr-"+name] {
							cfg.LR[name] = v
						}
					}
					cfg.Force = *force
				}
				cfg.Device, cfg.Threads, cfg.KeepCheckpoints = *device, *threads, *keep
				if cfg.Update, err = bundle.ParseUpdate(*update); err != nil {
					return usageError("train", "--update: %v", err)
				}
				if cfg.CheckpointSteps, cfg.CheckpointInterval, err = parseCheckpointEvery(*every); err != nil {
					return usageError("train", "%v", err)
				}
				if !*quiet {
					cfg.Progress, cfg.ProgressTTY = errOut, train.IsTerminal(errOut)
				}
				cfg.OnStep = onTrainStep
				ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
				defer stop()
				res, err := train.Train(ctx, cfg)
				if errors.Is(err, train.ErrStopped) {
					return errs.Input("%w; the last checkpoint is intact: continue with 'skipgraph train --resume %s'", err, cfg.Out)
				}
				if err != nil {
					return err
				}
				printTrainResult(res)
				return nil
			}
		},
	})
}

// onTrainStep, when set (by tests), is called after every training step.
var onTrainStep func(train.StepInfo) error

// parseCheckpointEvery reads --checkpoint-every: a step count, a duration, or both separated
// by a comma; "0" turns checkpoints within an epoch off.
func parseCheckpointEvery(s string) (steps int, interval time.Duration, err error) {
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if n, err := strconv.Atoi(part); err == nil {
			if n < 0 || steps != 0 {
				return 0, 0, fmt.Errorf("--checkpoint-every %q: want one step count >= 0", s)
			}
			steps = n
			continue
		}
		d, err := time.ParseDuration(part)
		if err != nil || d < time.Second || interval != 0 {
			return 0, 0, fmt.Errorf("--checkpoint-every %q: want a step count (200), a duration of at least 1s (10m), or both (200,10m)", s)
		}
		interval = d
	}
	return steps, interval, nil
}

func fmtF(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }

// checkResumeFlags refuses settings that differ from those of the run being resumed.
func checkResumeFlags(out string, set map[string]bool, args []string, given map[string]string) error {
	ri, err := train.ReadRunInfo(out)
	if err != nil {
		return errs.Input("cannot resume %s: %w", out, err)
	}
	if len(args) > 1 || len(args) == 1 && !samePath(args[0], ri.Bundle) {
		return usageError("train", "the run in %s was trained from bundle %s; resume it without a bundle argument", out, ri.Bundle)
	}
	lr := func(g string) string {
		if v, ok := ri.LR[g]; ok {
			return fmtF(v)
		}
		return "0"
	}
	have := map[string]string{
		"data": ri.Data, "epochs": strconv.Itoa(ri.Epochs), "batch": strconv.Itoa(ri.Batch), "shots": strconv.Itoa(ri.Shots),
		"seed": strconv.FormatUint(ri.Seed, 10), "warmup-epochs": strconv.Itoa(ri.WarmupEpochs), "warmup-lr": fmtF(ri.WarmupLR),
		"lr-text": lr("text"), "lr-vision": lr("vision"), "lr-head": lr("head"), "no-augment": strconv.FormatBool(!ri.Augment),
	}
	for name, v := range given {
		if !set[name] {
			continue
		}
		if name == "data" && samePath(v, have[name]) || v == have[name] {
			continue
		}
		return usageError("train", "--%s %s differs from the run being resumed (%s); a resumed run keeps its settings, so drop the flag", name, v, have[name])
	}
	for _, name := range []string{"tokenizer", "template", "templates", "val-fraction", "classes", "split-file"} {
		if set[name] {
			return usageError("train", "--%s cannot change when resuming; the run keeps its settings", name)
		}
	}
	return nil
}

func samePath(a, b string) bool {
	aa, err1 := filepath.Abs(a)
	bb, err2 := filepath.Abs(b)
	return err1 == nil && err2 == nil && aa == bb
}

func printTrainResult(res *train.Result) {
	fmt.Fprintf(out, "trained %d epochs, %d steps: loss %.4f, train accuracy %.1f%%", res.Epochs, res.Steps, res.Loss, 100*res.TrainAcc)
	if res.ValAcc == res.ValAcc {
		fmt.Fprintf(out, ", validation accuracy %.1f%%", 100*res.ValAcc)
	}
	fmt.Fprintln(out)
	if res.FeatureImagesPerSec > 0 {
		fmt.Fprintf(out, "feature cache %.1f images/s, ", res.FeatureImagesPerSec)
	}
	fmt.Fprintf(out, "train step %.2f steps/s\n", res.StepsPerSec)
	fmt.Fprintf(out, "parameters  %s\nmetrics     %s\nplot        %s\nreport      %s\n", res.Params, res.Metrics, res.Plot, res.Report)
}
