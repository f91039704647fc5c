package bundle

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/skipgraph/skipgraph/clip"
	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/graph"
	"github.com/skipgraph/skipgraph/rewrite"
	"github.com/skipgraph/skipgraph/rewrite/classsel"
	"github.com/skipgraph/skipgraph/rewrite/grad"
	"github.com/skipgraph/skipgraph/rewrite/opt"
	"github.com/skipgraph/skipgraph/strategy"
)

// Pipeline is the ordered list of passes that makes one graph of the bundle from a copy of the
// source model.
type Pipeline struct {
	// Graph is the manifest key of the graph it makes.
	Graph GraphKey
	// File is the graph's file in the bundle.
	File string
	// Passes are run in this order by a rewrite.Manager, which checks each pass's Requires,
	// verifies the graph after every pass that changed it, and can dump it after any of them.
	Passes []*rewrite.Pass
}

// Pipelines is the one table of the bundle's passes: for each graph, the passes that make it,
// in order. `skipgraph convert --dump-after NAME` prints the train-step graph after any pass of
// the train-step pipeline.
var Pipelines = []Pipeline{
	{Graph: SourceGraph, Passes: []*rewrite.Pass{rewrite.UpcastFloat16}},
	{Graph: GraphFeatures, File: FeaturesFile, Passes: []*rewrite.Pass{
		KeepPrefix, rewrite.LowerStopGradient, rewrite.DCE, rewrite.Sort}},
	{Graph: GraphEval, File: EvalFile, Passes: []*rewrite.Pass{
		ParamsAsInputs, rewrite.LowerStopGradient, rewrite.DCE, rewrite.Sort}},
	{Graph: GraphTrainStep, File: TrainStepFile, Passes: []*rewrite.Pass{
		RaiseOpset, ApplyPatch, StopGradient, CutPrefix, TrainableInputs, ClassGather, Loss,
		LossScale, Backward, LowerPrecision, Optimizer, SkipNonFinite, EmitGrads,
		rewrite.LowerStopGradient, opt.FoldIdentity, rewrite.DCE, rewrite.Sort}},
}

// SourceGraph is the Pipelines key of the loaded source model, prepared before discovery; it is
// not written to the bundle.
const SourceGraph GraphKey = "source"

// PipelineOf returns the pipeline that makes the graph with the given manifest key.
func PipelineOf(graphKey GraphKey) Pipeline {
	for _, p := range Pipelines {
		if p.Graph == graphKey {
			return p
		}
	}
	panic("bundle: no pipeline for graph " + string(graphKey))
}

// TrainPipeline names the passes that turn a copy of the source model into train_step.onnx,
// in order.
var TrainPipeline = rewrite.Names(PipelineOf(GraphTrainStep).Passes)

// buildEnv is the input every bundle pass reads (rewrite.EnvOf): the source, the strategies'
// plan, the options, and the manifest the passes record their inputs and outputs in.
type buildEnv struct {
	src       *SourceModel
	plan      *strategy.Plan
	trainable map[string]bool
	cuts      map[string]*graph.Value
	man       *Manifest
	opts      Options

	// io are the inputs and outputs the passes of the running pipeline created, for the
	// manifest (each pass records those it creates).
	io *ioRecords
}

// lossScaling reports whether the step scales its loss (always at fp16).
func (e *buildEnv) lossScaling() bool {
	return e.opts.LossScaling || strings.EqualFold(e.opts.Precision, PrecisionFP16)
}

func envOf(c *rewrite.Context) *buildEnv { return rewrite.EnvOf[*buildEnv](c) }

// result reads the typed result a required pass left; a pass whose result is missing there is
// a programming error in the pipeline table.
func result[T any](c *rewrite.Context, p *rewrite.Pass) T {
	v, ok := rewrite.ResultOf[T](c, p)
	if !ok {
		panic(fmt.Sprintf("bundle: pass %q left no %T result", p.Name, v))
	}
	return v
}

// Results of the train-step passes.
type (
	// paramsResult is TrainableInputs's result: the float32 parameter inputs, in manifest
	// order, and the labels input.
	paramsResult struct {
		params []*graph.Value
		labels *graph.Value
	}
	// gatherResult is ClassGather's result: the labels the loss reads (remapped to kept
	// positions with CSkip), the kept class ids (nil without CSkip) and the CSkip record.
	gatherResult struct {
		lossLabels *graph.Value
		kept       *graph.Value
		record     *CSkipRecord
	}
	// lossScaleResult is LossScale's result when it scaled: the value the backward pass
	// starts from and the nodes that stay float32.
	lossScaleResult struct {
		from     *graph.Value
		keepFP32 map[*graph.Node]bool
	}
	// gradsResult is Backward's result: each parameter's gradient.
	gradsResult map[*graph.Value]*graph.Value
	// finiteResult is LowerPrecision's result with loss scaling: whether every gradient of
	// the step is finite.
	finiteResult struct{ finite *graph.Value }
)

