package clip

import (
	"fmt"
	"slices"
	"testing"

	"github.com/skipgraph/skipgraph/synth"
)

// discoverSynth builds a synthetic export and discovers it (both files of a split export).
func discoverSynth(t testing.TB, cfg synth.Config) (*Structure, *synth.Result) {
	t.Helper()
	res, err := synth.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var s *Structure
	if cfg.Split {
		s, err = DiscoverSplit(res.Models[synth.ModelVision], res.Models[synth.ModelText])
	} else {
		s, err = Discover(res.Models[synth.ModelCombined])
	}
	if err != nil {
		t.Fatal(err)
	}
	return s, res
}

func TestSynthetic(t *testing.T) {
	var cfgs []synth.Config
	for _, style := range []string{synth.StyleHF, synth.StyleOpenAI, synth.StyleOpenCLIP} {
		for _, size := range []string{"tiny", "vit-b-32", "vit-b-16"} {
			for _, opset := range []int{14, 17, 18} {
				for _, split := range []bool{false, true} {
					cfgs = append(cfgs, synth.Config{Style: style, Size: size, Opset: opset, Split: split})
				}
			}
		}
	}
	cfgs = append(cfgs,
		synth.Config{Style: synth.StyleHF, Opset: 14, StripNames: true},
		synth.Config{Style: synth.StyleOpenAI, Opset: 17, StripNames: true},
		synth.Config{Style: synth.StyleOpenAI, Opset: 18, Split: true, StripNames: true},
		synth.Config{Style: synth.StyleOpenCLIP, Opset: 14, StripNames: true, Classes: 5},
		synth.Config{Style: synth.StyleOpenAI, Opset: 14, PackedInProj: true},
		synth.Config{Style: synth.StyleOpenCLIP, Opset: 17, PackedInProj: true, StripNames: true},
		synth.Config{Style: synth.StyleOpenAI, Opset: 18, Split: true, PackedInProj: true},
	)
	for _, cfg := range cfgs {
		name := fmt.Sprintf("%s/%s/opset%d/split=%v/strip=%v/packed=%v", cfg.Style, cfg.Size, cfg.Opset, cfg.Split, cfg.StripNames, cfg.PackedInProj)
		t.Run(name, func(t *testing.T) {
			if testing.Short() && cfg.Size != "" && cfg.Size != "tiny" {
				t.Skip("large synthetic model in -short mode")
			}
			s, res := discoverSynth(t, cfg)
			checkTruth(t, s, res)
		})
	}
}

// checkTruth compares a discovered structure with what the generator wrote.
func checkTruth(t *testing.T, s *Structure, res *synth.Result) {
	t.Helper()
	tr := res.Truth
	wantFamily := FamilyHF
	if tr.Style != synth.StyleHF {
		wantFamily = FamilyOpenAI
	}
	if s.Family != wantFamily || s.Split != res.Config.Split || int(s.Opset) != tr.Opset {
		t.Errorf("family %s split %v opset %d; want %s %v %d", s.Family, s.Split, s.Opset, wantFamily, res.Config.Split, tr.Opset)
	}
	for _, kind := range []TowerKind{Vision, Text} {
		want := tr.Towers[string(kind)]
		got := s.Tower(kind)
		if got == nil {
			t.Errorf("%s tower not found", kind)
			continue
		}
		if len(got.Layers) != want.Layers || got.Width != want.Width || got.Heads != want.Heads || got.MLPWidth != want.MLP {
			t.Errorf("%s: layers %d width %d heads %d mlp %d; want %d %d %d %d", kind, len(got.Layers), got.Width,
				got.Heads, got.MLPWidth, want.Layers, want.Width, want.Heads, want.MLP)
		}
		if (got.Layout == SequenceFirst) != want.SequenceFirst {
			t.Errorf("%s: layout %s, want sequence-first=%v", kind, got.Layout, want.SequenceFirst)
		}
		if kind == Vision && got.SeqLen != want.SeqLen {
			t.Errorf("vision seq len %d, want %d", got.SeqLen, want.SeqLen)
		}
		if kind == Text && got.Positions != want.SeqLen {
			t.Errorf("text positions %d, want %d", got.Positions, want.SeqLen)
		}
		for i := 0; i <= len(got.Layers) && i < len(want.Boundaries); i++ {
			if b := got.Boundary(i); b == nil || b.Name != want.Boundaries[i] {
				t.Errorf("%s boundary %d: %v, want %s", kind, i, b, want.Boundaries[i])
			}
		}
		if want.Embeds != "" && got.Output != want.Embeds {
			t.Errorf("%s output %s, want %s", kind, got.Output, want.Embeds)
		}
		wantPool := "class_token"
		if kind == Text {
			wantPool = "eot_argmax"
		}
		if got.Pooling.Kind != wantPool || got.Pooling.Gather == "" {
			t.Errorf("%s pooling %+v", kind, got.Pooling)
		}
	}
	if s.ClassAxes.TextStream != s.Text.BatchAxis || s.ClassAxes.LogitsPerImage != 1 {
		t.Errorf("class axes %+v", s.ClassAxes)
	}
	if res.Config.Split {
		if s.Head.Present || !s.Head.LogitScale.Default || s.Head.LogitScale.Value != DefaultLogitScale {
			t.Errorf("split head %+v", s.Head)
		}
	} else if !s.Head.Present || s.Head.LogitsPerImage == "" {
		t.Errorf("head %+v", s.Head)
	}
	// Every parameter, both ways.
	for _, name := range tr.ParamNames() {
		want := tr.Params[name]
		got := s.Param(name)
		if got == nil {
			t.Errorf("parameter %s (%s) not found", name, want.Initializer)
			continue
		}
		var wantRows []int64
		if want.Rows != nil {
			wantRows = want.Rows
		}
		if got.Initializer != want.Initializer || got.Transposed != want.Transposed || !slices.Equal(got.Rows, wantRows) ||
			!slices.Equal(got.Shape, want.Shape) || string(got.Tower) != want.Tower || got.Layer != want.Layer {
			t.Errorf("parameter %s: got %s transposed=%v rows=%v shape=%v tower=%q layer=%d; want %s %v %v %v %q %d", name,
				got.Initializer, got.Transposed, got.Rows, got.Shape, got.Tower, got.Layer,
				want.Initializer, want.Transposed, wantRows, want.Shape, want.Tower, want.Layer)
		}
	}
	for _, p := range s.Params {
		if tr.Params[p.Canonical] == nil {
			t.Errorf("parameter %s (%s) found but not written", p.Canonical, p.Initializer)
		}
	}
	if len(s.Unmapped) != 0 {
		t.Errorf("unmapped initializers %v", s.Unmapped)
	}
}
