package opschema_test

import (
	"strings"
	"testing"

	"github.com/skipgraph/skipgraph/graph/opschema"
	"github.com/skipgraph/skipgraph/rewrite/grad"
)

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		op    string
		opset int64
		want  string // "" for accepted
	}{
		{"MatMul", 17, ""},
		{"Add", 1, ""},
		{"Softmax", 13, ""},
		{"ScatterND", 16, ""},
		{"LayerNormalization", 17, ""},
		{"LayerNormalization", 16, "appeared in opset 17"},
		{"Gelu", 14, "appeared in opset 20"},
		{"Gelu", 20, ""},
		{"Upsample", 9, ""},
		{"Upsample", 13, "deprecated since opset 10"},
		{"Scatter", 11, "deprecated since opset 11"},
		{"EvilOp", 17, "EvilOp is not an ONNX operator"},
		{"matmul", 17, "not an ONNX operator"},
		{"EvilOp", 30, "newer than skipgraph knows"},
	} {
		err := opschema.Check(tc.op, tc.opset)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s at opset %d: %v", tc.op, tc.opset, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s at opset %d: got %v, want %q", tc.op, tc.opset, err, tc.want)
		}
	}
}

// TestGradientOpsKnown: every default-domain op with a gradient rule is in the table, so the
// table cannot refuse a graph the backward pass handles (and a rule's op name has no typo).
func TestGradientOpsKnown(t *testing.T) {
	n := 0
	for op := range grad.Ops() {
		n++
		if _, ok := opschema.Lookup(op); !ok {
			t.Errorf("op %s has a gradient rule but is not in the ONNX table", op)
		}
	}
	if n < 20 {
		t.Fatalf("only %d ops with gradient rules; the registry did not load", n)
	}
}
