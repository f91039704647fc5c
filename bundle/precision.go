package bundle

import (
	"fmt"
	"strings"

	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/graph"
	"github.com/skipgraph/skipgraph/rewrite/grad"
)

// Mixed precision of the train step. The parameters, their gradients as the optimizer sees
// them and the optimizer state stay float32 (master weights); the forward and backward compute
// runs in float16 or bfloat16: every parameter and data input is cast down where the compute
// reads it, and each gradient is cast back up before the optimizer. Ops whose range or
// accumulation suffers in 16 bits (normalisations, softmax, reductions, exp/log/pow/sqrt,
// divisions, the loss) stay in float32, as in PyTorch's autocast; the graph casts at each
// boundary between the two.
//
// With loss scaling (always for float16) the loss is multiplied by the input loss_scale before
// the backward pass and the gradients are divided by it; a step whose gradients are not all
// finite changes nothing (every parameter and state keeps its value), halves the scale and
// restarts the count of good steps; LossScaleInterval good steps in a row double it. The scale
// and the count are state that the step reads and writes like the optimizer state
// (loss_scale, loss_scale.good and their .next outputs), so the host never reads them.

// Precisions accepted by Options.Precision.
const (
	PrecisionFP32 = "fp32"
	PrecisionFP16 = "fp16"
	PrecisionBF16 = "bf16"
)

// Names of the loss-scaling inputs (outputs add ".next").
const (
	LossScaleInput = "loss_scale"
	LossScaleGood  = "loss_scale.good"
)

// Loss-scaling defaults (those of PyTorch's GradScaler).
const (
	LossScaleInit     = 65536.0
	LossScaleGrowth   = 2.0
	LossScaleBackoff  = 0.5
	LossScaleInterval = 2000
)

// LossScaleRecord describes dynamic loss scaling in the manifest.
type LossScaleRecord struct {
	Init     float64 `json:"init"`
	Growth   float64 `json:"growth"`
	Backoff  float64 `json:"backoff"`
	Interval int     `json:"interval"`
}

// precisionDType returns the compute dtype of a precision name.
func precisionDType(p string) (graph.DType, error) {
	switch strings.ToLower(p) {
	case "", PrecisionFP32:
		return graph.Float, nil
	case PrecisionFP16:
		return graph.Float16, nil
	case PrecisionBF16:
		return graph.BFloat16, nil
	}
	return graph.Undefined, errs.Input("unknown precision %q (want fp32, fp16 or bf16)", p)
}

// lowOps run in the low precision: matrix products and the ops that only move, select or add
// values, whose every floating-point input shares one type. The scatters of Gather gradients
// (accumulating with reduction "add") stay float32, as does everything not listed.
var lowOps = map[string]bool{
	"MatMul": true, "Gemm": true, "Conv": true, "ConvTranspose": true, "Add": true, "Sub": true,
	"Mul": true, "Neg": true, "Abs": true, "Relu": true, "Tanh": true, "Sigmoid": true,
	"Max": true, "Min": true, "Where": true, "Transpose": true, "Reshape": true, "Squeeze": true,
	"Unsqueeze": true, "Flatten": true, "Concat": true, "Split": true, "Slice": true,
	"Gather": true, "Expand": true, "Identity": true, "Cast": true, "Tile": true,
	"Einsum": true, "Sum": true, "Clip": true, "Pad": true,
}

// maxHalf is the largest finite float16.
const maxHalf = 65504

// anyTypeOps read their input whatever its type (only its shape): no cast is put before them.
var anyTypeOps = map[string]bool{"Shape": true, "Size": true}

