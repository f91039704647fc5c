package rewrite

import (
	"fmt"
	"math"

	"github.com/skipgraph/skipgraph/graph"
)

// OptimizerConfig selects the optimizer written into a train step and its fixed
// hyper-parameters. Learning rates are graph inputs (one per group) so the host runs schedules.
type OptimizerConfig struct {
	// Kind is "sgd" or "adamw".
	Kind string `json:"kind"`
	// Momentum is SGD's momentum (PyTorch semantics, zero initial buffer).
	Momentum float64 `json:"momentum"`
	// WeightDecay is SGD's L2 term added to the gradient, or AdamW's decoupled decay.
	WeightDecay float64 `json:"weight_decay"`
	// Beta1, Beta2 and Eps are AdamW's.
	Beta1 float64 `json:"beta1,omitempty"`
	Beta2 float64 `json:"beta2,omitempty"`
	Eps   float64 `json:"eps,omitempty"`
}

// DefaultSGD is the paper's optimizer: SGD with momentum 0.9 and weight decay 5e-4.
var DefaultSGD = OptimizerConfig{Kind: "sgd", Momentum: 0.9, WeightDecay: 5e-4}

// DefaultAdamW is AdamW with PyTorch's defaults and weight decay 1e-2.
var DefaultAdamW = OptimizerConfig{Kind: "adamw", WeightDecay: 1e-2, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}

// OptimizerState lists, per parameter, the state inputs an optimizer adds: SGD has
// <name>.momentum, AdamW <name>.m and <name>.v.
func (c OptimizerConfig) OptimizerState() []string {
	switch c.Kind {
	case "sgd":
		if c.Momentum == 0 {
			return nil
		}
		return []string{"momentum"}
	case "adamw":
		return []string{"m", "v"}
	}
	return nil
}

// Validate checks the configuration.
func (c OptimizerConfig) Validate() error {
	switch c.Kind {
	case "sgd":
		if !(c.Momentum >= 0 && c.Momentum < 1) {
			return fmt.Errorf("SGD momentum %g must be in [0,1)", c.Momentum)
		}
	case "adamw":
		if !(c.Beta1 >= 0 && c.Beta1 < 1 && c.Beta2 >= 0 && c.Beta2 < 1 && c.Eps > 0) || math.IsInf(c.Eps, 0) {
			return fmt.Errorf("AdamW betas must be in [0,1) and eps > 0")
		}
	default:
		return fmt.Errorf("unknown optimizer %q (use sgd or adamw)", c.Kind)
	}
	if !(c.WeightDecay >= 0) || math.IsInf(c.WeightDecay, 0) {
		return fmt.Errorf("weight decay %g must not be negative", c.WeightDecay)
	}
	return nil
}

// OptimizerStep is one trainable parameter's update inputs.
type OptimizerStep struct {
	// Param is the parameter value (a graph input named as the source initializer).
	Param *graph.Value
	// Grad is its gradient, in the parameter's layout.
	Grad *graph.Value
	// LR is the learning-rate input of its group.
	LR *graph.Value
}

// AppendOptimizer adds the update of each parameter to g: graph inputs for the optimizer state
// (<name>.momentum, or <name>.m and <name>.v) and graph outputs <name>.next plus the state's
// .next values. step is the 1-based step number (float scalar input), used by AdamW's bias
// correction; SGD ignores it. Parameters are float32 (master weights).
func AppendOptimizer(g *graph.Graph, cfg OptimizerConfig, steps []OptimizerStep, step *graph.Value) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	b := graph.NewBuilder(g, "optimizer")
	for _, s := range steps {
		p := s.Param
		dt := p.Type.Elem
		state := func(suffix string) (*graph.Value, error) {
			return g.AddInput(p.Name+"."+suffix, p.Type)
		}
		output := func(v *graph.Value, name string) error {
			out := b.Op("Identity", []*graph.Value{v})
			if err := g.Rename(out, name); err != nil {
				return err
			}
			out.Type = p.Type
			g.AddOutput(out)
			return nil
		}
		var next *graph.Value
		switch cfg.Kind {
		case "sgd":
			// PyTorch's update: buf = m*buf + (g + wd*p), p -= lr*buf. Binary Adds, not one
			// variadic Sum over the three terms: in the step profiles ORT's Sum kernel moved
			// 1-2 GB/s where Mul moved 4-28 GB/s, and the Sum form was not faster
			// (BENCHMARKS.md).
			grad := s.Grad
			if cfg.WeightDecay != 0 {
				grad = b.Op("Add", []*graph.Value{grad, b.Op("Mul", []*graph.Value{p, b.Scalar(dt, cfg.WeightDecay)})})
			}
			if cfg.Momentum != 0 {
				buf, err := state("momentum")
				if err != nil {
					return err
				}
				buf = b.Op("Add", []*graph.Value{b.Op("Mul", []*graph.Value{buf, b.Scalar(dt, cfg.Momentum)}), grad})
				if err := output(buf, p.Name+".momentum.next"); err != nil {
					return err
				}
				grad = buf
			}
			next = b.Op("Sub", []*graph.Value{p, b.Op("Mul", []*graph.Value{s.LR, grad})})
		case "adamw":
			m, err := state("m")
			if err != nil {
				return err
			}
			v, err := state("v")
			if err != nil {
				return err
			}
			one := b.Scalar(dt, 1)
			b1, b2 := b.Scalar(dt, cfg.Beta1), b.Scalar(dt, cfg.Beta2)
			m = b.Op("Add", []*graph.Value{b.Op("Mul", []*graph.Value{m, b1}), b.Op("Mul", []*graph.Value{s.Grad, b.Scalar(dt, 1-cfg.Beta1)})})
			g2 := b.Op("Mul", []*graph.Value{s.Grad, s.Grad})
			v = b.Op("Add", []*graph.Value{b.Op("Mul", []*graph.Value{v, b2}), b.Op("Mul", []*graph.Value{g2, b.Scalar(dt, 1-cfg.Beta2)})})
			if err := output(m, p.Name+".m.next"); err != nil {
				return err
			}
			if err := output(v, p.Name+".v.next"); err != nil {
				return err
			}
			c1 := b.Op("Sub", []*graph.Value{one, b.Op("Pow", []*graph.Value{b1, step})})
			c2 := b.Op("Sub", []*graph.Value{one, b.Op("Pow", []*graph.Value{b2, step})})
			mhat := b.Op("Div", []*graph.Value{m, c1})
			vhat := b.Op("Div", []*graph.Value{v, c2})
			upd := b.Op("Div", []*graph.Value{mhat, b.Op("Add", []*graph.Value{b.Op("Sqrt", []*graph.Value{vhat}), b.Scalar(dt, cfg.Eps)})})
			decayed := p
			if cfg.WeightDecay != 0 {
				decayed = b.Op("Mul", []*graph.Value{p, b.Op("Sub", []*graph.Value{one, b.Op("Mul", []*graph.Value{s.LR, b.Scalar(dt, cfg.WeightDecay)})})})
			}
			next = b.Op("Sub", []*graph.Value{decayed, b.Op("Mul", []*graph.Value{s.LR, upd})})
		}
		if err := output(next, p.Name+".next"); err != nil {
			return err
		}
	}
	return nil
}
