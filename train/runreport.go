package train

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/skipgraph/skipgraph/bundle"
	"github.com/skipgraph/skipgraph/cost"
	"github.com/skipgraph/skipgraph/report"
	"github.com/skipgraph/skipgraph/strategy"
)

// ReportFile is the run's report page.
const ReportFile = report.ReportFile

// plotSVG is the SVG twin of PlotFile.
var plotSVG = report.SVGPath(PlotFile)

// finalReport writes the report of a finished run, with per-class accuracy from the last
// validation, or from the test split when there is no validation split.
func (t *trainer) finalReport(ctx context.Context, res *Result, lastVal *Evaluation, elapsed float64) (string, error) {
	ev, split := lastVal, "validation"
	if ev == nil {
		ds := t.splits.Val
		if ds == nil || len(ds.Items) == 0 {
			ds, split = t.splits.Test, "test"
		}
		if ds != nil && len(ds.Items) > 0 {
			var err error
			if ev, err = t.evaluate(ds, t.currentParams()); err != nil {
				return "", fmt.Errorf("evaluating the %s split: %w", split, err)
			}
		}
	}
	return t.writeReport(ctx, res, ev, split, elapsed)
}

// writeReport writes report.html into the run's folder: the settings, what the strategies save,
// the curves, per-class accuracy and the confusion matrix of ev (nil: none), and timings.
func (t *trainer) writeReport(ctx context.Context, res *Result, ev *Evaluation, split string, elapsed float64) (string, error) {
	cfg := &t.cfg
	r := &report.Run{Title: "skipgraph training run: " + filepath.Base(filepath.Clean(cfg.Out))}
	var strategies []string
	for _, s := range t.man.Strategies {
		strategies = append(strategies, strategyLabel(s))
	}
	var lr []string
	for _, g := range sortedGroups(cfg.LR) {
		lr = append(lr, fmt.Sprintf("%s %g", g, cfg.LR[g]))
	}
	shots := "all"
	if cfg.Shots > 0 {
		shots = strconv.Itoa(cfg.Shots)
	}
	var sources []string
	for _, f := range t.man.Source.Files {
		sources = append(sources, f.Path)
	}
	device := cfg.Device
	if device == "" {
		device = "cpu"
	}
	r.Settings = []report.KV{
		{Key: "bundle", Value: absPath(cfg.Bundle)},
		{Key: "source model", Value: strings.Join(sources, ", ")},
		{Key: "strategies", Value: strings.Join(strategies, "; ")},
		{Key: "data", Value: absPath(cfg.Data)},
		{Key: "classes", Value: strconv.Itoa(t.classes)},
		{Key: "training images", Value: strconv.Itoa(len(t.train.Items))},
		{Key: "shots per class", Value: shots},
		{Key: "epochs", Value: strconv.Itoa(cfg.Epochs)},
		{Key: "batch", Value: strconv.Itoa(cfg.Batch)},
		{Key: "learning rate", Value: strings.Join(lr, ", ")},
		{Key: "warm-up", Value: fmt.Sprintf("%d epoch(s) at %g", cfg.WarmupEpochs, cfg.WarmupLR)},
		{Key: "optimizer", Value: optimizerLabel(t.man)},
		{Key: "augmentation", Value: strconv.FormatBool(!cfg.NoAugment)},
		{Key: "seed", Value: strconv.FormatUint(cfg.Seed, 10)},
		{Key: "device", Value: device},
		{Key: "optimizer update", Value: t.updateLabel()},
	}
	if src := t.prepSource; src != nil {
		v := src.Summary
		if src.File != "" {
			v += " (from " + src.File + ")"
		}
		r.Settings = append(r.Settings, report.KV{Key: "image preprocessing", Value: v})
	}
	r.Plan = planOf(ctx, t.man, cost.Settings{Batch: cfg.Batch, Classes: t.classes, Optimizer: t.man.Optimizer})
	r.Plan.Strategies = strategies
	if c, err := report.ReadCurves(res.Metrics); err == nil {
		r.Curves = c
	}
	if ev != nil {
		r.Eval = &report.Eval{Split: split, Classes: ev.Classes, Accuracy: ev.Accuracy, PerClass: ev.PerClass, Count: ev.Count, Confusion: ev.Confusion}
	}
	r.Timings = []report.KV{
		{Key: "training time", Value: (time.Duration(elapsed * float64(time.Second))).Round(time.Millisecond).String()},
		{Key: "optimizer steps", Value: strconv.Itoa(res.Steps)},
	}
	if res.StepsPerSec > 0 {
		r.Timings = append(r.Timings, report.KV{Key: "steps per second", Value: fmt.Sprintf("%.2f (first step excluded)", res.StepsPerSec)})
	}
	if res.FeatureImagesPerSec > 0 {
		r.Timings = append(r.Timings, report.KV{Key: "feature cache", Value: fmt.Sprintf("%.1f images per second through the frozen prefix", res.FeatureImagesPerSec)})
	}
	if t.cacheTime > 0 {
		r.Timings = append(r.Timings, report.KV{Key: "building the image caches", Value: t.cacheTime.Round(time.Millisecond).String() + " (decoding, augmentation and the frozen prefix, all epochs)"})
	}
	if !math.IsNaN(res.ValAcc) {
		r.Timings = append(r.Timings, report.KV{Key: "final validation accuracy", Value: fmt.Sprintf("%.1f%%", 100*res.ValAcc)})
	}
	path := filepath.Join(cfg.Out, ReportFile)
	return path, report.Write(path, r)
}

