// Package cskip is Skip Tuning's class-wise skipping (CSkip): per training step only K classes go
// through the deep text layers. Each class is scored by its largest cosine similarity over the
// batch between the current normalised image features and the class prototypes (the normalised
// zero-shot text features of all classes, computed once); ground-truth classes are forced in;
// the top K = min(ceil(ratio*C), max) are kept, plus tail rank positions drawn once per run with
// the paper's exponential probabilities. The selection itself runs inside train_step.onnx as
// ONNX ops (the host pass class-gather); this package plans it, and package classsel holds
// the host side (K, the tail draw) that the trainer and the cost model share.
package cskip

import (
	"context"

	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/rewrite/classsel"
	"github.com/skipgraph/skipgraph/strategy"
)

// PassName is the host pass CSkip asks for.
const PassName = classsel.PassName

// Strategy is CSkip.
type Strategy struct{}

// Info describes CSkip and its parameters.
func (Strategy) Info() strategy.Info {
	return strategy.Info{
		Name:    "cskip",
		Version: "1",
		Doc:     "class-wise skipping: per step only the top K classes by similarity to the batch (ground truth forced in) plus sampled tail ranks go through the deep text layers",
		Params: []strategy.Param{
			{Name: "ratio", Type: "float", Default: "0.5", Doc: "fraction of classes kept per step (1 turns CSkip off)"},
			{Name: "max", Type: "int", Default: "50", Doc: "at most this many top classes"},
			{Name: "lambda", Type: "float", Default: "0.3", Doc: "scale of the exponential tail probabilities (0 keeps no tail)"},
			{Name: "seed", Type: "int", Default: "0", Doc: "seed of the per-run tail draw"},
		},
	}
}

// Config is CSkip's resolved configuration (the host's class-gather configuration).
type Config = classsel.Config

// ParseConfig reads a Config from resolved arguments, checking ranges.
func ParseConfig(args map[string]string) (Config, error) { return classsel.ParseConfig(args) }

// Plan asks for the class-gather pass (nothing when ratio is 1).
func (Strategy) Plan(_ context.Context, req *strategy.Request) (*strategy.Plan, error) {
	c, err := ParseConfig(req.Args)
	if err != nil {
		return nil, err
	}
	p := &strategy.Plan{Params: c.Args()}
	if c.Ratio >= 1 {
		p.Params["enabled"] = "false"
		return p, nil
	}
	if req.Structure.Text == nil {
		return nil, errs.Input("cskip needs a text tower, and the model has none")
	}
	p.Passes = append(p.Passes, strategy.PassCall{Name: PassName, Args: c.Args()})
	return p, nil
}

func init() { strategy.Register(Strategy{}) }
