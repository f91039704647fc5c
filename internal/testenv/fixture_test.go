package testenv

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/skipgraph/skipgraph/tensorio"
)

// keys returns the sorted keys of a JSON object.
func keys(m map[string]any) []string { return slices.Sorted(maps.Keys(m)) }

// The repository's reference fixture has the layout the tests read: every case with its loss,
// gradients keyed by ONNX initializers the model holds, and two SGD steps.
func TestFixtureLayout(t *testing.T) {
	t.Setenv(FixturesEnv, "")
	dir := Fixture(t, "clip-hf-tiny")
	if want := filepath.Join(RepoRoot(t), "testdata", "clip-hf-tiny"); dir != want {
		t.Fatalf("fixture folder %s, want %s", dir, want)
	}
	ref := LoadJSON(t, filepath.Join(dir, "reference.json"))
	inits := ref["initializers"].(map[string]any)
	cases := ref["cases"].(map[string]any)
	if got := keys(cases); !slices.Equal(got, []string{"full_ft", "lskip", "lskip_cskip"}) {
		t.Fatalf("cases %v", got)
	}
	for name, c := range cases {
		c := c.(map[string]any)
		grads := c["grads"].(map[string]any)
		if len(grads) == 0 {
			t.Errorf("%s: no gradients", name)
		}
		for g := range grads {
			if inits[g] == nil {
				t.Errorf("%s: gradient of %s, which is not an initializer of the model", name, g)
			}
		}
		sgd := c["sgd"].(map[string]any)
		if n := len(sgd["losses"].([]any)); n != 2 {
			t.Errorf("%s: %d SGD losses, want 2", name, n)
		}
		if got, want := len(sgd["params_after"].(map[string]any)), len(grads); got != want {
			t.Errorf("%s: %d parameters after SGD, %d gradients", name, got, want)
		}
	}
	if n := len(cases["full_ft"].(map[string]any)["grads"].(map[string]any)); n != len(inits)-1 {
		t.Errorf("full fine-tuning has %d gradients, want every initializer but logit_scale (%d)", n, len(inits)-1)
	}
	in, err := tensorio.LoadJSONMap(filepath.Join(dir, "reference.json"), "inputs")
	if err != nil {
		t.Fatal(err)
	}
	if ids := in["input_ids"]; ids == nil || !slices.Equal(ids.Shape, []int64{5, 8}) {
		t.Errorf("input_ids %v, want shape [5 8]", ids)
	}
}

// When a second copy of the fixture is at hand ($SKIPGRAPH_FIXTURES), it has the same layout
// and sizes as the repository's: same keys, same initializer names and tensor shapes.
func TestFixtureMatchesOther(t *testing.T) {
	if os.Getenv(FixturesEnv) == "" {
		t.Skipf("%s is not set: nothing to compare the repository's fixture with", FixturesEnv)
	}
	other := FixturesDir(t)
	t.Setenv(FixturesEnv, "")
	mine := LoadJSON(t, FixtureFile(t, "clip-hf-tiny/reference.json"))
	theirs := LoadJSON(t, filepath.Join(other, "clip-hf-tiny", "reference.json"))
	if a, b := keys(mine), keys(theirs); !slices.Equal(a, b) {
		t.Fatalf("top-level keys %v, other %v", a, b)
	}
	if a, b := mine["size"], theirs["size"]; !sameJSON(a, b) {
		t.Errorf("size %v, other %v", a, b)
	}
	mi, ti := mine["initializers"].(map[string]any), theirs["initializers"].(map[string]any)
	if len(mi) != len(ti) {
		t.Errorf("%d initializers, other %d", len(mi), len(ti))
	}
	for name, c := range mine["cases"].(map[string]any) {
		oc, ok := theirs["cases"].(map[string]any)[name].(map[string]any)
		if !ok {
			t.Errorf("case %s missing in the other fixture", name)
			continue
		}
		c := c.(map[string]any)
		if a, b := keys(c), keys(oc); !slices.Equal(a, b) {
			t.Errorf("%s: keys %v, other %v", name, a, b)
		}
		// Gradients are keyed by initializer names, whose numbers the exporter picks; compare
		// the torch parameters they stand for.
		torchNames := func(inits map[string]any, grads map[string]any) []string {
			var out []string
			for g := range grads {
				out = append(out, inits[g].(map[string]any)["torch"].(string))
			}
			slices.Sort(out)
			return out
		}
		if a, b := torchNames(mi, c["grads"].(map[string]any)), torchNames(ti, oc["grads"].(map[string]any)); !slices.Equal(a, b) {
			t.Errorf("%s: gradients of %v, other of %v", name, a, b)
		}
	}
}

// sameJSON reports whether two decoded JSON values are equal.
func sameJSON(a, b any) bool {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if !aok || !bok {
		return a == b
	}
	if len(am) != len(bm) {
		return false
	}
	for k, v := range am {
		if !sameJSON(v, bm[k]) {
			return false
		}
	}
	return true
}