func strategyLabel(s bundle.StrategyRecord) string {
	keys := make([]string, 0, len(s.Params))
	for k := range s.Params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var kv []string
	for _, k := range keys {
		if s.Params[k] != "" {
			kv = append(kv, k+"="+s.Params[k])
		}
	}
	if len(kv) == 0 {
		return s.Name
	}
	return s.Name + " (" + strings.Join(kv, ", ") + ")"
}

func optimizerLabel(man *bundle.Manifest) string {
	o := man.Optimizer
	if o.Kind == "adamw" {
		return fmt.Sprintf("adamw (betas %g, %g; weight decay %g)", o.Beta1, o.Beta2, o.WeightDecay)
	}
	return fmt.Sprintf("sgd (momentum %g, weight decay %g)", o.Momentum, o.WeightDecay)
}

func sortedGroups(m map[string]float64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// planOf estimates a step of full fine-tuning and of the bundle's strategies on its source
// model. Where that cannot be done (the source moved, a strategy is a plugin) the plan carries
// a note saying why.
func planOf(ctx context.Context, man *bundle.Manifest, s cost.Settings) *report.Plan {
	p := &report.Plan{}
	if len(man.Source.Files) == 0 {
		p.Note = "The manifest names no source model, so the savings were not estimated."
		return p
	}
	path := man.Source.Files[0].Path
	if man.Source.Split {
		path = filepath.Dir(path)
	}
	if _, err := os.Stat(path); err != nil {
		p.Note = fmt.Sprintf("The source model %s is not there any more, so the savings were not estimated; 'skipgraph plan' estimates them.", path)
		return p
	}
	var specs []bundle.StrategySpec
	for _, rec := range man.Strategies {
		sg, ok := strategy.Builtin(rec.Name)
		if !ok {
			p.Note = fmt.Sprintf("Strategy %s is a plugin, so the savings were not estimated here; 'skipgraph plan --plugin ...' estimates them.", rec.Name)
			return p
		}
		args := map[string]string{}
		for _, prm := range sg.Info().Params {
			if v, ok := rec.Params[prm.Name]; ok {
				args[prm.Name] = v
			}
		}
		specs = append(specs, bundle.StrategySpec{Strategy: sg, Args: args})
	}
	full, ok := strategy.Builtin("full")
	if !ok {
		p.Note = "Full fine-tuning is not available to compare with."
		return p
	}
	src, err := bundle.LoadSource(path)
	if err == nil {
		if p.Full, err = cost.ForSpecs(ctx, src, []bundle.StrategySpec{{Strategy: full}}, s); err == nil {
			p.Chosen, err = cost.ForSpecs(ctx, src, specs, s)
		}
	}
	if err != nil {
		p.Full, p.Chosen = nil, nil
		p.Note = fmt.Sprintf("The savings could not be estimated: %v", err)
	}
	return p
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// updateLabel says where the run's optimizer update ran.
func (t *trainer) updateLabel() string {
	if t.hostUpdate {
		return "on the host, in place (" + bundle.UpdateHost.String() + ")"
	}
	return "in train_step.onnx (" + bundle.UpdateGraph.String() + ")"
}
