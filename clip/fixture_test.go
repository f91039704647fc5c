package clip

import (
	"bytes"
	"encoding/json"
	"github.com/skipgraph/skipgraph/internal/testenv"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/skipgraph/skipgraph/graph"
	"github.com/skipgraph/skipgraph/graph/onnxio"
)

// loadFixture loads a reference fixture's model, skipping the test when the fixtures are absent.
func loadFixture(t testing.TB, name string) *graph.Model {
	t.Helper()
	m, err := onnxio.Load(testenv.FixtureFile(t, name+"/model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

type refInit struct {
	Torch      string  `json:"torch"`
	Transposed bool    `json:"transposed"`
	Rows       []int64 `json:"rows"`
}

func loadRefInits(t *testing.T, name string) map[string]refInit {
	t.Helper()
	b, err := os.ReadFile(testenv.FixtureFile(t, name+"/reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Initializers map[string]refInit `json:"initializers"`
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	return ref.Initializers
}

func stripNodeNames(m *graph.Model) {
	for _, n := range m.Graph.Nodes() {
		n.Name = ""
	}
}

func TestFixtureHFTiny(t *testing.T) {
	for _, strip := range []bool{false, true} {
		name := "named"
		if strip {
			name = "stripped"
		}
		t.Run(name, func(t *testing.T) {
			m := loadFixture(t, "clip-hf-tiny")
			if strip {
				stripNodeNames(m)
			}
			s, err := Discover(m)
			if err != nil {
				t.Fatal(err)
			}
			if s.Family != FamilyHF || s.Split || s.Opset != 14 {
				t.Errorf("family %s split %v opset %d, want hf false 14", s.Family, s.Split, s.Opset)
			}
			for _, tw := range []*Tower{s.Vision, s.Text} {
				if tw == nil {
					t.Fatal("a tower is missing")
				}
				if len(tw.Layers) != 2 || tw.Width != 32 || tw.Heads != 2 || tw.HeadDim != 16 || tw.MLPWidth != 64 || tw.Layout != BatchFirst {
					t.Errorf("%s: layers %d width %d heads %d head_dim %d mlp %d layout %s; want 2 32 2 16 64 batch-first",
						tw.Kind, len(tw.Layers), tw.Width, tw.Heads, tw.HeadDim, tw.MLPWidth, tw.Layout)
				}
				for i, l := range tw.Layers {
					if i > 0 && l.In != tw.Layers[i-1].Out {
						t.Errorf("%s layer %d enters with %s, previous left with %s", tw.Kind, i, l.In, tw.Layers[i-1].Out)
					}
					if tw.Boundary(i) != l.InValue() || tw.LayerOf(producer(l.OutValue())) != i {
						t.Errorf("%s layer %d: boundary or node membership inconsistent", tw.Kind, i)
					}
				}
			}
			if s.Vision.SeqLen != 17 || s.Text.Positions != 8 {
				t.Errorf("vision seq %d text positions %d, want 17 and 8", s.Vision.SeqLen, s.Text.Positions)
			}
			if !slices.Equal(s.Text.Inputs, []string{"input_ids", "attention_mask"}) || !slices.Equal(s.Vision.Inputs, []string{"pixel_values"}) {
				t.Errorf("inputs: text %v vision %v", s.Text.Inputs, s.Vision.Inputs)
			}
			p := s.Text.Pooling
			if p.Kind != "eot_argmax" || p.Form != "eos_equal" || p.EOSToken != 63 || p.ArgMax == "" {
				t.Errorf("text pooling %+v", p)
			}
			if s.Vision.Pooling.Kind != "class_token" || s.Vision.Pooling.Gather == "" {
				t.Errorf("vision pooling %+v", s.Vision.Pooling)
			}
			if len(s.Text.Masks) != 2 || s.Text.Masks[0].Kind != "causal" || s.Text.Masks[1].Kind != "padding" {
				t.Errorf("text masks %+v", s.Text.Masks)
			}
			h := s.Head
			if !h.Present || h.LogitsPerImage != "logits_per_image" || h.LogitsPerText != "logits_per_text" ||
				h.ImageEmbeds != "image_embeds" || h.TextEmbeds != "text_embeds" {
				t.Errorf("head %+v", h)
			}
			if ls := h.LogitScale; ls.Initializer != "logit_scale" || !ls.Exp || ls.Raw < 2.659 || ls.Raw > 2.66 {
				t.Errorf("logit scale %+v", ls)
			}
			if s.ClassAxes != (ClassAxes{InputIDs: 0, TextStream: 0, TextEmbeds: 0, LogitsPerImage: 1, LogitsPerText: 0}) {
				t.Errorf("class axes %+v", s.ClassAxes)
			}
			if len(s.Unmapped) != 0 {
				t.Errorf("unmapped initializers %v", s.Unmapped)
			}
			checkMapping(t, s, loadRefInits(t, "clip-hf-tiny"))
		})
	}
}

// checkMapping compares every reference initializer's torch parameter, transposition and rows.
func checkMapping(t *testing.T, s *Structure, ref map[string]refInit) {
	t.Helper()
	for init, want := range ref {
		ps := s.ParamsOf(init)
		if len(ps) != 1 {
			t.Errorf("initializer %s: %d parameters found, want 1 (%s)", init, len(ps), want.Torch)
			continue
		}
		p := ps[0]
		if p.TorchName() != want.Torch || p.Transposed != want.Transposed || !slices.Equal(p.Rows, want.Rows) {
			t.Errorf("initializer %s: got %s transposed=%v rows=%v, want %s transposed=%v rows=%v",
				init, p.TorchName(), p.Transposed, p.Rows, want.Torch, want.Transposed, want.Rows)
		}
	}
	if len(s.Params) != len(ref) {
		t.Errorf("%d parameters found, reference has %d", len(s.Params), len(ref))
	}
}

func TestFixtureExternalInputs(t *testing.T) {
	m := loadFixture(t, "clip-hf-tiny")
	s, err := Discover(m)
	if err != nil {
		t.Fatal(err)
	}
	ext, err := s.ExternalInputs(Text, 1)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]string{}
	for _, e := range ext {
		kinds[e.Name] = e.Kind
	}
	want := map[string]string{
		"/text_model/Expand_output_0": "mask", "/text_model/Mul_2_output_0": "mask",
		"/text_model/ArgMax_output_0": "eot_index", "/text_model/Range_output_0": "shape",
	}
	for k, v := range want {
		if kinds[k] != v {
			t.Errorf("external %s: kind %q, want %q (all: %v)", k, kinds[k], v, kinds)
		}
	}
	if len(ext) != len(want) {
		t.Errorf("externals %v, want %v", kinds, want)
	}
	for _, e := range ext {
		if e.Name == "/text_model/Mul_2_output_0" && (e.ClassAxis != 0 || !slices.Contains(e.Inputs, "attention_mask")) {
			t.Errorf("padding mask external %+v", e)
		}
	}
	vext, err := s.ExternalInputs(Vision, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(vext) != 0 {
		t.Errorf("vision externals %+v, want none", vext)
	}
	for _, bad := range []int{-1, 3} {
		if _, err := s.ExternalInputs(Text, bad); err == nil {
			t.Errorf("boundary %d accepted", bad)
		}
	}
}

func TestFixtureRender(t *testing.T) {
	m := loadFixture(t, "clip-hf-tiny")
	s, err := Discover(m)
	if err != nil {
		t.Fatal(err)
	}
	var tab bytes.Buffer
	if err := s.WriteTable(&tab); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"family hf", "vision  batch-first  2", "/vision_model/encoder/layers.0/Add_1_output_0",
		"eot_argmax (eos_equal, eos 63)", "logit scale 14.28"} {
		if !strings.Contains(tab.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, tab.String())
		}
	}
	var js bytes.Buffer
	if err := s.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Structure
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Text == nil || len(back.Text.Layers) != 2 || len(back.Params) != len(s.Params) || back.Params[0].Canonical != s.Params[0].Canonical {
		t.Errorf("JSON round trip lost data")
	}
}
