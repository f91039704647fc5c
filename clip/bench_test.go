package clip

import (
	"testing"

	"github.com/skipgraph/skipgraph/synth"
)

// BenchmarkDiscoverViTB16 generates a ViT-B/16 synthetic export (structure only: its weights are
// lazy and never materialised) and discovers it, per iteration.
func BenchmarkDiscoverViTB16(b *testing.B) {
	for _, style := range []string{synth.StyleHF, synth.StyleOpenAI} {
		b.Run(style, func(b *testing.B) {
			for b.Loop() {
				res, err := synth.Build(synth.Config{Style: style, Size: "vit-b-16", Opset: 14})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := Discover(res.Models[synth.ModelCombined]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDiscoverViTB16InMemory discovers a ViT-B/16 synthetic export already in memory.
func BenchmarkDiscoverViTB16InMemory(b *testing.B) {
	for _, style := range []string{synth.StyleHF, synth.StyleOpenAI} {
		b.Run(style, func(b *testing.B) {
			res, err := synth.Build(synth.Config{Style: style, Size: "vit-b-16", Opset: 14})
			if err != nil {
				b.Fatal(err)
			}
			m := res.Models[synth.ModelCombined]
			for b.Loop() {
				if _, err := Discover(m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