// KeepPrefix makes the frozen prefix: the source's inputs to the cached boundary states.
var KeepPrefix = rewrite.Register(&rewrite.Pass{
	Name: "keep-prefix",
	Doc:  "features: keep only the frozen prefix, with each cached boundary state as an output state.<tower>",
	Run: func(c *rewrite.Context) (bool, error) {
		e := envOf(c)
		var outs []rewrite.CutPoint
		for _, tower := range slices.Sorted(maps.Keys(e.cuts)) {
			v := c.Graph().Value(e.cuts[tower].Name)
			outs = append(outs, rewrite.CutPoint{Value: v, Name: stateName(tower), Type: stateType(e.src.Model, e.src.Structure.Tower(clip.TowerKind(tower)))})
			e.io.output(stateName(tower), RoleState, "the residual stream entering the first trained layer")
		}
		return true, rewrite.KeepOutputs(c.Graph(), outs)
	},
})

// ParamsAsInputs makes the eval graph's trainable parameters inputs backed by initializers.
var ParamsAsInputs = rewrite.Register(&rewrite.Pass{
	Name: "params-as-inputs",
	Doc:  "eval: make the trainable parameters inputs that default to their initial values",
	Run: func(c *rewrite.Context) (bool, error) {
		e, g := envOf(c), c.Graph()
		changed := false
		for _, v := range g.Initializers {
			if e.trainable[v.Name] && !v.IsGraphInput() {
				g.Inputs = append(g.Inputs, v)
				e.io.input(v.Name, RoleParam, paramOrigin(v.Name, true)).Param = v.Name
				changed = true
			}
		}
		return changed, nil
	},
})

// RaiseOpset raises the default-domain opset.
var RaiseOpset = rewrite.Register(&rewrite.Pass{
	Name: "raise-opset",
	Doc:  "raise the default-domain opset to one the gradient ops need (>= 16; 17 from 13..15)",
	Run: func(c *rewrite.Context) (bool, error) {
		before := c.Model.Opset("")
		if err := raiseOpset(c.Model); err != nil {
			return false, err
		}
		return c.Model.Opset("") != before, nil
	},
})

// ApplyPatch applies the strategies' patch.
var ApplyPatch = rewrite.Register(&rewrite.Pass{
	Name: "apply-patch",
	Doc:  "add the strategies' patch nodes and rewire inputs",
	Run: func(c *rewrite.Context) (bool, error) {
		e := envOf(c)
		// a patch comes from a strategy, often a plugin: what is wrong with it is its input
		return e.plan.Patch != nil, errs.AsInput(applyPatch(c.Model, e.plan.Patch))
	},
})

// StopGradient keeps the logits as the only output and marks uncached boundaries.
var StopGradient = rewrite.Register(&rewrite.Pass{
	Name:     "stop-gradient",
	Doc:      "keep only logits_per_image as output; put StopGradient markers on uncached boundaries",
	Requires: []*rewrite.Pass{ApplyPatch},
	Run: func(c *rewrite.Context) (bool, error) {
		e, g := envOf(c), c.Graph()
		logits := g.Value(e.src.Structure.Head.LogitsPerImage)
		if logits == nil {
			return false, fmt.Errorf("logits value %q not found", e.src.Structure.Head.LogitsPerImage)
		}
		g.Outputs = []*graph.Value{logits}
		for _, bd := range e.plan.StopGradients {
			if !bd.Cache {
				grad.InsertStopGradient(c.Model, g.Value(bd.Value))
			}
		}
		return true, g.Sort()
	},
})

