package bundle

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/skipgraph/skipgraph/clip"
	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/graph"
	"github.com/skipgraph/skipgraph/plugins/cskip"
	"github.com/skipgraph/skipgraph/rewrite"
	"github.com/skipgraph/skipgraph/rewrite/grad"
	_ "github.com/skipgraph/skipgraph/rewrite/opt" // registers fold-identity
	"github.com/skipgraph/skipgraph/strategy"
)

// TrainPipeline is the order of the passes that turn a copy of the source model into
// train_step.onnx. `skipgraph convert --dump-after NAME` prints the graph after any of them.
var TrainPipeline = []string{
	"raise-opset", "apply-patch", "stop-gradient", "cut-prefix", "trainable-inputs",
	"class-gather", "loss", "loss-scale", "backward", "lower-precision", "optimizer", "skip-nonfinite", "emit-grads",
	"lower-stop-gradient", "fold-identity", "dce", "sort",
}

// trainState is what the train-step passes share.
type trainState struct {
	src       *SourceModel
	plan      *strategy.Plan
	trainable map[string]bool
	cuts      map[string]*graph.Value
	man       *Manifest
	opts      Options

	params     []*graph.Value
	labels     *graph.Value
	lossLabels *graph.Value
	kept       *graph.Value
	loss       *graph.Value
	grads      map[*graph.Value]*graph.Value
	cskip      *CSkipRecord

	// mixed precision: the value the backward pass starts from (the loss, scaled with loss
	// scaling), nodes that stay float32, and whether this step's gradients are all finite.
	backwardFrom *graph.Value
	keepFP32     map[*graph.Node]bool
	finite       *graph.Value
}

// lossScaling reports whether the step scales its loss (always at fp16).
func (ts *trainState) lossScaling() bool {
	return ts.opts.LossScaling || strings.EqualFold(ts.opts.Precision, PrecisionFP16)
}

func stateOf(args rewrite.Args) *trainState { return args["state"].(*trainState) }

// trainPass registers a train-step pass whose run function gets the shared state.
func trainPass(name, doc string, requires []string, run func(c *rewrite.Context, ts *trainState) (bool, error)) {
	rewrite.Register(&rewrite.Pass{Name: name, Doc: doc, Requires: requires,
		Run: func(c *rewrite.Context, args rewrite.Args) (bool, error) { return run(c, stateOf(args)) }})
}

