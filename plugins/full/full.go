// Package full is the full fine-tuning strategy: every parameter but the logit scale trains and
// no gradient is stopped. It is the baseline Skip Tuning is measured against.
package full

import (
	"context"

	"github.com/skipgraph/skipgraph/clip"
	"github.com/skipgraph/skipgraph/strategy"
)

// Strategy is full fine-tuning.
type Strategy struct{}

// Info describes full fine-tuning.
func (Strategy) Info() strategy.Info {
	return strategy.Info{
		Name:    "full",
		Version: "1",
		Doc:     "full fine-tuning: all parameters of both towers and the projections train; the logit scale stays frozen",
	}
}

// Plan freezes the logit scale only.
func (Strategy) Plan(_ context.Context, req *strategy.Request) (*strategy.Plan, error) {
	p := &strategy.Plan{Params: map[string]string{}}
	for _, prm := range req.Structure.Params {
		if prm.Role == clip.RoleLogitScale {
			p.Freeze = append(p.Freeze, prm.Initializer)
		} else {
			p.Train = append(p.Train, prm.Initializer)
		}
	}
	return p, nil
}

func init() { strategy.Register(Strategy{}) }