// CutPrefix drops the frozen prefix, reading cached states instead.
var CutPrefix = rewrite.Register(&rewrite.Pass{
	Name:     "cut-prefix",
	Doc:      "replace each cached boundary by a state.<tower> input, dropping the frozen prefix",
	Requires: []*rewrite.Pass{StopGradient},
	Run: func(c *rewrite.Context) (bool, error) {
		e := envOf(c)
		g, st := c.Graph(), e.src.Structure
		var cps []rewrite.CutPoint
		for _, tower := range slices.Sorted(maps.Keys(e.cuts)) {
			cps = append(cps, rewrite.CutPoint{Value: g.Value(e.cuts[tower].Name), Name: stateName(tower), Type: stateType(e.src.Model, st.Tower(clip.TowerKind(tower)))})
			e.io.input(stateName(tower), RoleState, "output "+stateName(tower)+" of "+FeaturesFile+" (the frozen prefix), cached")
		}
		if len(cps) == 0 {
			return false, nil
		}
		if err := rewrite.Cut(g, cps); err != nil {
			return false, err
		}
		if st.Vision != nil && e.cuts["vision"] != nil {
			for _, in := range g.Inputs {
				if slices.Contains(st.Vision.Inputs, in.Name) {
					return false, fmt.Errorf("the trainable layers still read the image input %q directly, so it cannot be cached", in.Name)
				}
			}
		}
		return true, nil
	},
})

// TrainableInputs turns the trainable parameters into float32 inputs and adds the labels.
var TrainableInputs = rewrite.Register(&rewrite.Pass{
	Name:     "trainable-inputs",
	Doc:      "turn the trainable parameters into inputs named as their initializers (float32 masters)",
	Requires: []*rewrite.Pass{CutPrefix},
	Run: func(c *rewrite.Context) (bool, error) {
		e, g := envOf(c), c.Graph()
		res := &paramsResult{}
		for _, p := range e.man.Parameters {
			if !p.Trainable {
				continue
			}
			v := g.Value(p.Initializer)
			if v == nil || v.Const == nil {
				return false, errs.Input("parameter %s (%s) is trainable but only feeds the frozen prefix; freeze it or move the boundary", p.Initializer, joinNames(p.Canonical))
			}
			t, err := g.InitializerToInput(v)
			if err != nil {
				return false, err
			}
			v.Type = graph.TensorType(graph.Float, t.Dims...)
			if t.DType != graph.Float {
				if err := castParam(g, v, t.DType); err != nil {
					return false, err
				}
			}
			res.params = append(res.params, v)
			e.io.input(v.Name, RoleParam, paramOrigin(v.Name, false)).Param = v.Name
		}
		batch := graph.Sym("batch")
		if dims := g.Outputs[0].Type.Shape; len(dims) == 2 {
			batch = dims[0]
		}
		var err error
		res.labels, err = g.AddInput("labels", graph.Type{Elem: graph.Int64, Shape: []graph.Dim{batch}, HasShape: true})
		e.io.input("labels", RoleLabels, "the class index of each image of the batch (int64)")
		c.SetResult(res)
		return true, err
	},
})

// ClassGather is CSkip's in-graph class selection.
var ClassGather = rewrite.Register(&rewrite.Pass{
	Name:     "class-gather",
	Doc:      "CSkip: select K classes per step inside the graph and gather the class-indexed inputs",
	Requires: []*rewrite.Pass{TrainableInputs},
	Run: func(c *rewrite.Context) (bool, error) {
		e, g, st := envOf(c), c.Graph(), envOf(c).src.Structure
		res := &gatherResult{lossLabels: result[*paramsResult](c, TrainableInputs).labels}
		c.SetResult(res)
		changed := false
		for _, pc := range e.plan.Passes {
			if pc.Name != classsel.PassName {
				continue
			}
			cfg, err := classsel.ParseConfig(pc.Args)
			if err != nil {
				return false, err
			}
			res.record = &CSkipRecord{Ratio: cfg.Ratio, Max: cfg.Max, Lambda: cfg.Lambda, Seed: cfg.Seed}
			spec := rewrite.ClassGatherSpec{ImageFeatures: g.Value(st.Head.ImageEmbeds), Labels: res.lossLabels}
			if spec.ImageFeatures == nil {
				return false, fmt.Errorf("CSkip needs the normalised image features %q", st.Head.ImageEmbeds)
			}
			if v := g.Value(stateName("text")); v != nil {
				spec.Gathered = append(spec.Gathered, rewrite.ClassAxisValue{Value: v, Axis: int64(st.ClassAxes.TextStream)})
			}
			for _, in := range st.Text.Inputs {
				if v := g.Value(in); v != nil && v.IsGraphInput() {
					spec.Gathered = append(spec.Gathered, rewrite.ClassAxisValue{Value: v, Axis: int64(st.ClassAxes.InputIDs)})
				}
			}
			if res.lossLabels, res.kept, err = rewrite.ClassGather(g, c.Model.Opset(""), spec); err != nil {
				return false, err
			}
			e.io.input(rewrite.CSkipPrototypes, RoleCSkipPrototypes, "normalised text_embeds of all classes from "+EvalFile+" with the initial weights, computed once")
			e.io.input(rewrite.CSkipK, RoleCSkipK, "K = min(ceil(ratio*C), max) for C classes")
			e.io.input(rewrite.CSkipTail, RoleCSkipTail, "rank positions beyond K kept this run, drawn once from the seed (may be empty)")
			changed = true
		}
		return changed, nil
	},
})