// lowerPrecision rewrites the forward and backward compute of g to dt (see the comment at the
// top of the file). keep lists nodes that stay float32 whatever their op. grads are rewired to
// float32 casts of the low-precision gradients. It returns the number of casts it added.
func lowerPrecision(g *graph.Graph, dt graph.DType, keep map[*graph.Node]bool, params []*graph.Value, grads map[*graph.Value]*graph.Value) (int, error) {
	if dt == graph.Float {
		return 0, nil
	}
	types := grad.NewTypes()
	nodes := g.Nodes()
	orig := map[*graph.Value]graph.DType{}
	note := func(v *graph.Value) {
		if v != nil {
			if _, ok := orig[v]; !ok {
				orig[v] = types.DType(v)
			}
		}
	}
	for _, v := range g.Inputs {
		note(v)
	}
	for _, v := range g.Initializers {
		note(v)
	}
	for _, n := range nodes {
		for _, v := range n.Inputs() {
			note(v)
		}
		for _, v := range n.Outputs() {
			note(v)
		}
	}
	// Values that derive only from constants (pureConst) or from constants and the loss scale
	// (pureScale) are computed in float32: the nodes making them stay float32, so that a
	// float32 constant such as the mask value -3.4e38 and a loss scale of 65536 keep their
	// value; a constant cast down to float16 saturates at +-65504 instead of becoming inf.
	const pureConst, pureScale = 1, 2
	pure := map[*graph.Value]int{}
	for _, v := range g.Initializers {
		if !v.IsGraphInput() {
			pure[v] = pureConst
		}
	}
	if v := g.Value(LossScaleInput); v != nil {
		pure[v] = pureScale
	}
	low := map[*graph.Node]bool{}
	for _, n := range nodes {
		kind, touchesFloat := 0, false
		switch {
		case n.OpType == "Constant":
			kind = pureConst
		case n.NumInputs() > 0:
			kind = pureConst
			for _, v := range n.Inputs() {
				if v != nil && pure[v] == 0 {
					kind = 0
					break
				}
				if v != nil {
					kind = max(kind, pure[v])
				}
			}
		}
		for _, v := range n.Inputs() {
			if v != nil && orig[v] == graph.Float {
				touchesFloat = true
			}
		}
		for _, v := range n.Outputs() {
			if v != nil {
				pure[v] = kind
				if orig[v] == graph.Float {
					touchesFloat = true
				}
			}
		}
		lowOp := lowOps[n.OpType]
		if n.OpType == "Cast" {
			// only a cast that makes compute values; casts to integers read float32
			lowOp = n.AttrInt("to", 0) == int64(graph.Float)
		}
		low[n] = touchesFloat && kind == 0 && !keep[n] && n.Domain == "" && lowOp
	}
	// the type each original float value carries after the rewrite
	carries := func(v *graph.Value) graph.DType {
		if p, _ := v.Producer(); p != nil && low[p] {
			return dt
		}
		return graph.Float
	}
	b := graph.NewBuilder(g, "precision")
	casts := map[[2]any]*graph.Value{}
	castTo := func(v *graph.Value, to graph.DType) *graph.Value {
		key := [2]any{v, to}
		if c := casts[key]; c != nil {
			return c
		}
		src := v
		if to == graph.Float16 && pure[v] == pureConst {
			src = b.Op("Clip", []*graph.Value{v, b.Scalar(graph.Float, -maxHalf), b.Scalar(graph.Float, maxHalf)})
		}
		c := b.Op("Cast", []*graph.Value{src}, graph.IntAttr("to", int64(to)))
		c.Type = graph.Type{Elem: to, Shape: v.Type.Shape, HasShape: v.Type.HasShape}
		casts[key] = c
		return c
	}
	for _, n := range nodes {
		if anyTypeOps[n.OpType] {
			continue
		}
		want := graph.Float
		if low[n] {
			want = dt
		}
		for i, v := range n.Inputs() {
			if v == nil || orig[v] != graph.Float {
				continue
			}
			if carries(v) != want {
				n.SetInput(i, castTo(v, want))
			}
		}
		if !low[n] {
			continue
		}
		if n.OpType == "Cast" {
			if a := n.Attr("to"); a != nil && graph.DType(a.I) == graph.Float {
				a.I, a.Src, n.Src = int64(dt), nil, nil
			}
		}
		for _, o := range n.Outputs() {
			if o != nil && orig[o] == graph.Float && o.Type.Elem == graph.Float {
				o.Type.Elem, o.Src = dt, nil
			}
		}
	}
	// graph outputs and gradients go back to float32, under their own names
	for i, v := range g.Outputs {
		if orig[v] != graph.Float || carries(v) == graph.Float {
			continue
		}
		name := v.Name
		if err := g.Rename(v, g.UniqueName(name+".lowp")); err != nil {
			return 0, err
		}
		c := castTo(v, graph.Float)
		if err := g.Rename(c, name); err != nil {
			return 0, err
		}
		g.Outputs[i] = c
	}
	for _, p := range params { // in the parameters' order, so that the written graph is the same each run
		gv := grads[p]
		if gv == nil {
			continue
		}
		if _, ok := orig[gv]; !ok {
			orig[gv] = types.DType(gv)
		}
		if orig[gv] == graph.Float && carries(gv) != graph.Float {
			grads[p] = castTo(gv, graph.Float)
		}
	}
	if err := g.Sort(); err != nil {
		return 0, fmt.Errorf("lowering to %v: %w", dt, err)
	}
	return len(casts), nil
}