func init() {
	trainPass("raise-opset", "raise the default-domain opset to one the gradient ops need (>= 16; 17 from 13..15)", nil,
		func(c *rewrite.Context, _ *trainState) (bool, error) {
			before := c.Model.Opset("")
			if err := raiseOpset(c.Model); err != nil {
				return false, err
			}
			return c.Model.Opset("") != before, nil
		})

	trainPass("apply-patch", "add the strategies' patch nodes and rewire inputs", nil,
		func(c *rewrite.Context, ts *trainState) (bool, error) {
			// a patch comes from a strategy, often a plugin: what is wrong with it is its input
			return ts.plan.Patch != nil, errs.AsInput(applyPatch(c.Model, ts.plan.Patch))
		})

	trainPass("stop-gradient", "keep only logits_per_image as output; put StopGradient markers on uncached boundaries", []string{"apply-patch"},
		func(c *rewrite.Context, ts *trainState) (bool, error) {
			g := c.Graph()
			logits := g.Value(ts.src.Structure.Head.LogitsPerImage)
			if logits == nil {
				return false, fmt.Errorf("logits value %q not found", ts.src.Structure.Head.LogitsPerImage)
			}
			g.Outputs = []*graph.Value{logits}
			for _, bd := range ts.plan.StopGradients {
				if !bd.Cache {
					grad.InsertStopGradient(c.Model, g.Value(bd.Value))
				}
			}
			return true, g.Sort()
		})

	trainPass("cut-prefix", "replace each cached boundary by a state.<tower> input, dropping the frozen prefix", []string{"stop-gradient"},
		func(c *rewrite.Context, ts *trainState) (bool, error) {
			g, st := c.Graph(), ts.src.Structure
			var cps []rewrite.CutPoint
			for _, tower := range slices.Sorted(maps.Keys(ts.cuts)) {
				cps = append(cps, rewrite.CutPoint{Value: g.Value(ts.cuts[tower].Name), Name: stateName(tower), Type: stateType(ts.src.Model, st.Tower(clip.TowerKind(tower)))})
			}
			if len(cps) == 0 {
				return false, nil
			}
			if err := rewrite.Cut(g, cps); err != nil {
				return false, err
			}
			if st.Vision != nil && ts.cuts["vision"] != nil {
				for _, in := range g.Inputs {
					if slices.Contains(st.Vision.Inputs, in.Name) {
						return false, fmt.Errorf("the trainable layers still read the image input %q directly, so it cannot be cached", in.Name)
					}
				}
			}
			return true, nil
		})

	trainPass("trainable-inputs", "turn the trainable parameters into inputs named as their initializers (float32 masters)", []string{"cut-prefix"},
		func(c *rewrite.Context, ts *trainState) (bool, error) {
			g := c.Graph()
			for _, p := range ts.man.Parameters {
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
				ts.params = append(ts.params, v)
			}
			batch := graph.Sym("batch")
			if dims := g.Outputs[0].Type.Shape; len(dims) == 2 {
				batch = dims[0]
			}
			var err error
			ts.labels, err = g.AddInput("labels", graph.Type{Elem: graph.Int64, Shape: []graph.Dim{batch}, HasShape: true})
			ts.lossLabels = ts.labels
			return true, err
		})

	trainPass("class-gather", "CSkip: select K classes per step inside the graph and gather the class-indexed inputs", []string{"trainable-inputs"},
		func(c *rewrite.Context, ts *trainState) (bool, error) {
			g, st := c.Graph(), ts.src.Structure
			changed := false
			for _, pc := range ts.plan.Passes {
				if pc.Name != cskip.PassName {
					continue
				}
				cfg, err := cskip.ParseConfig(pc.Args)
				if err != nil {
					return false, err
				}
				ts.cskip = &CSkipRecord{Ratio: cfg.Ratio, Max: cfg.Max, Lambda: cfg.Lambda, Seed: cfg.Seed}
				spec := rewrite.ClassGatherSpec{ImageFeatures: g.Value(st.Head.ImageEmbeds), Labels: ts.labels}
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
				if ts.lossLabels, ts.kept, err = rewrite.ClassGather(g, c.Model.Opset(""), spec); err != nil {
					return false, err
				}
				changed = true
			}
			return changed, nil
		})

	trainPass("loss", "append the mean softmax cross-entropy of logits_per_image against the labels", []string{"class-gather"},
		func(c *rewrite.Context, ts *trainState) (bool, error) {
			g := c.Graph()
			logits := g.Outputs[0]
			ts.loss = grad.SoftmaxCrossEntropy(graph.NewBuilder(g, "loss"), logits, ts.lossLabels)
			if err := g.Rename(ts.loss, "loss"); err != nil {
				return false, err
			}
			ts.loss.Type = graph.TensorType(graph.Float)
			g.Outputs = []*graph.Value{ts.loss}
			if ts.kept != nil {
				// the classes kept at this step, for logs and checks
				out := graph.NewBuilder(g, "cskip").Op("Identity", []*graph.Value{ts.kept})
				if err := g.Rename(out, CSkipClassesOutput); err != nil {
					return false, err
				}
				out.Type = graph.Type{Elem: graph.Int64, Shape: []graph.Dim{graph.Sym("kept_classes")}, HasShape: true}
				g.AddOutput(out)
			}
			// The logits the loss is computed from, so that a trainer can report accuracy
			// without another forward pass (computed only when bound).
			lo := graph.NewBuilder(g, "logits").Op("Identity", []*graph.Value{logits})
			if err := g.Rename(lo, LogitsOutput); err != nil {
				return false, err
			}
			lo.Type = graph.Type{Elem: graph.Float, Shape: []graph.Dim{graph.Sym("batch"), graph.Sym("logit_classes")}, HasShape: true}
			g.AddOutput(lo)
			return true, nil
		})

	trainPass("backward", "reverse-mode gradients of the loss with respect to the trainable inputs, from standard ONNX ops", []string{"loss"},
		func(c *rewrite.Context, ts *trainState) (bool, error) {
			var err error
			from := ts.loss
			if ts.backwardFrom != nil {
				from = ts.backwardFrom
			}
			ts.grads, err = grad.Backward(c.Model, from, ts.params, grad.Options{})
			return true, err
		})

	trainPass("loss-scale", "with loss scaling (fp16), start the backward pass from loss * loss_scale", []string{"loss"},
		func(c *rewrite.Context, ts *trainState) (bool, error) {
			if !ts.lossScaling() {
				return false, nil
			}
			scaled, n, err := addLossScale(c.Graph(), ts.loss)
			if err != nil {
				return false, err
			}
			ts.backwardFrom = scaled
			ts.keepFP32 = map[*graph.Node]bool{n: true}
			ts.man.LossScale = &LossScaleRecord{Init: LossScaleInit, Growth: LossScaleGrowth, Backoff: LossScaleBackoff, Interval: LossScaleInterval}
			return true, nil
		})

	trainPass("lower-precision", "with --precision fp16 or bf16, compute forward and backward in it (float32 master weights, normalisations and reductions); unscale and check the gradients with loss scaling", []string{"backward"},
		func(c *rewrite.Context, ts *trainState) (bool, error) {
			dt, err := precisionDType(ts.opts.Precision)
			if err != nil {
				return false, err
			}
			g := c.Graph()
			if err := g.Sort(); err != nil {
				return false, err
			}
			n, err := lowerPrecision(g, dt, ts.keepFP32, ts.grads)
			if err != nil {
				return false, err
			}
			if dt != graph.Float {
				ts.man.Precision = strings.ToLower(ts.opts.Precision)
			}
			if ts.lossScaling() {
				ts.finite = unscaleGrads(g, ts.params, ts.grads)
			}
			return n > 0 || ts.lossScaling(), nil
		})

	trainPass("skip-nonfinite", "with loss scaling, keep every parameter and state when a gradient is not finite, and update the scale", []string{"optimizer"},
		func(c *rewrite.Context, ts *trainState) (bool, error) {
			if ts.finite == nil {
				return false, nil
			}
			return true, skipNonFinite(c.Graph(), ts.finite, ts.man.LossScale)
		})

	trainPass("optimizer", "the optimizer update: <name>.next and optimizer-state .next outputs, lr.<group> and step inputs", []string{"backward"},
		func(c *rewrite.Context, ts *trainState) (bool, error) {
			g := c.Graph()
			lrs := map[string]*graph.Value{}
			for _, grp := range groupsOf(ts.man) {
				v, err := g.AddInput("lr."+grp, graph.TensorType(graph.Float))
				if err != nil {
					return false, err
				}
				lrs[grp] = v
			}
			step, err := g.AddInput("step", graph.TensorType(graph.Float))
			if err != nil {
				return false, err
			}
			var steps []rewrite.OptimizerStep
			for _, p := range ts.params {
				steps = append(steps, rewrite.OptimizerStep{Param: p, Grad: ts.grads[p], LR: lrs[ts.man.Param(p.Name).Group]})
			}
			return true, rewrite.AppendOptimizer(g, ts.opts.Optimizer, steps, step)
		})

	trainPass("emit-grads", "with --emit-grads, add each gradient as an output <name>_grad", []string{"backward"},
		func(c *rewrite.Context, ts *trainState) (bool, error) {
			if !ts.opts.EmitGrads {
				return false, nil
			}
			g := c.Graph()
			b := graph.NewBuilder(g, "grads")
			for _, p := range ts.params {
				out := b.Op("Identity", []*graph.Value{ts.grads[p]})
				if err := g.Rename(out, p.Name+"_grad"); err != nil {
					return false, err
				}
				out.Type = p.Type
				g.AddOutput(out)
			}
			return true, nil
		})

	trainPass("sort", "order the nodes topologically, keeping the existing order where possible", nil,
		func(c *rewrite.Context, _ *trainState) (bool, error) { return true, c.Graph().Sort() })
}
