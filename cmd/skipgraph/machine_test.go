package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEvalJSON: eval --json prints one JSON document that agrees with itself (per-class counts
// add up to the images, the confusion matrix's diagonal gives the accuracy), and the confusion
// matrix figure comes with its SVG.
func TestEvalJSON(t *testing.T) {
	fix := trainFixture(t)
	png := filepath.Join(t.TempDir(), "cm.png")
	code, stdout, stderr := runCLI("eval", filepath.Join(fix, "bundle"), "--data", filepath.Join(fix, "data"), "--json", "--confusion", png, "--threads", "1")
	if code != 0 {
		t.Fatalf("eval --json: exit %d: %s", code, stderr)
	}
	var r evalJSON
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("output is not the JSON document: %v\n%s", err, stdout)
	}
	if len(r.Classes) != 3 || len(r.Confusion) != 3 || r.ConfusionPNG != png {
		t.Fatalf("result %+v", r)
	}
	total, diag := 0, 0
	for i, c := range r.Classes {
		total += c.Images
		diag += r.Confusion[i][i]
		if c.Accuracy == nil || *c.Accuracy != float64(r.Confusion[i][i])/float64(c.Images) {
			t.Errorf("class %s: accuracy %v, confusion row %v", c.Name, c.Accuracy, r.Confusion[i])
		}
	}
	if total != r.Images || r.Accuracy != float64(diag)/float64(total) {
		t.Errorf("images %d (classes add to %d), accuracy %g (diagonal gives %g)", r.Images, total, r.Accuracy, float64(diag)/float64(total))
	}
	for _, f := range []string{png, strings.TrimSuffix(png, ".png") + ".svg"} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("no %s: %v", f, err)
		}
	}
}

// TestVerbose: --verbose turns on debug lines on stderr; without it stderr stays quiet.
func TestVerbose(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		debug bool
	}{
		{[]string{"strategies"}, false},
		{[]string{"strategies", "--verbose"}, true},
		{[]string{"--verbose", "strategies"}, false}, // a flag before the command is a command name
	} {
		code, _, stderr := runCLI(tc.args...)
		if tc.args[0] == "--verbose" {
			if code != 2 {
				t.Errorf("%v: exit %d, want 2", tc.args, code)
			}
			continue
		}
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", tc.args, code, stderr)
		}
		if got := strings.Contains(stderr, "level=DEBUG msg=command name=strategies"); got != tc.debug {
			t.Errorf("%v: debug line %v, want %v; stderr:\n%s", tc.args, got, tc.debug, stderr)
		}
	}
}

// TestExportPreprocessing: a preprocessor_config.json and tokenizer_config.json beside an
// export are used and named by inspect; one that does not fit the model stops eval with one
// line naming it.
func TestExportPreprocessing(t *testing.T) {
	fix := trainFixture(t)
	model := filepath.Join(fix, "model", "model.onnx")
	code, stdout, stderr := runCLI("inspect", model)
	if code != 0 || !strings.Contains(stdout, "from CLIP's constants") || !strings.Contains(stdout, "config: no tokenizer_config.json") {
		t.Fatalf("inspect without configuration files: exit %d\n%s%s", code, stdout, stderr)
	}
	pre := filepath.Join(fix, "model", "preprocessor_config.json")
	os.WriteFile(pre, []byte(`{"size": {"shortest_edge": 40}, "crop_size": {"height": 32, "width": 32}, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.25, 0.25, 0.25], "resample": 3}`), 0o644)
	tc := filepath.Join(fix, "model", "tokenizer_config.json")
	os.WriteFile(tc, []byte(`{"model_max_length": 77}`), 0o644)
	code, stdout, stderr = runCLI("inspect", "--json", model)
	if code != 0 {
		t.Fatalf("inspect: exit %d: %s", code, stderr)
	}
	var r modelReport
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatal(err)
	}
	if r.Preprocess == nil || r.Preprocess.File != pre || !strings.Contains(r.Preprocess.Summary, "resize shortest side to 40") || !strings.Contains(r.Preprocess.Summary, "mean [0.5, 0.5, 0.5], std [0.25, 0.25, 0.25]") {
		t.Errorf("preprocess %+v (%s)", r.Preprocess, r.PreprocessError)
	}
	if r.Tokenizer == nil || len(r.Tokenizer.Config) != 1 || r.Tokenizer.Config[0] != tc {
		t.Errorf("tokenizer %+v (%s)", r.Tokenizer, r.TokenizerError)
	}
	code, stdout, stderr = runCLI("eval", model, "--data", filepath.Join(fix, "data"), "--json", "--confusion", "", "--threads", "1")
	if code != 0 {
		t.Fatalf("eval with the export's preprocessing: exit %d: %s", code, stderr)
	}
	var ev evalJSON
	if err := json.Unmarshal([]byte(stdout), &ev); err != nil || ev.Preprocess == nil || ev.Preprocess.File != pre {
		t.Errorf("eval --json does not name the preprocessing used: %v\n%s", err, stdout)
	}

	os.WriteFile(pre, []byte(`{"size": 64, "crop_size": 64}`), 0o644)
	code, _, stderr = runCLI("eval", model, "--data", filepath.Join(fix, "data"), "--confusion", "")
	if code != 2 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.Contains(stderr, pre) || !strings.Contains(stderr, "64 x 64") {
		t.Errorf("eval with a configuration for another size: exit %d: %s", code, stderr)
	}
}