// addLossScale returns loss * loss_scale, the value the backward pass starts from, and the
// node that makes it (which stays float32).
func addLossScale(g *graph.Graph, loss *graph.Value) (*graph.Value, *graph.Node, error) {
	scale, err := g.AddInput(LossScaleInput, graph.TensorType(graph.Float))
	if err != nil {
		return nil, nil, err
	}
	b := graph.NewBuilder(g, "loss_scale")
	scaled := b.Op("Mul", []*graph.Value{loss, scale})
	scaled.Type = graph.TensorType(graph.Float)
	return scaled, b.Added[0], nil
}

// unscaleGrads divides each gradient by the loss scale and returns whether they are all finite
// (a bool scalar): a non-finite element makes its gradient's sum of g*0 NaN.
func unscaleGrads(g *graph.Graph, params []*graph.Value, grads map[*graph.Value]*graph.Value) *graph.Value {
	b := graph.NewBuilder(g, "loss_scale")
	inv := b.Op("Reciprocal", []*graph.Value{g.Value(LossScaleInput)})
	zero := b.Scalar(graph.Float, 0)
	var sums []*graph.Value
	for _, p := range params {
		gv := grads[p]
		if gv == nil {
			continue
		}
		sums = append(sums, b.Op("ReduceSum", []*graph.Value{b.Op("Mul", []*graph.Value{gv, zero})}, graph.IntAttr("keepdims", 0)))
		grads[p] = b.Op("Mul", []*graph.Value{gv, inv})
	}
	total := sums[0]
	if len(sums) > 1 {
		total = b.Op("Sum", sums)
	}
	return b.Op("Not", []*graph.Value{b.Op("IsNaN", []*graph.Value{total})})
}

// skipNonFinite makes every .next output keep its input's value when finite is false, and adds
// the loss-scale update: loss_scale.next and loss_scale.good.next.
func skipNonFinite(g *graph.Graph, finite *graph.Value, rec *LossScaleRecord) error {
	b := graph.NewBuilder(g, "skip_nonfinite")
	for i, out := range g.Outputs {
		if !strings.HasSuffix(out.Name, ".next") {
			continue
		}
		in := g.Value(strings.TrimSuffix(out.Name, ".next"))
		if in == nil || !in.IsGraphInput() {
			return fmt.Errorf("output %s has no input %s", out.Name, strings.TrimSuffix(out.Name, ".next"))
		}
		name := out.Name
		if err := g.Rename(out, g.UniqueName(name+".update")); err != nil {
			return err
		}
		w := b.Op("Where", []*graph.Value{finite, out, in})
		if err := g.Rename(w, name); err != nil {
			return err
		}
		w.Type = in.Type
		g.Outputs[i] = w
	}
	scale := g.Value(LossScaleInput)
	good, err := g.AddInput(LossScaleGood, graph.TensorType(graph.Float))
	if err != nil {
		return err
	}
	f := func(x float64) *graph.Value { return b.Scalar(graph.Float, x) }
	good1 := b.Op("Add", []*graph.Value{good, f(1)})
	grow := b.Op("GreaterOrEqual", []*graph.Value{good1, f(float64(rec.Interval))})
	okScale := b.Op("Where", []*graph.Value{grow, b.Op("Mul", []*graph.Value{scale, f(rec.Growth)}), scale})
	okGood := b.Op("Where", []*graph.Value{grow, f(0), good1})
	nextScale := b.Op("Where", []*graph.Value{finite, okScale, b.Op("Mul", []*graph.Value{scale, f(rec.Backoff)})})
	nextGood := b.Op("Where", []*graph.Value{finite, okGood, f(0)})
	for _, o := range []struct {
		v    *graph.Value
		name string
	}{{nextScale, LossScaleInput + ".next"}, {nextGood, LossScaleGood + ".next"}} {
		if err := g.Rename(o.v, o.name); err != nil {
			return err
		}
		o.v.Type = graph.TensorType(graph.Float)
		g.AddOutput(o.v)
	}
	return nil
}
