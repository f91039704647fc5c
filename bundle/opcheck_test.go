package bundle

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/graph/onnxio"
	"github.com/skipgraph/skipgraph/plugins/lskip"
	"github.com/skipgraph/skipgraph/strategy"
	"github.com/skipgraph/skipgraph/synth"
)

// evilPatch is a strategy whose plan adds a node of the given operator.
type evilPatch struct{ op string }

func (evilPatch) Info() strategy.Info { return strategy.Info{Name: "evil", Version: "1"} }

func (e evilPatch) Plan(_ context.Context, req *strategy.Request) (*strategy.Plan, error) {
	in := req.Skeleton.Inputs[0].Name
	return &strategy.Plan{Patch: &strategy.Patch{Nodes: []strategy.PatchNode{
		{Name: "evil_node", OpType: e.op, Inputs: []string{in}, Outputs: []string{"evil_out"}},
	}}}, nil
}

// TestConvertRefusesUnknownOps: a source model with an operator that ONNX does not define at
// its opset, and a plan whose patch adds one, are refused as input errors naming the operator
// and the node; a patch of a standard operator passes the check.
func TestConvertRefusesUnknownOps(t *testing.T) {
	res, err := synth.Build(synth.Config{Style: "hf", Size: "tiny", Opset: 17})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	m := res.Models[synth.ModelCombined]
	good := filepath.Join(dir, "good.onnx")
	if err := onnxio.Save(m, good, onnxio.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	// An Add of the text tower becomes an unknown op, then an op of a later opset.
	var victim string
	for _, n := range m.Graph.Nodes() {
		if n.Name != "" && strings.Contains(n.Name, "text_model") && n.OpType == "Add" {
			victim = n.Name
		}
	}
	if victim == "" {
		t.Fatal("no named Add node in the text tower")
	}
	for _, tc := range []struct {
		op, want string
	}{
		{"EvilOp", "EvilOp is not an ONNX operator"},
		{"Gelu", "Gelu appeared in opset 20, but the model imports opset 17"},
	} {
		bad, _ := onnxio.Load(good)
		for _, n := range bad.Graph.Nodes() {
			if n.Name == victim {
				n.OpType = tc.op
			}
		}
		path := filepath.Join(dir, tc.op+".onnx")
		if err := onnxio.Save(bad, path, onnxio.SaveOptions{}); err != nil {
			t.Fatal(err)
		}
		_, err := LoadSource(path)
		if err == nil || !errs.IsInput(err) {
			t.Fatalf("%s: LoadSource: %v, want an input error", tc.op, err)
		}
		for _, w := range []string{path, victim, tc.want, "replace it with standard ONNX operators"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: message lacks %q: %v", tc.op, w, err)
			}
		}
	}

	src, err := LoadSource(good)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		op, want string
	}{
		{"EvilOp", `patch node "evil_node": EvilOp is not an ONNX operator`},
		{"Gelu", `patch node "evil_node": Gelu appeared in opset 20`},
		{"Upsample", "deprecated since opset 10"},
	} {
		specs := []StrategySpec{{Strategy: lskip.Strategy{}}, {Strategy: evilPatch{tc.op}}}
		_, err := Convert(context.Background(), src, filepath.Join(dir, "bundle-"+tc.op), Options{Strategies: specs})
		if err == nil || !errs.IsInput(err) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "strategy evil") {
			t.Errorf("patch with %s: %v, want an input error with %q", tc.op, err, tc.want)
		}
	}
	// A standard operator gets past the operator check (the node is then dead code).
	_, _, err = Plan(context.Background(), src, []StrategySpec{{Strategy: evilPatch{"Neg"}}})
	if err != nil {
		t.Errorf("patch with Neg: %v", err)
	}
}
