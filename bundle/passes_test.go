package bundle

import (
	"testing"

	"github.com/skipgraph/skipgraph/rewrite"
	"github.com/skipgraph/skipgraph/synth"
)

// TestRaiseOpsetReportsChange checks that raise-opset says it changed the model exactly when it
// raised the opset, so the manager's graph check runs after it.
func TestRaiseOpsetReportsChange(t *testing.T) {
	for _, tc := range []struct {
		opset   int
		want    int64
		changed bool
	}{
		{14, 17, true},
		{15, 17, true},
		{16, 16, false},
		{17, 17, false},
		{18, 18, false},
	} {
		res, err := synth.Build(synth.Config{Style: "hf", Size: "tiny", Opset: tc.opset})
		if err != nil {
			t.Fatal(err)
		}
		m := res.Models[synth.ModelCombined]
		c := &rewrite.Context{Model: m, Logf: func(string, ...any) {}}
		changed, err := RaiseOpset.Run(c)
		if err != nil {
			t.Fatalf("opset %d: %v", tc.opset, err)
		}
		if got := m.Opset(""); got != tc.want || changed != tc.changed {
			t.Errorf("opset %d: raised to %d (changed=%v), want %d (changed=%v)", tc.opset, got, changed, tc.want, tc.changed)
		}
	}
}
