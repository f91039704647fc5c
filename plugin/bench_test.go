package plugin_test

import (
	"context"
	"testing"
	"time"

	"github.com/skipgraph/skipgraph/plugin"
	"github.com/skipgraph/skipgraph/plugins/lskip"
	"github.com/skipgraph/skipgraph/strategy"
	"github.com/skipgraph/skipgraph/synth"
)

// BenchmarkRoundTrip compares LSkip planning a ViT-B/16-size export in-process with the plugin
// round trip: start the binary, handshake, send skeleton and structure, get the plan, stop it.
// Both include building the skeleton. Run with
//
//	go test ./plugin -run '^$' -bench RoundTrip -benchtime 20x
func BenchmarkRoundTrip(b *testing.B) {
	res, err := synth.Build(synth.Config{Style: "hf", Size: "vit-b-16", Opset: 17})
	if err != nil {
		b.Fatal(err)
	}
	m := res.Models[synth.ModelCombined]
	base := request(b, m)
	ctx := context.Background()
	req := func() *strategy.Request {
		r := *base
		r.Skeleton = strategy.SkeletonOf(m)
		return &r
	}
	b.Run("in-process", func(b *testing.B) {
		for b.Loop() {
			if _, err := (lskip.Strategy{}).Plan(ctx, req()); err != nil {
				b.Fatal(err)
			}
		}
	})
	bins(b)
	path := bin("lskip")
	b.Run("plugin", func(b *testing.B) {
		var open, plan, stop time.Duration
		for b.Loop() {
			t0 := time.Now()
			p, err := plugin.Open(ctx, path, plugin.Options{})
			if err != nil {
				b.Fatal(err)
			}
			t1 := time.Now()
			if _, err := p.Plan(ctx, req()); err != nil {
				b.Fatal(err)
			}
			t2 := time.Now()
			p.Close()
			open, plan, stop = open+t1.Sub(t0), plan+time.Since(t1)-time.Since(t2), stop+time.Since(t2)
		}
		n := float64(b.N)
		b.ReportMetric(float64(open.Milliseconds())/n, "start-ms/op")
		b.ReportMetric(float64(plan.Milliseconds())/n, "plan-ms/op")
		b.ReportMetric(float64(stop.Milliseconds())/n, "stop-ms/op")
	})
	b.Run("plugin-warm", func(b *testing.B) {
		p, err := plugin.Open(ctx, path, plugin.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer p.Close()
		for b.Loop() {
			if _, err := p.Plan(ctx, req()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