// Loss appends the cross-entropy loss; its result is the loss value.
var Loss = rewrite.Register(&rewrite.Pass{
	Name:     "loss",
	Doc:      "append the mean softmax cross-entropy of logits_per_image against the labels",
	Requires: []*rewrite.Pass{ClassGather},
	Run: func(c *rewrite.Context) (bool, error) {
		e, g := envOf(c), c.Graph()
		gr := result[*gatherResult](c, ClassGather)
		logits := g.Outputs[0]
		loss := grad.SoftmaxCrossEntropy(graph.NewBuilder(g, "loss"), logits, gr.lossLabels)
		if err := g.Rename(loss, "loss"); err != nil {
			return false, err
		}
		loss.Type = graph.TensorType(graph.Float)
		g.Outputs = []*graph.Value{loss}
		c.SetResult(loss)
		e.io.output("loss", RoleLoss, "mean softmax cross-entropy of logits_per_image against labels (before the update)")
		if gr.kept != nil {
			// the classes kept at this step, for logs and checks
			out := graph.NewBuilder(g, "cskip").Op("Identity", []*graph.Value{gr.kept})
			if err := g.Rename(out, CSkipClassesOutput); err != nil {
				return false, err
			}
			out.Type = graph.Type{Elem: graph.Int64, Shape: []graph.Dim{graph.Sym("kept_classes")}, HasShape: true}
			g.AddOutput(out)
			e.io.output(CSkipClassesOutput, RoleCSkipClasses, "the class ids kept at this step (ascending); labels were remapped to positions in it")
		}
		// The logits the loss is computed from, so that a trainer can report accuracy
		// without another forward pass (computed only when bound).
		lo := graph.NewBuilder(g, "logits").Op("Identity", []*graph.Value{logits})
		if err := g.Rename(lo, LogitsOutput); err != nil {
			return false, err
		}
		lo.Type = graph.Type{Elem: graph.Float, Shape: []graph.Dim{graph.Sym("batch"), graph.Sym("logit_classes")}, HasShape: true}
		g.AddOutput(lo)
		e.io.output(LogitsOutput, RoleLogits, "as in the source model")
		return true, nil
	},
})

// LossScale scales the loss the backward pass starts from, with loss scaling.
var LossScale = rewrite.Register(&rewrite.Pass{
	Name:     "loss-scale",
	Doc:      "with loss scaling (fp16), start the backward pass from loss * loss_scale",
	Requires: []*rewrite.Pass{Loss},
	Run: func(c *rewrite.Context) (bool, error) {
		e := envOf(c)
		if !e.lossScaling() {
			return false, nil
		}
		scaled, n, err := addLossScale(c.Graph(), result[*graph.Value](c, Loss))
		if err != nil {
			return false, err
		}
		c.SetResult(&lossScaleResult{from: scaled, keepFP32: map[*graph.Node]bool{n: true}})
		e.io.input(LossScaleInput, RoleLossScale, lossScaleOrigin(LossScaleInput))
		e.man.LossScale = &LossScaleRecord{Init: LossScaleInit, Growth: LossScaleGrowth, Backoff: LossScaleBackoff, Interval: LossScaleInterval}
		return true, nil
	},
})

// Backward builds the gradients of the (scaled) loss.
var Backward = rewrite.Register(&rewrite.Pass{
	Name:     "backward",
	Doc:      "reverse-mode gradients of the loss with respect to the trainable inputs, from standard ONNX ops",
	Requires: []*rewrite.Pass{TrainableInputs, Loss, LossScale},
	Run: func(c *rewrite.Context) (bool, error) {
		from := result[*graph.Value](c, Loss)
		if ls, ok := rewrite.ResultOf[*lossScaleResult](c, LossScale); ok {
			from = ls.from
		}
		grads, err := grad.Backward(c.Model, from, result[*paramsResult](c, TrainableInputs).params, grad.Options{})
		c.SetResult(gradsResult(grads))
		return true, err
	},
})

