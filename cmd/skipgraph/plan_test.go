package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skipgraph/skipgraph/internal/testenv"

	"github.com/skipgraph/skipgraph/synth"
)

// planFixture returns the reference fixture's path, relative to the test's folder.
func planFixture(t *testing.T) string {
	t.Helper()
	// relative to the test's folder, so the golden output is the same wherever the clone is
	abs := testenv.FixtureFile(t, "clip-hf-tiny/model.onnx")
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(wd, abs)
	if err != nil {
		t.Fatal(err)
	}
	return rel
}

func runCLI(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func TestPlanGolden(t *testing.T) {
	model := planFixture(t)
	code, got, stderr := runCLI("plan", model, "--batch", "4", "--classes", "100")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	testenv.Golden(t, filepath.Join("testdata", "plan_fixture.golden"), []byte(got))
}

func TestPlanJSON(t *testing.T) {
	dir := t.TempDir()
	if _, err := synth.Write(synth.Config{Style: "openai", Size: "tiny", Opset: 17}, dir); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI("plan", "--json", "--optimizer", "adamw", "--strategy", "lskip,cskip", "--lskip-start", "1", "--cskip-ratio", "0.25", "--classes", "40", filepath.Join(dir, "model.onnx"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var r planReport
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatal(err)
	}
	ch := r.Chosen.Estimate
	switch {
	case r.Settings.Optimizer.Kind != "adamw" || ch.StateSlots != 2:
		t.Errorf("optimizer %q with %d state copies, want adamw with 2", r.Settings.Optimizer.Kind, ch.StateSlots)
	case ch.CSkip == nil || ch.CSkip.K != 10:
		t.Errorf("CSkip %+v, want K = ceil(0.25*40) = 10", ch.CSkip)
	case ch.Towers[0].Start != 1 || ch.Towers[1].Start != 1:
		t.Errorf("starts %d/%d, want 1/1", ch.Towers[0].Start, ch.Towers[1].Start)
	case r.Chosen.Ratios.StepFLOPs <= 0 || r.Chosen.Ratios.StepFLOPs >= 1:
		t.Errorf("step FLOPs ratio %g, want in (0,1)", r.Chosen.Ratios.StepFLOPs)
	case len(r.Sweep) != 2*3:
		t.Errorf("%d sweep rows, want 6 (omega 0..2, CSkip off and on)", len(r.Sweep))
	}
	// The sweep's CSkip rows use the chosen CSkip settings: at omega 1 they equal the chosen plan.
	for _, row := range r.Sweep {
		if row.VisionStart == 1 && row.CSkip && row.Total != ch.Total {
			t.Errorf("sweep omega 1 with CSkip %+v != chosen %+v", row.Total, ch.Total)
		}
	}
}

func TestPlanBadInput(t *testing.T) {
	dir := t.TempDir()
	if _, err := synth.Write(synth.Config{Size: "tiny"}, dir); err != nil {
		t.Fatal(err)
	}
	model := filepath.Join(dir, "model.onnx")
	for _, tc := range []struct {
		args []string
		want string
		// flagParse errors come from the flag package, which prints the usage after the line.
		flagParse bool
	}{
		{[]string{"plan"}, "plan takes one model", false},
		{[]string{"plan", model, "--batch", "0"}, "--batch 0", false},
		{[]string{"plan", model, "--classes", "-3"}, "--classes -3", false},
		{[]string{"plan", model, "--optimizer", "lion"}, `--optimizer "lion"`, false},
		{[]string{"plan", model, "--strategy", "lskip,nope"}, `unknown strategy "nope"`, false},
		{[]string{"plan", model, "--strategy", "lskip", "--cskip-ratio", "0.5"}, "cskip is not in --strategy", false},
		{[]string{"plan", model, "--lskip-start", "9"}, "start=\"9\" is not a layer index", false},
		{[]string{"plan", model, "--cskip-ratio", "2"}, "ratio=\"2\" must be in (0, 1]", false},
		{[]string{"plan", model, "--cskip-max", "x"}, "not a valid int", true},
		{[]string{"plan", filepath.Join(dir, "missing.onnx")}, "missing.onnx", false},
	} {
		code, _, stderr := runCLI(tc.args...)
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if code != 2 || !strings.Contains(lines[0], tc.want) || (len(lines) != 1 && !tc.flagParse) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and one line containing %q", tc.args[1:], code, stderr, tc.want)
		}
	}
}
