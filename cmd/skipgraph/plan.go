package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/skipgraph/skipgraph/bundle"
	"github.com/skipgraph/skipgraph/clip"
	"github.com/skipgraph/skipgraph/cost"
	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/plugins/cskip"
	"github.com/skipgraph/skipgraph/rewrite"
	"github.com/skipgraph/skipgraph/strategy"
	"github.com/skipgraph/skipgraph/train"

	_ "github.com/skipgraph/skipgraph/plugins/full"
	_ "github.com/skipgraph/skipgraph/plugins/lskip"
)

func init() {
	register(&command{
		name:    "plan",
		summary: "estimate trainable parameters, optimizer state, step FLOPs and activation memory: full fine-tuning vs skip settings, and a sweep of the start layer",
		usage:   "MODEL [--strategy lskip,cskip] [strategy flags] [--batch 4] [--classes 100] [--optimizer sgd|adamw] [--json]",
		example: "skipgraph plan model.onnx --classes 100 --batch 4\nskipgraph plan model.onnx --strategy lskip,cskip --lskip-start 6 --cskip-ratio 0.5",
		flags: func(fs *flag.FlagSet) func([]string) error {
			sf := addStrategyFlags(fs, "lskip,cskip")
			batch := fs.Int("batch", 4, "images per training step (B)")
			classes := fs.Int("classes", 100, "classes of the task (C), one text prompt each")
			opt := fs.String("optimizer", "sgd", "optimizer whose state is counted: sgd (momentum, 1 copy) or adamw (2 copies)")
			asJSON := fs.Bool("json", false, "print JSON instead of tables")
			return func(args []string) error {
				if len(args) != 1 {
					return usageError("plan", "plan takes one model (a .onnx file or a folder holding one)")
				}
				if *batch < 1 || *batch > train.MaxBatch {
					return usageError("plan", "--batch %d: want 1 to %d", *batch, train.MaxBatch)
				}
				if *classes < 1 || *classes > bundle.MaxClasses {
					return usageError("plan", "--classes %d: want 1 to %d", *classes, bundle.MaxClasses)
				}
				var oc rewrite.OptimizerConfig
				switch *opt {
				case "sgd":
					oc = rewrite.DefaultSGD
				case "adamw":
					oc = rewrite.DefaultAdamW
				default:
					return usageError("plan", "--optimizer %q is not sgd or adamw", *opt)
				}
				ctx := context.Background()
				specs, closePlugins, err := sf.specs(ctx)
				if err != nil {
					return err
				}
				defer closePlugins()
				return planCommand(ctx, args[0], specs, cost.Settings{Batch: *batch, Classes: *classes, Optimizer: oc}, *asJSON)
			}
		},
	})
}

// planReport is plan's JSON form.
type planReport struct {
	Model    string         `json:"model"`
	Settings cost.Settings  `json:"settings"`
	Full     *cost.Estimate `json:"full"`
	Chosen   *chosenReport  `json:"chosen"`
	Sweep    []sweepRow     `json:"sweep"`
}

// chosenReport is the estimate under the strategies given.
type chosenReport struct {
	Strategies []string       `json:"strategies"`
	Estimate   *cost.Estimate `json:"estimate"`
	Ratios     ratios         `json:"ratio_to_full"`
}

// sweepRow is one point of the start-layer sweep.
type sweepRow struct {
	VisionStart int       `json:"vision_start"`
	TextStart   int       `json:"text_start"`
	CSkip       bool      `json:"cskip"`
	Total       cost.Cost `json:"total"`
	// TextPrefixFLOPs (all classes, once) and ImagePrefixFLOPs (one image) are the cache's cost.
	TextPrefixFLOPs  float64 `json:"text_prefix_flops"`
	ImagePrefixFLOPs float64 `json:"image_prefix_flops"`
	Ratios           ratios  `json:"ratio_to_full"`
}

// ratios compare a cost with full fine-tuning's.
type ratios struct {
	TrainableParams float64 `json:"trainable_params"`
	OptimizerBytes  float64 `json:"optimizer_bytes"`
	StepFLOPs       float64 `json:"step_flops"`
	ActivationBytes float64 `json:"activation_bytes"`
}