// LowerPrecision computes in float16 or bfloat16 when asked.
var LowerPrecision = rewrite.Register(&rewrite.Pass{
	Name:     "lower-precision",
	Doc:      "with --precision fp16 or bf16, compute forward and backward in it (float32 master weights, normalisations and reductions); unscale and check the gradients with loss scaling",
	Requires: []*rewrite.Pass{TrainableInputs, LossScale, Backward},
	Run: func(c *rewrite.Context) (bool, error) {
		e := envOf(c)
		dt, err := precisionDType(e.opts.Precision)
		if err != nil {
			return false, err
		}
		g := c.Graph()
		if err := g.Sort(); err != nil {
			return false, err
		}
		var keep map[*graph.Node]bool
		if ls, ok := rewrite.ResultOf[*lossScaleResult](c, LossScale); ok {
			keep = ls.keepFP32
		}
		grads := result[gradsResult](c, Backward)
		params := result[*paramsResult](c, TrainableInputs).params
		n, err := lowerPrecision(g, dt, keep, params, grads)
		if err != nil {
			return false, err
		}
		if dt != graph.Float {
			e.man.Precision = strings.ToLower(e.opts.Precision)
		}
		if e.lossScaling() {
			c.SetResult(&finiteResult{finite: unscaleGrads(g, params, grads)})
		}
		return n > 0 || e.lossScaling(), nil
	},
})

// Optimizer appends the optimizer update.
var Optimizer = rewrite.Register(&rewrite.Pass{
	Name:     "optimizer",
	Doc:      "the optimizer update: <name>.next and optimizer-state .next outputs, lr.<group> and step inputs",
	Requires: []*rewrite.Pass{TrainableInputs, Backward},
	Run: func(c *rewrite.Context) (bool, error) {
		e, g := envOf(c), c.Graph()
		lrs := map[string]*graph.Value{}
		for _, grp := range e.man.TrainedGroups() {
			v, err := g.AddInput("lr."+grp, graph.TensorType(graph.Float))
			if err != nil {
				return false, err
			}
			lrs[grp] = v
			e.io.input("lr."+grp, RoleLR, "the learning rate of group "+grp+" at this step (the host runs the schedule)").Group = grp
		}
		step, err := g.AddInput("step", graph.TensorType(graph.Float))
		if err != nil {
			return false, err
		}
		e.io.input("step", RoleStep, "the 1-based step number (AdamW bias correction)")
		grads := result[gradsResult](c, Backward)
		var steps []rewrite.OptimizerStep
		for _, p := range result[*paramsResult](c, TrainableInputs).params {
			gv, err := nameGrad(g, p, grads[p])
			if err != nil {
				return false, err
			}
			grads[p] = gv
			steps = append(steps, rewrite.OptimizerStep{Param: p, Grad: gv, LR: lrs[e.man.Param(p.Name).Group]})
			e.io.output(p.Name+".next", RoleParamNext, "the updated parameter: feed it back as "+p.Name).Param = p.Name
			for _, slot := range e.opts.Optimizer.OptimizerState() {
				name := p.Name + "." + slot
				e.io.input(name, RoleOptimizerState, "zeros of the parameter's shape at the first step; then the previous step's "+name+".next").Param = p.Name
				e.io.output(name+".next", RoleStateNext, "the updated optimizer state: feed it back as "+name).Param = p.Name
			}
		}
		return true, rewrite.AppendOptimizer(g, e.opts.Optimizer, steps, step)
	},
})

// SkipNonFinite keeps the old parameters on a step with a non-finite gradient.
var SkipNonFinite = rewrite.Register(&rewrite.Pass{
	Name:     "skip-nonfinite",
	Doc:      "with loss scaling, keep every parameter and state when a gradient is not finite, and update the scale",
	Requires: []*rewrite.Pass{LowerPrecision, Optimizer},
	Run: func(c *rewrite.Context) (bool, error) {
		f, ok := rewrite.ResultOf[*finiteResult](c, LowerPrecision)
		if !ok {
			return false, nil
		}
		e := envOf(c)
		e.io.input(LossScaleGood, RoleLossScale, lossScaleOrigin(LossScaleGood))
		for _, name := range []string{LossScaleInput, LossScaleGood} {
			e.io.output(name+".next", RoleLossScaleNext, "the loss-scaling state after this step: feed it back as "+name)
		}
		return true, skipNonFinite(c.Graph(), f.finite, e.man.LossScale)
	},
})

