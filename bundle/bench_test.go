package bundle

import (
	"context"
	"testing"

	"github.com/skipgraph/skipgraph/clip"
	"github.com/skipgraph/skipgraph/plugins/cskip"
	"github.com/skipgraph/skipgraph/plugins/full"
	"github.com/skipgraph/skipgraph/plugins/lskip"
	"github.com/skipgraph/skipgraph/synth"
)

// BenchmarkBuildViTB16 builds the bundle graphs of a ViT-B/16-size export of each synthetic
// layout in memory (discovery, plan, cut, backward pass, optimizer; no file written) and reports
// the train step's node count relative to the forward graph's, and its NonZero nodes (dynamic
// broadcast reductions, each a device-to-host sync on CUDA).
//
//	go test -run '^$' -bench BuildViTB16 -benchtime 3x ./bundle
func BenchmarkBuildViTB16(b *testing.B) {
	for _, style := range []string{synth.StyleHF, synth.StyleOpenAI, synth.StyleOpenCLIP} {
		res, err := synth.Build(synth.Config{Style: style, Size: "vit-b-16", Opset: 17})
		if err != nil {
			b.Fatal(err)
		}
		m := res.Models["model.onnx"]
		st, err := clip.Discover(m)
		if err != nil {
			b.Fatal(err)
		}
		src := &SourceModel{Model: m, Structure: st}
		for _, bc := range []struct {
			name  string
			specs []StrategySpec
		}{
			{"full", []StrategySpec{{Strategy: full.Strategy{}}}},
			{"lskip6", []StrategySpec{{Strategy: lskip.Strategy{}, Args: map[string]string{"start": "6"}}}},
			{"lskip6+cskip", []StrategySpec{{Strategy: lskip.Strategy{}, Args: map[string]string{"start": "6"}}, {Strategy: cskip.Strategy{}}}},
		} {
			b.Run(style+"/"+bc.name, func(b *testing.B) {
				var built *Built
				for i := 0; i < b.N; i++ {
					built, err = Build(context.Background(), src, Options{Strategies: bc.specs})
					if err != nil {
						b.Fatal(err)
					}
				}
				fwd := m.Graph.NumNodes()
				ts := built.Graphs["train_step"].Graph
				b.ReportMetric(float64(fwd), "forward-nodes")
				b.ReportMetric(float64(ts.NumNodes()), "train-step-nodes")
				b.ReportMetric(float64(ts.NumNodes())/float64(fwd), "node-ratio")
				b.ReportMetric(float64(len(nonZeros(ts))), "nonzero-nodes")
			})
		}
	}
}
