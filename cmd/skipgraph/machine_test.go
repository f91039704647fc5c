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
