package bundle

import (
	"slices"
	"strings"
	"testing"

	"github.com/skipgraph/skipgraph/synth"
)

// OpenPart keeps only what the named values need: the text tower's part reads no pixels, the
// image tower's no tokens; an unknown value is an error naming it.
func TestOpenPart(t *testing.T) {
	src := synthSource(t, synth.Config{Style: synth.StyleHF, Size: "tiny", Opset: 17, Seed: 3})
	for _, tc := range []struct {
		output  string
		inputs  []string
		wantErr string
	}{
		{"text_embeds", []string{"attention_mask", "input_ids"}, ""},
		{"image_embeds", []string{"pixel_values"}, ""},
		{"no_such_value", nil, `no value "no_such_value"`},
	} {
		t.Run(tc.output, func(t *testing.T) {
			s, err := OpenPart(src.Model, "model.onnx ("+tc.output+")", []string{tc.output}, nil)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if got := s.OutputNames(); !slices.Equal(got, []string{tc.output}) {
				t.Errorf("outputs %v, want [%s]", got, tc.output)
			}
			got := s.InputNames()
			slices.Sort(got)
			if !slices.Equal(got, tc.inputs) {
				t.Errorf("inputs %v, want %v", got, tc.inputs)
			}
		})
	}
}

// A Runner opens a step ready to run from data, and refuses data missing an input, naming it.
func TestRunnerOpenFed(t *testing.T) {
	out, man, d, _ := stepperFixture(t)
	r := NewRunner(out, man, nil)
	st, err := r.OpenFed(d, 0.01, 1)
	if err != nil {
		t.Fatal(err)
	}
	loss, err := st.Step()
	st.Close()
	if err != nil || !(loss > 0) {
		t.Fatalf("step: loss %v, error %v", loss, err)
	}
	delete(d, "labels")
	if st, err := r.OpenFed(d, 0.01, 1); err == nil || !strings.Contains(err.Error(), "input labels") {
		if st != nil {
			st.Close()
		}
		t.Fatalf("no labels: error %v, want one naming the labels input", err)
	}
}
