// Command skipgraph-strategy-attnonly is an example third-party skip strategy, built as a
// skipgraph plugin: train only the attention projections (q, k, v and out, weights and biases)
// of the deep layers. Everything else is frozen, and the gradient stops at the residual stream
// entering the first trained layer, whose frozen prefix is cached like LSkip's.
//
// Build it and hand it to skipgraph:
//
//	go build -o skipgraph-strategy-attnonly .
//	skipgraph convert model.onnx -o bundle --plugin ./skipgraph-strategy-attnonly \
//	    --strategy attnonly --set attnonly.start=8
package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/skipgraph/skipgraph/plugin"
)

func main() { plugin.Serve(attnOnly{}) }

// attnOnly trains the attention projections of layers >= start.
type attnOnly struct{}

func (attnOnly) Info() plugin.Info {
	return plugin.Info{
		Name:    "attnonly",
		Version: "0.1.0",
		Doc:     "train only the attention projections (q, k, v, out) of layers >= start; freeze the rest and cache the frozen prefix",
		Params: []plugin.Param{
			{Name: "start", Type: "string", Doc: "first trained layer (default: half of each tower's layers)"},
			{Name: "towers", Type: "string", Default: "vision,text", Doc: "towers whose attention trains, comma-separated"},
		},
	}
}

func (attnOnly) Plan(_ context.Context, req *plugin.Request) (*plugin.Plan, error) {
	p := &plugin.Plan{Params: map[string]string{}}
	train := map[string]bool{}
	for _, tower := range strings.Split(req.Args["towers"], ",") {
		tower = strings.TrimSpace(tower)
		t, err := plugin.Tower(req, tower)
		if err != nil {
			return nil, fmt.Errorf("attnonly: towers=%q: %w", req.Args["towers"], err)
		}
		start := t.NumLayers() / 2
		if s := req.Args["start"]; s != "" {
			if start, err = strconv.Atoi(s); err != nil || start < 0 || start >= t.NumLayers() {
				return nil, fmt.Errorf("attnonly: start=%q is not a layer of the %s tower (use 0..%d)", s, tower, t.NumLayers()-1)
			}
		}
		b, err := plugin.StopAt(req, tower, start, true)
		if err != nil {
			return nil, err
		}
		p.StopGradients = append(p.StopGradients, b)
		p.Params[tower+"-start"] = strconv.Itoa(start)
		for i := start; i < t.NumLayers(); i++ {
			l, err := plugin.Layer(req, tower, i)
			if err != nil {
				return nil, err
			}
			a := l.Attention
			for _, name := range []string{a.Q.Weight, a.Q.Bias, a.K.Weight, a.K.Bias, a.V.Weight, a.V.Bias, a.Out.Weight, a.Out.Bias} {
				if name != "" {
					train[name] = true
				}
			}
		}
	}
	for _, prm := range req.Structure.Params {
		if train[prm.Initializer] {
			if !slices.Contains(p.Train, prm.Initializer) {
				p.Train = append(p.Train, prm.Initializer)
			}
		} else if !slices.Contains(p.Freeze, prm.Initializer) {
			p.Freeze = append(p.Freeze, prm.Initializer)
		}
	}
	return p, nil
}
