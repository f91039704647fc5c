package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/skipgraph/skipgraph/graph"
	"github.com/skipgraph/skipgraph/graph/onnxio"
	"github.com/skipgraph/skipgraph/internal/testenv"
)

// TestConvertReportsDynamicReductions: convert's summary says that the reference export's
// train step has no dynamic broadcast reduction, and lists them, with the gradient each serves,
// for a copy whose inputs do not name their sizes (nothing then proves that the attention mask
// is as long as the token ids).
func TestConvertReportsDynamicReductions(t *testing.T) {
	fixture := testenv.FixtureFile(t, "clip-hf-tiny/model.onnx")
	dir := t.TempDir()
	anon := filepath.Join(dir, "anon.onnx")
	m, err := onnxio.Load(fixture)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range m.Graph.Inputs {
		for i, d := range in.Type.Shape {
			if !d.Known() {
				in.Type.Shape[i] = graph.UnknownDim()
			}
		}
	}
	if err := onnxio.Save(m, anon, onnxio.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		model, want string
		lines       int // lines naming a dynamic reduction
	}{
		{fixture, "shapes: every broadcast reduction static (0 dynamic, no NonZero)", 0},
		{anon, "shapes: 2 dynamic broadcast reductions", 2},
	}
	for i, tc := range cases {
		out := filepath.Join(dir, "bundle"+string(rune('0'+i)))
		code, stdout, stderr := runCLI("convert", tc.model, "-o", out, "-q", "--strategy", "full")
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", tc.model, code, stderr)
		}
		if !strings.Contains(stdout, tc.want) {
			t.Errorf("%s: summary lacks %q:\n%s", tc.model, tc.want, stdout)
		}
		if n := strings.Count(stdout, "dynamic broadcast reduction for the gradient of Add node /text_model/encoder/layers."); n != tc.lines {
			t.Errorf("%s: %d lines name a dynamic reduction of an attention-mask Add, want %d:\n%s", tc.model, n, tc.lines, stdout)
		}
	}
}
