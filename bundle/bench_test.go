package bundle

import (
	"context"
	"testing"

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
		src := vitB16Source(b, style)
		m := src.Model
		specs := stepSpecs("6")
		for _, name := range []string{"full", "lskip", "lskip+cskip"} {
			b.Run(style+"/"+name, func(b *testing.B) {
				var built *Built
				var err error
				for i := 0; i < b.N; i++ {
					built, err = Build(context.Background(), src, Options{Strategies: specs[name]})
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