// div is a/b, or 0 when b is 0.
func div(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func ratiosOf(c, full cost.Cost) ratios {
	return ratios{
		TrainableParams: div(float64(c.TrainableParams), float64(full.TrainableParams)),
		OptimizerBytes:  div(float64(c.OptimizerBytes), float64(full.OptimizerBytes)),
		StepFLOPs:       div(c.StepFLOPs(), full.StepFLOPs()),
		ActivationBytes: div(c.ActivationBytes, full.ActivationBytes),
	}
}

func planCommand(ctx context.Context, path string, specs []bundle.StrategySpec, s cost.Settings, asJSON bool) error {
	src, err := bundle.LoadSource(path)
	if err != nil {
		return err
	}
	r, err := buildPlanReport(planContext(ctx, src), path, src, specs, s)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	return writePlan(out, src.Structure, r)
}

func buildPlanReport(ctx context.Context, path string, src *bundle.SourceModel, specs []bundle.StrategySpec, s cost.Settings) (*planReport, error) {
	st := src.Structure
	if st.Vision == nil || st.Text == nil {
		return nil, errs.Input("%s: plan needs both towers of a CLIP model (for a split export pass the folder holding vision_model.onnx and text_model.onnx)", path)
	}
	builtin := func(name string, args map[string]string) bundle.StrategySpec {
		sg, _ := strategy.Builtin(name)
		return bundle.StrategySpec{Strategy: sg, Args: args}
	}
	full, err := cost.ForSpecs(ctx, src, []bundle.StrategySpec{builtin("full", nil)}, s)
	if err != nil {
		return nil, err
	}
	chosen, err := cost.ForSpecs(ctx, src, specs, s)
	if err != nil {
		return nil, err
	}
	r := &planReport{Model: path, Settings: chosen.Settings, Full: full,
		Chosen: &chosenReport{Estimate: chosen, Ratios: ratiosOf(chosen.Total, full.Total)}}
	var cskipArgs map[string]string
	for _, sp := range specs {
		r.Chosen.Strategies = append(r.Chosen.Strategies, sp.Strategy.Info().Name)
		if sp.Strategy.Info().Name == "cskip" {
			cskipArgs = sp.Args
		}
	}

	// The sweep: LSkip at each start layer, both towers, with and without CSkip.
	lv, lt := st.Vision.NumLayers(), st.Text.NumLayers()
	top := max(lv, lt)
	stride := max(1, (top+11)/12)
	var omegas []int
	for o := 0; o < top; o += stride {
		omegas = append(omegas, o)
	}
	omegas = append(omegas, top)
	for _, o := range omegas {
		for _, on := range []bool{false, true} {
			vs, ts := min(o, lv), min(o, lt)
			sp := []bundle.StrategySpec{builtin("lskip", map[string]string{"vision-start": strconv.Itoa(vs), "text-start": strconv.Itoa(ts)})}
			if on {
				sp = append(sp, builtin("cskip", cskipArgs))
			}
			e, err := cost.ForSpecs(ctx, src, sp, s)
			if err != nil {
				return nil, err
			}
			r.Sweep = append(r.Sweep, sweepRow{VisionStart: vs, TextStart: ts, CSkip: on, Total: e.Total, TextPrefixFLOPs: e.TextPrefixFLOPs, ImagePrefixFLOPs: e.ImagePrefixFLOPs, Ratios: ratiosOf(e.Total, full.Total)})
		}
	}
	return r, nil
}

// flopsHuman renders FLOPs as 12.3 GFLOP ...
func flopsHuman(f float64) string { return cost.FormatFLOPs(f) }

func ratioHuman(x float64) string { return fmt.Sprintf("x%.3f", x) }

// towerRun describes the layers a tower runs per step.
func towerRun(t *cost.Tower) string {
	switch {
	case t.Start >= t.Layers:
		return "none"
	case t.Cached:
		return fmt.Sprintf("%d..%d", t.Start, t.Layers-1)
	}
	return fmt.Sprintf("emb+0..%d", t.Layers-1)
}

func rowsHuman(x float64) string {
	if x == float64(int64(x)) {
		return strconv.FormatInt(int64(x), 10)
	}
	return strconv.FormatFloat(x, 'f', 1, 64)
}

func writePlan(w io.Writer, st *clip.Structure, r *planReport) error {
	s := r.Settings
	fmt.Fprintf(w, "model      %s\n", r.Model)
	for _, t := range st.Towers() {
		seq := t.SeqLen
		if seq == 0 {
			seq = t.Positions
		}
		fmt.Fprintf(w, "%-10s %d layers, width %d, %d heads, MLP %d, %d tokens\n", t.Kind, t.NumLayers(), t.Width, t.Heads, t.MLPWidth, seq)
	}
	fmt.Fprintf(w, "step       %d images, %d classes; optimizer %s, state copies per trainable parameter: %d\n", s.Batch, s.Classes, s.Optimizer.Kind, r.Full.StateSlots)
	ch := r.Chosen.Estimate
	desc := strings.Join(r.Chosen.Strategies, ",")
	var parts []string
	for _, t := range ch.Towers {
		if t.Cached {
			parts = append(parts, fmt.Sprintf("%s from layer %d", t.Kind, t.Start))
		}
	}
	if ch.CSkip != nil {
		parts = append(parts, fmt.Sprintf("%d classes per step (K %d + %.1f expected tail, ratio %g, max %d, lambda %g)",
			ch.CSkip.K, ch.CSkip.K, ch.CSkip.ExpectedTail, ch.CSkip.Config.Ratio, ch.CSkip.Config.Max, ch.CSkip.Config.Lambda))
	}
	if len(parts) > 0 {
		desc += ": " + strings.Join(parts, "; ")
	}
	fmt.Fprintf(w, "chosen     %s\n\n", desc)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "SETTING\tPART\tRUNS\tROWS\tTRAINABLE\tOPT STATE\tFORWARD\tBACKWARD\tSTEP\tACTIVATIONS\tPREFIX/ITEM\t")
	block := func(name string, e *cost.Estimate) {
		for _, t := range e.Towers {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", name, t.Kind, towerRun(t), rowsHuman(t.Rows),
				human(t.TrainableParams), bytesHuman(t.OptimizerBytes), flopsHuman(t.ForwardFLOPs), flopsHuman(t.BackwardFLOPs),
				flopsHuman(t.StepFLOPs()), cost.FormatBytesF(t.ActivationBytes), flopsHuman(t.PrefixFLOPsPerItem))
			name = ""
		}
		h := e.Head
		fmt.Fprintf(tw, "\thead\t\t\t%s\t%s\t%s\t%s\t%s\t%s\t\t\n", human(h.TrainableParams), bytesHuman(h.OptimizerBytes),
			flopsHuman(h.ForwardFLOPs), flopsHuman(h.BackwardFLOPs), flopsHuman(h.StepFLOPs()), cost.FormatBytesF(h.ActivationBytes))
		c := e.Total
		fmt.Fprintf(tw, "\ttotal\t\t\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", human(c.TrainableParams), bytesHuman(c.OptimizerBytes),
			flopsHuman(c.ForwardFLOPs), flopsHuman(c.BackwardFLOPs), flopsHuman(c.StepFLOPs()), cost.FormatBytesF(c.ActivationBytes), "")
	}
	block("full FT", r.Full)
	block(strings.Join(r.Chosen.Strategies, ","), ch)
	rt := r.Chosen.Ratios
	fmt.Fprintf(tw, "ratio\t\t\t\t%s\t%s\t%s\t%s\t%s\t%s\t\t\n", ratioHuman(rt.TrainableParams), ratioHuman(rt.OptimizerBytes),
		ratioHuman(div(ch.Total.ForwardFLOPs, r.Full.Total.ForwardFLOPs)), ratioHuman(div(ch.Total.BackwardFLOPs, r.Full.Total.BackwardFLOPs)),
		ratioHuman(rt.StepFLOPs), ratioHuman(rt.ActivationBytes))
	if err := tw.Flush(); err != nil {
		return err
	}
	if ch.TextPrefixFLOPs > 0 || ch.ImagePrefixFLOPs > 0 {
		fmt.Fprintf(w, "cached prefix: %s once for the %d class prompts, %s per image per epoch\n",
			flopsHuman(ch.TextPrefixFLOPs), s.Classes, flopsHuman(ch.ImagePrefixFLOPs))
	}

	cs := "CSkip defaults"
	if r.Chosen.Estimate.CSkip != nil {
		c := r.Chosen.Estimate.CSkip.Config
		cs = fmt.Sprintf("ratio %g, max %d, lambda %g", c.Ratio, c.Max, c.Lambda)
	} else if c, err := cskip.ParseConfig(defaultArgs("cskip")); err == nil {
		cs = fmt.Sprintf("ratio %g, max %d, lambda %g", c.Ratio, c.Max, c.Lambda)
	}
	fmt.Fprintf(w, "\nsweep: LSkip start layer omega in both towers, CSkip off and on (%s); ratios to full FT\n", cs)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "OMEGA\tCSKIP\tTRAINABLE\t\tOPT STATE\t\tSTEP\t\tACTIVATIONS\t\tTEXT PREFIX\tPREFIX/IMAGE\t")
	for _, row := range r.Sweep {
		omega := strconv.Itoa(row.VisionStart)
		if row.VisionStart != row.TextStart {
			omega = fmt.Sprintf("%d/%d", row.VisionStart, row.TextStart)
		}
		on := "off"
		if row.CSkip {
			on = "on"
		}
		c := row.Total
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", omega, on,
			human(c.TrainableParams), ratioHuman(row.Ratios.TrainableParams),
			bytesHuman(c.OptimizerBytes), ratioHuman(row.Ratios.OptimizerBytes),
			flopsHuman(c.StepFLOPs()), ratioHuman(row.Ratios.StepFLOPs),
			cost.FormatBytesF(c.ActivationBytes), ratioHuman(row.Ratios.ActivationBytes),
			flopsHuman(row.TextPrefixFLOPs), flopsHuman(row.ImagePrefixFLOPs))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nFLOPs count MatMul, Gemm and Conv (multiply-add = 2); activations are what the backward pass keeps\n"+
		"(bytes); the cached prefix runs once for the class prompts and once per image per epoch, not per step.\n")
	return nil
}

// defaultArgs are a built-in strategy's parameter defaults.
func defaultArgs(name string) map[string]string {
	args := map[string]string{}
	if s, ok := strategy.Builtin(name); ok {
		for _, p := range s.Info().Params {
			args[p.Name] = p.Default
		}
	}
	return args
}
