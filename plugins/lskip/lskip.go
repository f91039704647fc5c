// Package lskip is Skip Tuning's layer-wise skipping (LSkip): with start layer omega, the
// embeddings, the pre-LayerNorm, layers 0..omega-1 of both towers and the logit scale are frozen,
// and the gradient stops at the residual stream entering layer omega. The frozen prefix runs
// without gradients and its output is cached (features.onnx), so each training step starts from
// the cached states.
package lskip

import (
	"context"
	"strconv"

	"github.com/skipgraph/skipgraph/clip"
	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/strategy"
)

// Strategy is LSkip.
type Strategy struct{}

// Info describes LSkip and its parameters.
func (Strategy) Info() strategy.Info {
	return strategy.Info{
		Name:    "lskip",
		Version: "1",
		Doc:     "layer-wise skipping: freeze the embeddings and layers 0..omega-1 of both towers, stop the gradient at layer omega and cache the frozen prefix's output",
		Params: []strategy.Param{
			{Name: "start", Type: "string", Default: "", Doc: "start layer omega for both towers (default: half of each tower's layers)"},
			{Name: "vision-start", Type: "string", Default: "", Doc: "start layer for the vision tower (overrides start)"},
			{Name: "text-start", Type: "string", Default: "", Doc: "start layer for the text tower (overrides start)"},
		},
	}
}

// Start returns the start layer for a tower from the resolved arguments: the tower's own
// override, else start, else half the tower's layers.
func Start(args map[string]string, t *clip.Tower) (int, error) {
	n := t.NumLayers()
	for _, key := range []string{string(t.Kind) + "-start", "start"} {
		s := args[key]
		if s == "" {
			continue
		}
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 || v > n {
			return 0, errs.Input("%s=%q is not a layer index for the %s tower, which has %d layers (use 0..%d)", key, s, t.Kind, n, n)
		}
		return v, nil
	}
	return n / 2, nil
}

// Plan freezes the prefix and asks for a cached stop-gradient boundary in each tower.
func (Strategy) Plan(_ context.Context, req *strategy.Request) (*strategy.Plan, error) {
	st := req.Structure
	p := &strategy.Plan{Params: map[string]string{}}
	starts := map[clip.TowerKind]int{}
	for _, t := range st.Towers() {
		omega, err := Start(req.Args, t)
		if err != nil {
			return nil, err
		}
		starts[t.Kind] = omega
		p.Params[string(t.Kind)+"-start"] = strconv.Itoa(omega)
		v := boundary(t, omega)
		if v == "" {
			return nil, errs.Input("the %s tower has no layer %d", t.Kind, omega)
		}
		p.StopGradients = append(p.StopGradients, strategy.Boundary{Tower: string(t.Kind), Layer: omega, Value: v, Cache: true})
	}
	for _, prm := range st.Params {
		switch prm.Role {
		case clip.RoleLogitScale, clip.RoleEmbedding, clip.RolePreNorm:
			p.Freeze = append(p.Freeze, prm.Initializer)
		case clip.RoleLayer:
			if prm.Layer < starts[prm.Tower] {
				p.Freeze = append(p.Freeze, prm.Initializer)
			}
		}
	}
	return p, nil
}

// boundary names the residual-stream value entering layer i (i == NumLayers: the value leaving
// the last layer), or "" when there is none. It reads only the exported fields, so it works on a
// Structure decoded from JSON (a plugin's request) as well as on a discovered one.
func boundary(t *clip.Tower, i int) string {
	switch n := len(t.Layers); {
	case i >= 0 && i < n:
		return t.Layers[i].In
	case i == n && n > 0:
		return t.Layers[n-1].Out
	}
	return ""
}

func init() { strategy.Register(Strategy{}) }