// EmitGrads adds the gradients as outputs when asked.
var EmitGrads = rewrite.Register(&rewrite.Pass{
	Name:     "emit-grads",
	Doc:      "with --emit-grads, add each gradient as an output <name>_grad",
	Requires: []*rewrite.Pass{TrainableInputs, Backward},
	Run: func(c *rewrite.Context) (bool, error) {
		e := envOf(c)
		if !e.opts.EmitGrads {
			return false, nil
		}
		g := c.Graph()
		grads := result[gradsResult](c, Backward)
		for _, p := range result[*paramsResult](c, TrainableInputs).params {
			out, err := nameGrad(g, p, grads[p])
			if err != nil {
				return false, err
			}
			g.AddOutput(out)
			e.io.output(p.Name+"_grad", RoleGrad, "gradient of the loss with respect to "+p.Name+", in its layout").Param = p.Name
		}
		return true, nil
	},
})

// GradSuffix ends the name of each parameter's gradient value in train_step.onnx: the
// gradient of p, in p's layout and float32, is the value p + GradSuffix (an output only with
// --emit-grads). A host that applies the update itself computes those values alone.
const GradSuffix = "_grad"

// nameGrad gives the gradient value gv of parameter p the name p.Name + GradSuffix and p's type:
// gv itself when nothing else claims it (it then stays the value the update reads), or an
// Identity of it. A value already so named is returned as it is.
func nameGrad(g *graph.Graph, p, gv *graph.Value) (*graph.Value, error) {
	name := p.Name + GradSuffix
	if gv.Name == name {
		return gv, nil
	}
	if prod, _ := gv.Producer(); prod == nil || gv.IsGraphOutput() || g.Value(name) != nil {
		out := graph.NewBuilder(g, "grads").Op("Identity", []*graph.Value{gv})
		if err := g.Rename(out, name); err != nil {
			return nil, err
		}
		out.Type = p.Type
		return out, nil
	}
	if err := g.Rename(gv, name); err != nil {
		return nil, err
	}
	gv.Type = p.Type
	return gv, nil
}

// lossScaleOrigin says where a loss-scaling input's value comes from.
func lossScaleOrigin(name string) string {
	return "dynamic loss scaling: the scale (initially manifest loss_scale.init) and the count of finite steps since it last changed (initially 0); then the previous step's " + name + ".next"
}

// upcastSource runs the source pipeline on a loaded model (named path in errors) and returns the
// initializers it converted to float32, with their source dtypes.
func upcastSource(m *graph.Model, path string) (map[string]graph.DType, error) {
	c, err := rewrite.NewManager(PipelineOf(SourceGraph).Passes...).Run(m)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return result[map[string]graph.DType](c, rewrite.UpcastFloat16), nil
}

// runPipeline makes the graph key names from a copy of the source model through a
// rewrite.Manager, returning the model and the passes' results.
func runPipeline(graphKey GraphKey, e *buildEnv) (*graph.Model, *rewrite.Context, error) {
	m := e.src.Model.Clone()
	e.io = newIORecords()
	mgr := rewrite.NewManager(PipelineOf(graphKey).Passes...)
	mgr.Env, mgr.Logf = e, e.opts.Logf
	if graphKey == GraphTrainStep {
		mgr.DumpAfter, mgr.DumpTo = e.opts.DumpAfter, e.opts.DumpTo
	}
	if after := e.opts.AfterPass; after != nil {
		mgr.After = func(p *rewrite.Pass, m *graph.Model) error { return after(graphKey, p, m) }
	}
	c, err := mgr.Run(m)
	if err != nil {
		return nil, nil, err
	}
	return m, c, nil
}

// WritePassTable writes the Pipelines table as Markdown: each graph's passes in order, with the
// first line of each pass's Doc. docs/architecture.md holds its output (a test keeps it equal).
func WritePassTable(w io.Writer) error {
	var b strings.Builder
	b.WriteString("| graph | # | pass | what it does |\n| --- | --- | --- | --- |\n")
	for _, p := range Pipelines {
		for i, pass := range p.Passes {
			doc, _, _ := strings.Cut(pass.Doc, "\n")
			fmt.Fprintf(&b, "| %s | %d | `%s` | %s |\n", p.Graph, i, pass.Name, strings.ReplaceAll(doc, "|", `\|`))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
